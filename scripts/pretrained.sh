#!/usr/bin/env bash
# Exports a pretrained model from its training runs and measures it by the
# evaluation protocol:
#   scripts/pretrained.sh mnist|fashion VERSION
# VERSION names the denoiser's run, assets/pretrained/<name>-cbn-<VERSION>.run
# (v1: the models shipped first, v2: the two-hour retrain of
# scripts/retrain.sh). The denoiser goes to out/pretrained/<name>-cbn-<VERSION>.onnx,
# the evaluation classifier and the second judge (assets/pretrained/<name>-clf.run,
# <name>-judge.run) to their .onnx files in assets/pretrained/, and
# scripts/quality.sh writes the figures to docs/quality/<name>-<VERSION>/.
# Shipping it is a copy: cp out/pretrained/<name>-cbn-<VERSION>.onnx
# assets/pretrained/<name>-cbn.onnx. The exact training commands are in
# assets/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n 2,14p "$0" >&2; exit 2; }
bin="${CONDIFF_BIN:-bin/condiff}"
name=$1 version=$2
case $name in
  mnist) data=mnist ;;
  fashion) data=fashion-mnist ;;
  *) echo "usage: $0 mnist|fashion VERSION" >&2; exit 2 ;;
esac
p=assets/pretrained
run=$p/$name-cbn-$version.run
[ -f "$run/checkpoint.gob" ] || { echo "pretrained: $run/checkpoint.gob: no such run" >&2; exit 1; }
mkdir -p out/pretrained
model=out/pretrained/$name-cbn-$version.onnx
"$bin" export --run "$run" --out "$model"
"$bin" export --run "$p/$name-clf.run" --out "$p/$name-clf.onnx"
"$bin" export --run "$p/$name-judge.run" --out "$p/$name-judge.onnx"
scripts/quality.sh "$model" "$p/$name-clf.onnx" "$p/$name-judge.onnx" "$data" "docs/quality/$name-$version"
