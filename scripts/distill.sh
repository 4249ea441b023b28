#!/usr/bin/env bash
# Distils a shipped model into few-step students by progressive
# distillation (condiff distill), one round per halving, each resumable in
# its own run directory:
#   scripts/distill.sh mnist|fashion [STEPS_PER_ROUND]
# Round 1 teaches a student of FIRST/2 steps (FIRST, default 16, is the
# teacher's ddim-trailing chain at its default guidance), each next round
# halves the last student, down to LAST steps (default 4). Round r lives in
# assets/pretrained/<name>-student<N>.run, is exported to
# out/<name>-student<N>.onnx (the next round's teacher) and logs to
# out/distill-<name>.log. Run it again after a stop: finished rounds are
# skipped, a stopped one resumes. LR (default 1e-3) is each round's
# learning rate; OPENBLAS_CORETYPE as for train. TEACHER (default the
# shipped model) starts the halving from another model, e.g. a finished
# round's student: FIRST=4 LAST=1 TEACHER=out/mnist-student4.onnx. TAG
# (default empty) goes into every run's and model's name (NAME-TAG-studentN)
# so that another recipe (e.g. FIRST=32 TAG=from32) keeps its own rounds.
# W (default: the teacher's own, from its sampling defaults) is the guidance
# weight of the first round's teacher chain, e.g. FIRST=32 W=3
# TAG=from32w3; later rounds' teachers are students, whose guidance is
# learned, and take none.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
name=${1:?usage: $0 mnist|fashion [STEPS_PER_ROUND]}
case $name in
  mnist) data=mnist seed=5 ;;
  fashion) data=fashion-mnist seed=6 ;;
  *) echo "usage: $0 mnist|fashion [STEPS_PER_ROUND]" >&2; exit 2 ;;
esac
steps=${2:-4000}
first=${FIRST:-16} last=${LAST:-4} lr=${LR:-1e-3}
teacher=${TEACHER:-assets/pretrained/$name-cbn.onnx}
mkdir -p out
log=out/distill-$name.log
n=$((first / 2))
wflag=()
[ -n "${W:-}" ] && wflag=(--distill-guidance "$W")
while [ "$n" -ge "$last" ]; do
  run=assets/pretrained/$name${TAG:+-$TAG}-student$n.run
  model=out/$name${TAG:+-$TAG}-student$n.onnx
  if [ -f "$run/checkpoint.gob" ]; then
    "$bin" distill --resume --steps "$steps" --save-every 500 --out "$run" >>"$log" 2>&1
  else
    "$bin" distill --teacher "$teacher" --student-steps "$n" "${wflag[@]}" --data "$data" --batch 32 --seed "$seed" --lr "$lr" \
      --steps "$steps" --save-every 500 --out "$run" >>"$log" 2>&1
  fi
  "$bin" export --run "$run" --out "$model" >>"$log" 2>&1
  echo "distill: round to $n steps done: $model" | tee -a "$log"
  teacher=$model wflag=()
  n=$((n / 2))
done
