#!/usr/bin/env bash
# The shipped MNIST recipe (v3: docs/guidance) trained by the torch path
# (condiff_torch under torchrun, DDP over NPROC processes) and judged beside
# the shipped Go-trained model (docs/scale.md):
#   scripts/torch-train.sh train   # start, or resume from the run's checkpoint
#   scripts/torch-train.sh eval    # export, then the protocol at the shipped defaults
# NAME (default mnist-torch) names the run, assets/pretrained/NAME.run (its
# checkpoint, every 100 steps, is committed between working sessions), and
# STEPS its length (default 42 075, the shipped model's budget; a finished
# run resumed with more steps continues: mnist-torch-long is mnist-torch
# continued toward 65 700 steps, 1.56× the budget).
# The log goes to out/torch-NAME.log. eval exports to out/NAME.onnx and
# writes its reports (100 per class, sample seeds 1 and 2, real draws of
# --eval-seed 1, mnist-clf and, on the same samples, mnist-judge) to
# docs/scale/NAME and docs/scale/NAME-seed2, and docs/scale/NAME/grid.png:
# the shipped model (left) and NAME (right) from the same noise.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
name=${NAME:-mnist-torch}
run=assets/pretrained/$name.run
steps=${STEPS:-42075}
nproc=${NPROC:-2}
# The Debian python3 that has torch, numpy and onnx (scripts/setup.sh).
py=${PYTHON:-/usr/bin/python3}
export PYTHONPATH=python
mkdir -p out
# --redirects 1 --tee 1: torch 1.13's torchrun cannot parse its defaults
# under Python 3.11 (as in deploy/slurm/train.sbatch).
case ${1:?usage: $0 train|eval} in
train)
  if [ -f "$run/checkpoint.pt" ]; then
    exec torchrun --standalone --nproc_per_node "$nproc" --redirects 1 --tee 1 -m condiff_torch.train --resume --steps "$steps" \
      --out "$run" >>"out/torch-$name.log" 2>&1
  fi
  # The shipped v3 recipe, written by condiff itself (scripts/retrain.sh's
  # flags).
  "$bin" train --print-config --data mnist --variant cbn --norm group --batch 32 --seed 1 \
    --base 16 --lr 1e-3 --cfg-drop 0.1 --loss-weight min-snr:5 --steps "$steps" >"out/$name-config.json"
  exec torchrun --standalone --nproc_per_node "$nproc" --redirects 1 --tee 1 -m condiff_torch.train --config "out/$name-config.json" \
    --out "$run" >>"out/torch-$name.log" 2>&1
  ;;
eval)
  onnx=out/$name.onnx
  "$py" -m condiff_torch.export "$run" --out "$onnx"
  "$bin" inspect "$onnx" >"out/$name.inspect"
  grep -q '^contract: yes' "out/$name.inspect" || { cat "out/$name.inspect" >&2; exit 1; }
  # The shipped model's defaults, read from its sidecar and named: the
  # export has no sidecar.
  read -r w interval < <("$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["guidance"], d["guidance_interval"])' assets/pretrained/mnist-cbn.sampling.json)
  for seed in 1 2; do
    docs=docs/scale/$name; [ "$seed" = 1 ] || docs=$docs-seed$seed
    MODEL=$onnx SEED=$seed INTERVAL=$interval WEIGHTS_CFG="" WEIGHTS_INTERVAL=$w WEIGHTS_GUIDE="" WEIGHTS_BOTH="" \
      REUSE=${REUSE:-} scripts/guidance.sh mnist "$docs"
  done
  # The same noise (sample seed 1) through both models: shipped left, NAME right.
  rm -rf out/grid-shipped "out/grid-$name"
  "$bin" sample --n 8 --seed 1 --out out/grid-shipped >/dev/null
  "$bin" sample --model "$onnx" --guidance "$w" --guidance-interval "$interval" --n 8 --seed 1 --out "out/grid-$name" >/dev/null
  "$py" - "out/grid-$name/grid.png" "docs/scale/$name/grid.png" <<'PY'
import sys
from PIL import Image
a, b = Image.open("out/grid-shipped/grid.png"), Image.open(sys.argv[1])
im = Image.new(a.mode, (a.width + 16 + b.width, max(a.height, b.height)), "white")
im.paste(a, (0, 0)); im.paste(b, (a.width + 16, 0)); im.save(sys.argv[2], optimize=True)
PY
  ;;
*) echo "usage: $0 train|eval" >&2; exit 2 ;;
esac
