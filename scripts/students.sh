#!/usr/bin/env bash
# Distilled students beside their teacher, by the evaluation protocol:
#   scripts/students.sh mnist|fashion [SEED]
# The teacher (assets/pretrained/NAME-cbn.onnx) at its defaults (its
# NAME.sampling.json: guidance and interval) with DDIM 10, 20 and 50 steps,
# and every student found: out/NAME[-TAG]-student{16,8,4,2,1}.onnx
# (scripts/distill.sh's rounds of the line TAG, labelled [TAG-]studentN; TAG
# defaults to the shipped student's line, whose 4-step student is the
# shipped file) and EXTRA="label=model.onnx ..." (e.g. an ablation's students),
# each at its own defaults, and the teacher's own chain on the students'
# grid (ddim-trailing, TRAILING_STEPS, default "8 4 2 1"). TEACHER_STEPS
# (default "10 20 50") chooses the teacher's DDIM rows. 100 samples per class (N_PER_CLASS), sample seed SEED
# (default 1), ten real draws of --eval-seed 1, judged by NAME-clf.onnx and,
# on the same samples, by NAME-judge.onnx (trained apart). Reports go
# to docs/distill/NAME (docs/distill/NAME-seedSEED for another seed) with
# compare.md; samples and logs stay in out/students/NAME-seedSEED. REUSE=1
# keeps the evaluations a stopped run finished.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: $0 mnist|fashion [SEED]}
case $name in
  mnist) data=mnist shipped_tag="" ;;
  fashion) data=fashion-mnist shipped_tag=from32w3 ;;
  *) echo "usage: $0 mnist|fashion [SEED]" >&2; exit 2 ;;
esac
seed=${2:-1}
p=assets/pretrained
clf=$p/$name-clf.onnx judge=$p/$name-judge.onnx
bin="${CONDIFF_BIN:-bin/condiff}"
n=${N_PER_CLASS:-100}
docs=docs/distill/$name
[ "$seed" = 1 ] || docs=docs/distill/$name-seed$seed
work=out/students/$name-seed$seed
mkdir -p "$work" "$docs"
# shellcheck source=scripts/protocol.sh
. scripts/protocol.sh
run() { # run LABEL MODEL ARGS...
  local label=$1 model=$2
  shift 2
  judged "$work/$label" "$label" --model "$model" --seed "$seed" "$@"
}
for s in ${TEACHER_STEPS-10 20 50}; do run "teacher-ddim$s" "$p/$name-cbn.onnx" --steps "$s"; done
# The teacher's own chain on the students' grid, undistilled.
for s in ${TRAILING_STEPS-8 4 2 1}; do run "teacher-trailing$s" "$p/$name-cbn.onnx" --sampler ddim-trailing --steps "$s"; done
tag=${TAG-$shipped_tag}
for s in 16 8 4 2 1; do
  m=out/$name${tag:+-$tag}-student$s.onnx
  [ "$s" = 4 ] && [ "$tag" = "$shipped_tag" ] && [ -f "$p/$name-cbn-student.onnx" ] && m=$p/$name-cbn-student.onnx
  [ -f "$m" ] && run "${tag:+$tag-}student$s" "$m"
done
for e in ${EXTRA:-}; do run "${e%%=*}" "${e#*=}"; done
"$bin" compare --out "$docs" "$docs"/*.json >/dev/null
echo "students: $docs/compare.md"
