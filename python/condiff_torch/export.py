"""Export a torch run to condiff's model contract:

    python3 -m condiff_torch.export RUN --out model.onnx

The EMA weights (--raw: the raw ones) in an ONNX graph (opset 17) whose
inputs and outputs are the contract's (x, t and y for a conditional
denoiser; eps) and whose metadata are condiff's (contract/contract.go:
Info.Metadata): condiff's parameter names as initializers, its config, the
schedule and the recipe. `condiff inspect model.onnx` says "contract: yes";
`condiff train --init model.onnx` continues the run in Go. The metadata
keys, their formats and which are required come from contract.json, the Go
contract's own table (contract.Schema) written out; go test holds the file
to the table, and its round trip and parity tests read the exports back.
"""
import argparse
import json
import os
import sys

import onnx
import torch

from .model import Net

# The contract's metadata keys, as the Go side lists them (contract.Schema;
# go test's TestSchemaFile holds this file to it).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract.json")) as _f:
    SCHEMA = json.load(_f)["keys"]


class Denoising(torch.nn.Module):
    def __init__(self, net, conditional):
        super().__init__()
        self.net, self.conditional = net, conditional

    def forward(self, x, t, y=None):
        if not self.conditional:
            y = torch.zeros_like(t)
        return self.net(x, t, y)


def metadata(run, recipe, step):
    """condiff's contract metadata for a torch run's denoiser, key by key
    from contract.json (contract.Schema, written by the Go side): the field
    each key carries and its format come from there, and a key the schema
    requires of a denoiser that this run cannot give stops the export."""
    cfg, sched = run["config"], run["schedule"]
    fields = {
        "Kind": "denoiser",
        "Variant": cfg["variant"],
        "NumClasses": cfg["num_classes"],
        "ClassNames": cfg["class_names"],
        # the null class's label is K when the run trains with label dropout
        "HasNull": cfg["num_classes"] if cfg.get("null_class") else None,
        "ImageSize": cfg["image_size"],
        "Channels": cfg["channels"],
        "Schedule": sched,
        "Prediction": "epsilon",
        "Train": recipe,
        "Step": step if step > 0 else None,
        "Config": cfg,
        "Distilled": None,  # the torch path does not distil
    }
    md = {}
    for k in SCHEMA:
        if "denoiser" not in k["kinds"]:
            continue
        if k["field"] not in fields:
            raise SystemExit(f"export: contract.json's {k['key']} carries Info.{k['field']}, which condiff_torch.export does not know: "
                             "the Go contract gained a key (update export.metadata)")
        v = fields[k["field"]]
        if v is None:
            if k["required"]:
                raise SystemExit(f"export: the run gives no {k['field']} for {k['key']}, which a denoiser must carry")
            continue
        fmt = k["format"]
        if fmt == "int":
            md[k["key"]] = str(int(v))
        elif fmt == "string":
            md[k["key"]] = str(v)
        elif fmt == "json":
            md[k["key"]] = json.dumps(v, separators=(",", ":"))
        else:
            raise SystemExit(f"export: contract.json: {k['key']} has format {fmt!r}")
    return md


def export(run_dir, out, raw=False):
    state = torch.load(os.path.join(run_dir, "checkpoint.pt"), map_location="cpu")
    run, cfg = state["run"], state["run"]["config"]
    net = Net(cfg)
    net.load_state_dict(state["net"])
    if not raw:
        with torch.no_grad():
            for n, p in net.named().items():
                p.copy_(state["ema"][n])
    net.eval()
    net.use_table(run["schedule"]["T"])
    conditional = cfg["variant"] != "uncond"
    s, c = cfg["image_size"], cfg["channels"]
    args = (torch.zeros(2, c, s, s), torch.zeros(2, dtype=torch.long))
    names = ["x", "t"]
    if conditional:
        args += (torch.zeros(2, dtype=torch.long),)
        names.append("y")
    tmp = out + ".tmp"
    # torch's exporter merges initializers with equal values (two biases
    # still at zero become one), which would lose condiff's parameter
    # names: that pass is skipped.
    dedup = torch._C._jit_pass_onnx_deduplicate_initializers
    torch._C._jit_pass_onnx_deduplicate_initializers = lambda graph, params, training: params
    try:
        torch.onnx.export(Denoising(net, conditional), args, tmp, input_names=names, output_names=["eps"], opset_version=17,
                          dynamic_axes={n: {0: "N"} for n in names + ["eps"]}, do_constant_folding=False)
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = dedup
    m = onnx.load(tmp)
    # torch names a parameter after its attribute ("net.params.down__0__…");
    # condiff's name it is.
    rename = {}
    for init in m.graph.initializer:
        base = init.name.split("params.", 1)[-1] if "params." in init.name else None
        if base is not None:
            rename[init.name] = base.replace("__", ".")
    for init in m.graph.initializer:
        init.name = rename.get(init.name, init.name)
    for node in m.graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    missing = [n for n in net.named() if n not in {i.name for i in m.graph.initializer}]
    if missing:
        os.remove(tmp)
        raise SystemExit(f"export: parameters not in the graph's initializers: {missing[:5]}")
    del m.metadata_props[:]
    for k, v in metadata(run, state["recipe"], state["step"]).items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    os.replace(tmp, out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="condiff_torch.export", description="Export a torch run to condiff's model contract.")
    p.add_argument("run", help="run directory (checkpoint.pt)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of their EMA")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    export(a.run, a.out, a.raw)


if __name__ == "__main__":
    main()
