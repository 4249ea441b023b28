#!/usr/bin/env bash
# Trains the next shipped model of a dataset with the recipe the ablations
# chose (docs/ablations/README.md), resumably, in its own run directory:
#   scripts/retrain.sh mnist|fashion [STEPS]
# The run lives in assets/pretrained/<name>-cbn-v2.run (its checkpoint is
# committed between working sessions; run the script again to continue:
# it resumes when a checkpoint is there). The log goes to
# out/retrain-<name>-<version>.log. STEPS defaults to the two-hour budget at the
# recipe's measured speed alone on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
name=${1:?usage: $0 mnist|fashion [STEPS]}
case $name in
  mnist) data=mnist seed=1 ;;
  fashion) data=fashion-mnist seed=2 ;;
  *) echo "usage: $0 mnist|fashion [STEPS]" >&2; exit 2 ;;
esac
# The recipe (docs/ablations/README.md): RECIPE_FLAGS, and its speed alone
# on the 2-core machine in images per second, RECIPE_IMG_PER_S.
RECIPE_FLAGS="--base 16 --lr 1e-3 --cfg-drop 0.1"
# VERSION names the run (v2: the shipped models' run; v3: the same recipe
# with Min-SNR-5 loss weighting, which won its ablation, docs/ablations).
version=${VERSION:-v2}
[ "$version" = v3 ] && RECIPE_FLAGS="$RECIPE_FLAGS --loss-weight min-snr:5"
RECIPE_IMG_PER_S=187
steps=${2:-$((2 * 3600 * RECIPE_IMG_PER_S / 32))}
run=assets/pretrained/$name-cbn-$version.run
mkdir -p out
if [ -f "$run/checkpoint.gob" ]; then
  # shellcheck disable=SC2086
  exec "$bin" train --resume --steps "$steps" --save-every 500 --out "$run" >>"out/retrain-$name-$version.log" 2>&1
fi
# shellcheck disable=SC2086
exec "$bin" train --data "$data" --variant cbn --norm group --batch 32 --seed "$seed" $RECIPE_FLAGS \
  --steps "$steps" --save-every 500 --out "$run" >>"out/retrain-$name-$version.log" 2>&1
