#!/usr/bin/env bash
# Rebuilds the shipped pretrained model from its training run:
#   1. (long) bin/condiff train --data mnist --variant cbn --norm group --cfg-drop 0.1 --base 16 \
#        --batch 32 --lr 1e-3 --steps 20000 --save-every 100 --seed 1 --out assets/pretrained/mnist-cbn.run
#      (add --resume to continue it; stop it any time, the checkpoint is always consistent)
#   2. bin/condiff train-classifier --data mnist --base 16 --batch 64 --lr 2e-3 --steps 2000 --seed 7 \
#        --out assets/pretrained/mnist-clf.run
#   3. this script: export both and evaluate (DDIM 25 steps, guidance 0, 1 and 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
p=assets/pretrained
"$bin" export --run "$p/mnist-cbn.run" --out "$p/mnist-cbn.onnx"
"$bin" export --run "$p/mnist-clf.run" --out "$p/mnist-clf.onnx"
for w in 0 1 2; do
  "$bin" eval --model "$p/mnist-cbn.onnx" --classifier "$p/mnist-clf.onnx" --data mnist --n-per-class "${N_PER_CLASS:-50}" \
    --sampler ddim --steps 25 --guidance "$w" --run "$p/mnist-cbn.run" --out "out/pretrained-eval-w$w"
done
"$bin" compare --out docs/pretrained out/pretrained-eval-w{0,1,2}/report.json
for w in 0 1 2; do cp "out/pretrained-eval-w$w/samples/grid.png" "docs/pretrained/grid_w$w.png"; done
cp out/pretrained-eval-w2/tsne.png docs/pretrained/tsne_w2.png
cp out/pretrained-eval-w2/loss.png docs/pretrained/loss.png
for w in 0 1 2; do cp "out/pretrained-eval-w$w/report.json" "docs/pretrained/report_w$w.json"; done
