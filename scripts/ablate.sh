#!/usr/bin/env bash
# Short training ablations for the shipped models' recipe:
#   scripts/ablate.sh mnist|fashion [NAME...]   (default: every ablation)
# Each ablation trains from scratch (seed 1) for a fixed wall-time budget,
# expressed as steps from each configuration's measured speed alone on the
# 2-core machine (base 16: 187 img/s; base 24: 100; --res-blocks 2: 124;
# --mult 1,2,2,2: 160; --attention 16: 140, an estimate from a 150-step
# run: over its whole run it made 107, so it had 27% more time than base):
# BUDGET steps (default 2400, ~7 min) at base 16, fewer for the slower
# ones (base-again is base trained again, for figures by today's eval beside
# a new ablation; min-snr-5 costs what base does per step). Then it exports the EMA weights and evaluates them at guidance 1
# (DDIM 20, 100 per class, --eval-seed 2: the real draws the final figures
# do not use), copying report.json and the grid into
# docs/ablations/<data>/<name>/; at the end `compare` writes the table.
# Logs: out/ablate/<data>/<name>/train.log. Runs already evaluated are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
name=${1:?usage: $0 mnist|fashion [NAME...]}
shift
case $name in
  mnist) data=mnist ;;
  fashion) data=fashion-mnist ;;
  *) echo "usage: $0 mnist|fashion [NAME...]" >&2; exit 2 ;;
esac
B=${BUDGET:-2400}
common="--data $data --variant cbn --norm group --batch 32 --seed 1 --save-every 500"
# name | steps | flags (beyond $common)
specs="
base|$B|--base 16 --lr 1e-3 --cfg-drop 0.1
cosine-noise|$B|--base 16 --lr 1e-3 --cfg-drop 0.1 --schedule cosine
lr-cosine|$B|--base 16 --lr 1e-3 --cfg-drop 0.1 --lr-schedule cosine --lr-warmup 200
drop-0.2|$B|--base 16 --lr 1e-3 --cfg-drop 0.2
base-24|$((B * 100 / 187))|--base 24 --lr 1e-3 --cfg-drop 0.1
res-blocks-2|$((B * 124 / 187))|--base 16 --lr 1e-3 --cfg-drop 0.1 --res-blocks 2
mult-1222|$((B * 160 / 187))|--base 16 --lr 1e-3 --cfg-drop 0.1 --mult 1,2,2,2
attention-16|$((B * 140 / 187))|--base 16 --lr 1e-3 --cfg-drop 0.1 --attention 16
base-again|$B|--base 16 --lr 1e-3 --cfg-drop 0.1
min-snr-5|$B|--base 16 --lr 1e-3 --cfg-drop 0.1 --loss-weight min-snr:5
"
want=("$@")
out=out/ablate/$name
docs=docs/ablations/$name
mkdir -p "$out" "$docs"
reports=()
while IFS='|' read -r n steps flags; do
  [ -z "$n" ] && continue
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $n "* ]]; then
    [ -f "$docs/$n/report.json" ] && reports+=("$docs/$n/report.json") # in the table all the same
    continue
  fi
  d=$out/$n
  mkdir -p "$d"
  if [ ! -f "$docs/$n/report.json" ]; then
    echo "== $n: $steps steps, $flags ($(date -u +%H:%M:%S))"
    resume=""
    [ -f "$d/run/checkpoint.gob" ] && resume=--resume
    # shellcheck disable=SC2086
    if [ -n "$resume" ]; then
      "$bin" train --resume --steps "$steps" --out "$d/run" 2>>"$d/train.log"
    else
      "$bin" train $common $flags --steps "$steps" --out "$d/run" 2>>"$d/train.log"
    fi
    "$bin" export --run "$d/run" --out "$d/$n.onnx"
    "$bin" eval --model "$d/$n.onnx" --classifier "assets/pretrained/$name-clf.onnx" --data "$data" \
      --n-per-class 100 --guidance 1 --eval-seed 2 --run "$d/run" --out "$d/eval" 2>"$d/eval.log"
    mkdir -p "$docs/$n"
    cp "$d/eval/report.json" "$docs/$n/report.json"
    cp "$d/eval/samples/grid.png" "$docs/$n/grid.png"
  fi
  reports+=("$docs/$n/report.json")
done <<<"$specs"
"$bin" compare --out "$docs" "${reports[@]}"
echo "== done ($(date -u +%H:%M:%S)): $docs/compare.md"
