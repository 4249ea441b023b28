#!/usr/bin/env bash
# Cross-compiles condiff-run without cgo (the Go backend only: no ONNX
# Runtime library needed) for every platform into dist/:
#   dist/condiff-run-linux-amd64, -linux-arm64, -darwin-arm64,
#   -windows-amd64.exe, and dist/condiff-run.wasm (+ wasm_exec_node.js)
# and dist/web/ (the page that samples in a browser tab: docs/web/index.html,
# condiff.wasm, wasm_exec.js and the shipped MNIST model), and prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
for p in linux/amd64 linux/arm64 darwin/arm64 windows/amd64; do
  os=${p%/*} arch=${p#*/}
  out=dist/condiff-run-$os-$arch
  [ "$os" = windows ] && out=$out.exe
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags=-s -o "$out.tmp" ./cmd/condiff-run
  mv "$out.tmp" "$out"
done
GOOS=js GOARCH=wasm go build -trimpath -ldflags=-s -o dist/condiff-run.wasm.tmp ./cmd/condiff-run
mv dist/condiff-run.wasm.tmp dist/condiff-run.wasm
cp "$(go env GOROOT)/lib/wasm/wasm_exec_node.js" "$(go env GOROOT)/lib/wasm/wasm_exec.js" dist/
# The in-browser sampler: serve dist/web/ with any static file server.
mkdir -p dist/web
GOOS=js GOARCH=wasm go build -trimpath -ldflags=-s -o dist/web/condiff.wasm ./cmd/condiff-web
cp docs/web/index.html "$(go env GOROOT)/lib/wasm/wasm_exec.js" assets/pretrained/mnist-cbn.onnx assets/pretrained/mnist-cbn.sampling.json dist/web/
ls -l dist/condiff-run-* dist/condiff-run.wasm dist/web/condiff.wasm | awk '{printf "%-40s %6.1f MB\n", $9, $5/1e6}'
