#!/usr/bin/env bash
# Exports and evaluates a shipped pretrained model from its training runs:
#   scripts/pretrained.sh [mnist|fashion]     (default mnist)
# The runs (assets/README.md has the exact commands):
#   bin/condiff train --data mnist --variant cbn --norm group --cfg-drop 0.1 --base 16 \
#     --batch 32 --lr 1e-3 --steps 20000 --save-every 100 --seed 1 --out assets/pretrained/mnist-cbn.run
#   bin/condiff train-classifier --data mnist --base 16 --batch 64 --lr 2e-3 --steps 3500 --seed 7 \
#     --out assets/pretrained/mnist-clf.run
# (fashion: --data fashion-mnist, runs fashion-cbn.run and fashion-clf.run); add --resume to
# continue a run; stop it any time, the checkpoint is always consistent.
# This script exports both and evaluates at guidance 0, 1 and 2 (DDIM 25 steps,
# N_PER_CLASS samples per class, default 50) into docs/pretrained[/fashion].
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
name=${1:-mnist}
case $name in
  mnist) data=mnist docs=docs/pretrained ;;
  fashion) data=fashion-mnist docs=docs/pretrained/fashion ;;
  *) echo "usage: $0 [mnist|fashion]" >&2; exit 2 ;;
esac
p=assets/pretrained
mkdir -p "$docs"
"$bin" export --run "$p/$name-cbn.run" --out "$p/$name-cbn.onnx"
"$bin" export --run "$p/$name-clf.run" --out "$p/$name-clf.onnx"
for w in 0 1 2; do
  "$bin" eval --model "$p/$name-cbn.onnx" --classifier "$p/$name-clf.onnx" --data "$data" --n-per-class "${N_PER_CLASS:-100}" \
    --sampler ddim --steps 25 --guidance "$w" --run "$p/$name-cbn.run" --out "out/pretrained-$name-w$w"
done
"$bin" compare --out "$docs" out/pretrained-$name-w{0,1,2}/report.json
for w in 0 1 2; do
  cp "out/pretrained-$name-w$w/samples/grid.png" "$docs/grid_w$w.png"
  cp "out/pretrained-$name-w$w/report.json" "$docs/report_w$w.json"
done
cp "out/pretrained-$name-w2/tsne.png" "$docs/tsne_w2.png"
cp "out/pretrained-$name-w2/loss.png" "$docs/loss.png"
