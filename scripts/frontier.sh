#!/usr/bin/env bash
# The quality–speed frontier of a model:
#   scripts/frontier.sh NAME MODEL.onnx CLASSIFIER.onnx DATASET OUTDIR
# e.g. scripts/frontier.sh mnist assets/pretrained/mnist-cbn.onnx assets/pretrained/mnist-clf.onnx mnist docs/frontier/mnist
#
# eval at every sampler × steps × guidance (GUIDANCE, default "0 1"): ddim
# and dpm++2m at 5, 10, 20 and 50 steps with N_PER_CLASS (default 100, the
# protocol's: fewer make the distribution figures noise)
# samples per class; ddpm at all T steps at the last guidance weight with
# DDPM_PER_CLASS (default 20) per class, its chain being T long; then
# compare --frontier: OUTDIR/frontier.md, frontier.png, frontier_acc.png
# and every report_*.json. Images/s are the wall time of eval's sampling on
# this machine: run it alone. REUSE=1 keeps the evaluations a stopped run
# finished (out/frontier-NAME/*/report.json) and runs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { sed -n 2,14p "$0" >&2; exit 2; }
name=$1 model=$2 clf=$3 data=$4 out=$5
bin="${CONDIFF_BIN:-bin/condiff}"
guidance=(${GUIDANCE:-0 1})
n=${N_PER_CLASS:-100}
work=out/frontier-$name
mkdir -p "$work" "$out"
reports=()
for w in "${guidance[@]}"; do
  for s in ddim dpm++2m; do
    for k in 5 10 20 50; do
      d="$work/$s-$k-w$w"
      reports+=("$d/report.json")
      # REUSE=1 keeps an evaluation a stopped run finished.
      [ -n "${REUSE:-}" ] && [ -f "$d/report.json" ] && continue
      "$bin" eval --model "$model" --classifier "$clf" --data "$data" --n-per-class "$n" \
        --sampler "$s" --steps "$k" --guidance "$w" --out "$d" >"$d.log" 2>&1 || { cat "$d.log" >&2; exit 1; }
      tail -2 "$d.log" | head -1
    done
  done
done
w=${guidance[-1]}
d="$work/ddpm-w$w"
[ -n "${REUSE:-}" ] && [ -f "$d/report.json" ] ||
  "$bin" eval --model "$model" --classifier "$clf" --data "$data" --n-per-class "${DDPM_PER_CLASS:-20}" \
    --sampler ddpm --guidance "$w" --out "$d" >"$d.log" 2>&1 || { cat "$d.log" >&2; exit 1; }
reports+=("$d/report.json")
"$bin" compare --frontier --out "$out" "${reports[@]}"
for r in "${reports[@]}"; do
  cp "$r" "$out/report_$(basename "$(dirname "$r")").json"
done

