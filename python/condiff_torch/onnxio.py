"""Reading condiff models (ONNX files with condiff's contract) into torch."""
import json

import numpy as np
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
