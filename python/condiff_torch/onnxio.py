"""Reading condiff models (ONNX files with condiff's contract) into torch."""
import json

import torch
import onnx
from onnx import numpy_helper


def metadata(model):
    return {p.key: p.value for p in model.metadata_props}


def read(path):
    """A condiff model file: (its network's config, its metadata, its
    initializers by name as numpy arrays)."""
    m = onnx.load(path)
    md = metadata(m)
    if "condiff.config" not in md:
        raise SystemExit(f"{path}: no condiff.config metadata: not a condiff model")
    cfg = json.loads(md["condiff.config"])
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return cfg, md, inits


def load_weights(net, inits, path):
    """Sets every parameter of net (condiff's names) from a model file's
    initializers, refusing one that is missing or shaped otherwise."""
    named = net.named()
    missing = [n for n in named if n not in inits]
    if missing:
        raise SystemExit(f"{path}: parameters missing from its initializers: {missing[:5]}")
    with torch.no_grad():
        for n, p in named.items():
            a = torch.from_numpy(inits[n].copy())
            if tuple(a.shape) != tuple(p.shape):
                raise SystemExit(f"{path}: {n}: shape {tuple(a.shape)} in the file, {tuple(p.shape)} in the network")
            p.copy_(a)
