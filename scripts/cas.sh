#!/usr/bin/env bash
# Do a model's samples teach a classifier? CAS and augmentation gain:
#   scripts/cas.sh NAME MODEL.onnx CLASSIFIER.onnx DATASET OUTDIR
# e.g. scripts/cas.sh mnist assets/pretrained/mnist-cbn.onnx assets/pretrained/mnist-clf.onnx mnist docs/frontier/mnist
#
# eval on CAS_PER_CLASS (default 100) samples per class, DDIM 25 steps at
# guidance W (default 1), then condiff cas on them (REPEATS, default 3;
# SUBSETS, default 10,50,100): OUTDIR/cas.md and OUTDIR/report_cas.json.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { sed -n 2,8p "$0" >&2; exit 2; }
name=$1 model=$2 clf=$3 data=$4 out=$5
bin="${CONDIFF_BIN:-bin/condiff}"
w=${W:-1}
d=out/cas-$name-w$w
mkdir -p "$out"
"$bin" eval --model "$model" --classifier "$clf" --data "$data" --n-per-class "${CAS_PER_CLASS:-100}" \
  --sampler ddim --steps 25 --guidance "$w" --out "$d" >"$d.log" 2>&1 || { cat "$d.log" >&2; exit 1; }
"$bin" cas --eval "$d" --repeats "${REPEATS:-3}" --subsets "${SUBSETS:-10,50,100}"
{ echo "# $name: does training on the samples help a classifier?"; echo
  echo "Samples: \`$model\`, DDIM 25 steps, guidance $w, ${CAS_PER_CLASS:-100} per class (\`scripts/cas.sh $*\`)."; echo
  sed -n '/^## Do the samples/,/^Weights after/p' "$d/report.md" | sed '1,2d;$d'; } > "$out/cas.md"
cp "$d/report.json" "$out/report_cas.json"
