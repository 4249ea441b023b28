#!/usr/bin/env bash
# The study, reproducible: trains, exports and evaluates every method on the
# same data and budget, then tabulates them with `condiff compare`.
#   scripts/study.sh OUT DATA CLASSES SIZE STEPS
# e.g. scripts/study.sh out/study-fashion fashion-mnist trouser,bag 32 300
#      STUDY_JUDGE=assets/pretrained/mnist-clf.onnx scripts/study.sh out/study-mnist mnist "" 32 600
# STUDY_JUDGE: an existing independent classifier to judge with (default: one
# trained here, 600 steps); STUDY_N_PER_CLASS: samples per class (default 50).
set -euo pipefail
out=${1:?out dir}; data=${2:?dataset}; classes=${3-}; size=${4:-32}; steps=${5:-1000}
bin="${CONDIFF_BIN:-bin/condiff}"
npc="${STUDY_N_PER_CLASS:-50}"
common=(--data "$data" --size "$size" --base 16 --batch 32 --lr 1e-3 --steps "$steps" --save-every 100 --seed 1)
[ -n "$classes" ] && common+=(--classes "$classes")
evalargs=(--data "$data" --n-per-class "$npc" --sampler ddim --steps 25)
[ -n "$classes" ] && evalargs+=(--classes "$classes")
mkdir -p "$out"
start=$(date +%s)
run() { # name, train flags...
  local name=$1; shift
  if [ -f "$out/$name/checkpoint.gob" ]; then # continue (or just re-export) an earlier run
    "$bin" train "${common[@]}" --out "$out/$name" --resume "$@"
  else
    "$bin" train "${common[@]}" --out "$out/$name" "$@"
  fi
  "$bin" export --run "$out/$name" --out "$out/$name.onnx"
}
# Two classifiers: one to guide M_AC (frozen), an independent one to judge.
judge="${STUDY_JUDGE:-$out/clf-judge.onnx}"
clfs=(clf-ac:11)
[ -n "${STUDY_JUDGE-}" ] || clfs+=(clf-judge:12)
for c in "${clfs[@]}"; do
  name=${c%%:*}; seed=${c##*:}
  [ -f "$out/$name.onnx" ] || { "$bin" train-classifier --data "$data" ${classes:+--classes "$classes"} --size "$size" --base 16 --batch 64 \
      --lr 2e-3 --steps 600 --seed "$seed" --out "$out/$name"; "$bin" export --run "$out/$name" --out "$out/$name.onnx"; }
done
run uncond --variant uncond
run cbn-batch --variant cbn --norm batch
run cbn-group --variant cbn --norm group
run ac-frozen --variant ac --ac-classifier "$out/clf-ac"
run ac-joint --variant ac
run cbn-group-cfg --variant cbn --norm group --cfg-drop 0.1
run ac-joint-cfg --variant ac --cfg-drop 0.1
reports=()
ev() { # model, guidance, label
  local dir="$out/eval-$3"
  "$bin" eval --model "$out/$1.onnx" --classifier "$judge" "${evalargs[@]}" --guidance "$2" --run "$out/$1" --out "$dir"
  reports+=("$dir/report.json")
}
for m in uncond cbn-batch cbn-group ac-frozen ac-joint; do ev "$m" 0 "$m"; done
for w in 0 1 3; do ev cbn-group-cfg "$w" "cbn-group-cfg-w$w"; ev ac-joint-cfg "$w" "ac-joint-cfg-w$w"; done
"$bin" compare --out "$out" "${reports[@]}"
echo "study: $(( $(date +%s) - start )) s; table $out/compare.md"
