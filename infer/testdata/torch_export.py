#!/usr/bin/env python3
"""Generates torch_cbn.onnx: a small M_CBN U-Net built and exported by PyTorch
(scripts/torch_ref.py's architecture, random weights, 16x16, 3 classes + null),
with the condiff model contract's metadata. It proves that condiff samples
models from other trainers. Run: /usr/bin/python3 torch_export.py (needs
Debian's python3-torch and python3-onnx)."""
import json
import os
import sys

import onnx
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "scripts"))
from torch_ref import UNet  # noqa: E402

torch.manual_seed(0)
net = UNet("cbn", "group", size=16, ch=8, mult=(1, 2), classes=3).eval()
with torch.no_grad():
    net.conv_out.weight.normal_(0, 0.05)  # the zero-initialised output layer would hide everything
x = torch.randn(2, 1, 16, 16)
t = torch.tensor([10, 500])
y = torch.tensor([0, 3])
path = os.path.join(here, "torch_cbn.onnx")
torch.onnx.export(net, (x, t, y), path, input_names=["x", "t", "y"], output_names=["eps"], opset_version=17,
                  dynamic_axes={"x": {0: "N"}, "t": {0: "N"}, "y": {0: "N"}, "eps": {0: "N"}})
m = onnx.load(path)
meta = {
    "condiff.variant": "cbn", "condiff.num_classes": "3", "condiff.class_names": json.dumps(["a", "b", "c"]),
    "condiff.null_class": "3", "condiff.image_size": "16", "condiff.channels": "1",
    "condiff.schedule": json.dumps({"kind": "linear", "T": 1000, "beta_start": 0.0001, "beta_end": 0.02}),
    "condiff.prediction": "epsilon", "condiff.train": json.dumps({"trainer": "pytorch", "weights": "random"}),
}
for k, v in meta.items():
    e = m.metadata_props.add()
    e.key, e.value = k, v
onnx.checker.check_model(m, full_check=True)
onnx.save(m, path)
print("wrote", path)
