"""Forward parity with condiff: `python3 -m condiff_torch.parity MODEL.onnx
STATS.json IN.json OUT.json` loads a condiff model's weights (its
initializers, by condiff's parameter names) and batch-norm running
statistics (STATS.json: name → values; the export folds them) into Net,
runs the inputs of IN.json ({"x", "t", "y", "shape"}) through it in
inference mode and writes its outputs to OUT.json ({"eps"}, or {"logits",
"features"}). The Go test compares them with ONNX Runtime's."""
import json
import sys

import torch

from .model import Net
from .onnxio import load_weights, read


def main(argv):
    model, stats_path, in_path, out_path = argv
    cfg, _, inits = read(model)
    net = Net(cfg)
    load_weights(net, inits, model)
    with torch.no_grad():
        for n, s in json.load(open(stats_path)).items():
            net.stats()[n].copy_(torch.tensor(s, dtype=torch.float32))
    net.eval()
    inp = json.load(open(in_path))
    x = torch.tensor(inp["x"], dtype=torch.float32).reshape(inp["shape"])
    with torch.no_grad():
        if cfg["kind"] == "denoiser":
            eps = net(x, torch.tensor(inp["t"], dtype=torch.long), torch.tensor(inp["y"], dtype=torch.long))
            out = {"eps": eps.flatten().tolist()}
        else:
            logits, feats = net(x)
            out = {"logits": logits.flatten().tolist(), "features": feats.flatten().tolist()}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(sys.argv[1:])
