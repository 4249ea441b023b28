#!/usr/bin/env bash
# The published quality figures of a model, by the evaluation protocol
# (README, Evaluate):
#   scripts/quality.sh MODEL.onnx CLASSIFIER.onnx JUDGE.onnx DATASET OUTDIR
# e.g. scripts/quality.sh assets/pretrained/mnist-cbn.onnx assets/pretrained/mnist-clf.onnx \
#        assets/pretrained/mnist-judge.onnx mnist docs/quality/mnist-v1
#
# - guidance 0, 0.5, 1 and 2: 100 samples per class (N_PER_CLASS), DDIM at
#   its default 20 steps, sample seed 1, real draws --eval-seed 1, judged by
#   CLASSIFIER: OUTDIR/w<W>.json and grid_w<W>.png;
# - the same samples judged by JUDGE, a classifier trained apart (another
#   seed and width) that played no part in choosing a recipe:
#   OUTDIR/w<W>-judge.json;
# - at guidance 1, how far a second draw moves the figures: the same
#   samples against real draws --eval-seed 2, 3 and 4
#   (OUTDIR/w1-eval-seed<S>.json), and new samples, seed 2
#   (OUTDIR/w1-seed2.json);
# - OUTDIR/compare.md and compare.png of them all.
# The samples and full reports stay in out/quality/<basename of OUTDIR>;
# REUSE_SAMPLES=1 evaluates the samples found there again instead of
# sampling (the same figures, bit for bit; no images/s).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { sed -n 2,20p "$0" >&2; exit 2; }
model=$1 clf=$2 judge=$3 data=$4 docs=$5
bin="${CONDIFF_BIN:-bin/condiff}"
n=${N_PER_CLASS:-100}
work=out/quality/$(basename "$docs")
mkdir -p "$work" "$docs"
ev() { # ev OUT ARGS...: one evaluation, its log beside it; stops the script on failure
  local d=$1
  shift
  "$bin" eval --data "$data" --n-per-class "$n" --out "$d" "$@" >"$d.log" 2>&1 || { cat "$d.log" >&2; exit 1; }
  grep '^eval: over' "$d.log" | sed "s|^|$(basename "$d"): |"
}
sampled() { # sampled DIR ARGS...: eval that samples into DIR, or reads the samples DIR holds
  local d=$1
  shift
  if [ "${REUSE_SAMPLES:-0}" = 1 ] && [ -f "$d/samples/manifest.json" ]; then
    ev "$d" --samples "$d/samples" --classifier "$clf" --eval-seed 1
  else
    ev "$d" --model "$model" --classifier "$clf" --eval-seed 1 "$@"
  fi
}
reports=()
for w in 0 0.5 1 2; do
  sampled "$work/w$w" --guidance "$w"
  cp "$work/w$w/report.json" "$docs/w$w.json"
  cp "$work/w$w/samples/grid.png" "$docs/grid_w$w.png"
  ev "$work/w$w-judge" --samples "$work/w$w/samples" --classifier "$judge" --eval-seed 1
  cp "$work/w$w-judge/report.json" "$docs/w$w-judge.json"
  reports+=("$docs/w$w.json" "$docs/w$w-judge.json")
done
for s in 2 3 4; do
  ev "$work/w1-eval-seed$s" --samples "$work/w1/samples" --classifier "$clf" --eval-seed "$s"
  cp "$work/w1-eval-seed$s/report.json" "$docs/w1-eval-seed$s.json"
  reports+=("$docs/w1-eval-seed$s.json")
done
sampled "$work/w1-seed2" --guidance 1 --seed 2
cp "$work/w1-seed2/report.json" "$docs/w1-seed2.json"
reports+=("$docs/w1-seed2.json")
"$bin" compare --out "$docs" "${reports[@]}" >/dev/null
echo "quality: $docs/compare.md"
