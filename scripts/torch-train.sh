#!/usr/bin/env bash
# The shipped MNIST recipe and budget (v3: docs/guidance) trained by the torch
# path (condiff_torch under torchrun, DDP over NPROC processes) and judged
# beside the shipped Go-trained model (docs/scale.md):
#   scripts/torch-train.sh train   # start, or resume from the run's checkpoint
#   scripts/torch-train.sh eval    # export, then the protocol at the shipped defaults
# The run lives in assets/pretrained/mnist-torch.run (its checkpoint, every
# 500 steps, is committed between working sessions); the log goes to
# out/torch-mnist.log. eval exports to out/mnist-torch.onnx and writes its
# reports (100 per class, sample seeds 1 and 2, real draws of --eval-seed 1,
# mnist-clf and, on the same samples, mnist-judge) to docs/scale/, and
# docs/scale/mnist-torch/grid.png: both models from the same noise.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CONDIFF_BIN:-bin/condiff}"
run=assets/pretrained/mnist-torch.run
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
    exec torchrun --standalone --nproc_per_node "$nproc" --redirects 1 --tee 1 -m condiff_torch.train --resume --out "$run" >>out/torch-mnist.log 2>&1
  fi
  # The shipped v3 recipe, written by condiff itself (scripts/retrain.sh's
  # flags and budget).
  "$bin" train --print-config --data mnist --variant cbn --norm group --batch 32 --seed 1 \
    --base 16 --lr 1e-3 --cfg-drop 0.1 --loss-weight min-snr:5 --steps 42075 >out/mnist-torch-config.json
  exec torchrun --standalone --nproc_per_node "$nproc" --redirects 1 --tee 1 -m condiff_torch.train --config out/mnist-torch-config.json \
    --out "$run" >>out/torch-mnist.log 2>&1
  ;;
eval)
  "$py" -m condiff_torch.export "$run" --out out/mnist-torch.onnx
  "$bin" inspect out/mnist-torch.onnx >out/mnist-torch.inspect
  grep -q '^contract: yes' out/mnist-torch.inspect || { cat out/mnist-torch.inspect >&2; exit 1; }
  # The shipped model's defaults (assets/pretrained/mnist-cbn.sampling.json),
  # named: the export has no sidecar.
  for seed in 1 2; do
    docs=docs/scale/mnist-torch; [ "$seed" = 1 ] || docs=$docs-seed$seed
    MODEL=out/mnist-torch.onnx SEED=$seed INTERVAL=0.3,7 WEIGHTS_CFG="" WEIGHTS_INTERVAL=0.6 WEIGHTS_GUIDE="" WEIGHTS_BOTH="" \
      REUSE=${REUSE:-} scripts/guidance.sh mnist "$docs"
  done
  # The same noise (sample seed 1) through both models: shipped left, torch right.
  rm -rf out/grid-shipped out/grid-torch
  "$bin" sample --n 8 --seed 1 --out out/grid-shipped >/dev/null
  "$bin" sample --model out/mnist-torch.onnx --guidance 0.6 --guidance-interval 0.3,7 --n 8 --seed 1 --out out/grid-torch >/dev/null
  "$py" -c 'from PIL import Image
a, b = Image.open("out/grid-shipped/grid.png"), Image.open("out/grid-torch/grid.png")
im = Image.new(a.mode, (a.width + 16 + b.width, max(a.height, b.height)), "white")
im.paste(a, (0, 0)); im.paste(b, (a.width + 16, 0)); im.save("docs/scale/mnist-torch/grid.png", optimize=True)'
  ;;
*) echo "usage: $0 train|eval" >&2; exit 2 ;;
esac
