#!/usr/bin/env bash
# The guidance frontier of a shipped model, by the evaluation protocol:
#   scripts/guidance.sh mnist|fashion [OUTDIR]
# Plain classifier-free guidance, guidance in an interval of noise levels,
# autoguidance with the model's guide (assets/pretrained/NAME-guide.onnx,
# scripts/guide.sh), and both, each at several weights (WEIGHTS_* below):
# 100 samples per class (N_PER_CLASS), DDIM 20, sample seed SEED (1), real
# draws --eval-seed 1, judged by NAME-clf.onnx and, on the same samples,
# by NAME-judge.onnx (trained apart, used in no choice). OUTDIR (default
# docs/guidance/NAME) gets every report (METHOD-wW.json, -judge.json) and
# compare.md; samples and logs stay in out/guidance/NAME-seedSEED.
# INTERVAL (default 0.3,5) is the interval's σ range and GUIDE the guide
# (default the model's); both are part of each result's name, so runs with
# other values add results beside the earlier ones, and so are SAMPLER and
# STEPS (default ddim, 20) and ETA (default 0, DDIM's stochasticity) when
# they are not the default. WEIGHTS_CFG,
# WEIGHTS_INTERVAL, WEIGHTS_GUIDE and WEIGHTS_BOTH choose the weights ("":
# skip that method). REUSE=1 keeps the evaluations a stopped run finished.
# MODEL evaluates another denoiser of the dataset than the shipped one (a
# candidate): its samples and logs go to out/guidance/NAME-MODELSTEM-seedSEED;
# give it an OUTDIR of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: $0 mnist|fashion [OUTDIR]}
case $name in
  mnist) data=mnist ;;
  fashion) data=fashion-mnist ;;
  *) echo "usage: $0 mnist|fashion [OUTDIR]" >&2; exit 2 ;;
esac
p=assets/pretrained
model=${MODEL:-$p/$name-cbn.onnx} clf=$p/$name-clf.onnx judge=$p/$name-judge.onnx guide=${GUIDE:-$p/$name-guide.onnx}
g=$(basename "$guide" .onnx)
docs=${2:-docs/guidance/$name}
bin="${CONDIFF_BIN:-bin/condiff}"
n=${N_PER_CLASS:-100}
seed=${SEED:-1}
interval=${INTERVAL:-0.3,5}
sampler=${SAMPLER:-ddim} steps=${STEPS:-20}
tag=""
[ "$sampler-$steps" = ddim-20 ] || tag="-$sampler$steps"
eta=${ETA:-0}
[ "$eta" = 0 ] || tag="$tag-eta$eta"
work=out/guidance/$name-seed$seed
[ -n "${MODEL:-}" ] && work=out/guidance/$name-$(basename "$MODEL" .onnx)-seed$seed
mkdir -p "$work" "$docs"
# shellcheck source=scripts/protocol.sh
. scripts/protocol.sh
reports=()
run() { # run METHOD W ARGS...
  local m=$1 w=$2
  shift 2
  m=$m$tag
  judged "$work/$m-w$w" "$m-w$w" --model "$model" --seed "$seed" --sampler "$sampler" --steps "$steps" --eta "$eta" --guidance "$w" "$@"
  reports+=("$docs/$m-w$w.json" "$docs/$m-w$w-judge.json")
}
# Every method names both options: a model's sidecar would fill in the
# one left out.
for w in ${WEIGHTS_CFG-0 0.5 1}; do run cfg "$w" --guidance-interval none --guide none; done
for w in ${WEIGHTS_INTERVAL-1 2 3}; do run "interval$interval" "$w" --guidance-interval "$interval" --guide none; done
for w in ${WEIGHTS_GUIDE-0.5 1 2}; do run "guide-$g" "$w" --guide "$guide" --guidance-interval none; done
for w in ${WEIGHTS_BOTH-1 2 3}; do run "guide-$g-interval$interval" "$w" --guide "$guide" --guidance-interval "$interval"; done
"$bin" compare --out "$docs" "$docs"/*.json >/dev/null
echo "guidance: $docs/compare.md"
