#!/usr/bin/env bash
# The demo: train a small M_CBN model with label dropout on the built-in
# synthetic set, train an independent classifier, export both to ONNX, sample
# every class with classifier-free guidance (ONNX Runtime where its library is
# installed, else the pure-Go backend: --backend auto), evaluate.
set -euo pipefail
out="${1:-out/demo}"
bin="${CONDIFF_BIN:-bin/condiff}"
steps="${DEMO_STEPS:-400}"
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
echo "== 1/5 train M_CBN (group norm, label dropout 0.15) on the synthetic set, 16×16, $steps steps"
"$bin" train --data synthetic --size 16 --variant cbn --norm group --cfg-drop 0.15 --base 16 --mult 1,2 \
  --batch 32 --lr 1e-3 --steps "$steps" --save-every 100 --seed 1 --out "$out/run"
echo "== 2/5 train an independent classifier on the same data (another seed)"
"$bin" train-classifier --data synthetic --size 16 --base 8 --batch 64 --lr 2e-3 --steps 150 --seed 2 --out "$out/clf"
echo "== 3/5 export both to ONNX"
"$bin" export --run "$out/run" --out "$out/model.onnx"
"$bin" export --run "$out/clf" --out "$out/classifier.onnx"
"$bin" inspect "$out/model.onnx" | tail -2
echo "== 4/5 + 5/5 sample 16 images per class (DDIM 25 steps, guidance 2) and evaluate"
"$bin" eval --model "$out/model.onnx" --classifier "$out/classifier.onnx" --data synthetic \
  --n-per-class 16 --sampler ddim --steps 25 --guidance 2 --run "$out/run" --out "$out/eval"
echo
echo "demo done in $(( $(date +%s) - start )) s"
echo "  samples grid: $out/eval/samples/grid.png"
echo "  report:       $out/eval/report.md"
