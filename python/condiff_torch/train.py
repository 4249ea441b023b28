"""condiff's training recipe (train/) on PyTorch, on one process or many.

    torchrun --nproc-per-node N -m condiff_torch.train --config CONFIG.json --data mnist --out RUN

CONFIG.json is what `condiff train --print-config` writes (checkpoint.
RunConfig: the network's config, the schedule and the recipe), or --init
MODEL.onnx takes architecture, schedule and weights from a condiff export.
The recipe's flags are named as `condiff train` names them and override the
config's: ε-MSE (Min-SNR-γ weighted with --loss-weight), label dropout,
EMA (warmed up as train's), Adam (0.9, 0.999, 1e-8), global-norm clipping,
the learning rate's warm-up and cosine decay. Under torchrun the global
batch --batch is split evenly over the processes (DistributedDataParallel:
gloo on CPU, NCCL on GPUs); every process draws the same global batch from
the same seed and takes its share, so N processes compute the gradient one
process would. Rank 0 writes RUN/checkpoint.pt and RUN/log.jsonl; --resume
continues from the checkpoint.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import data as cdata
from .model import Net, label_rows

CHECKPOINT, LOG = "checkpoint.pt", "log.jsonl"


def alpha_bar(spec):
    """diffusion.Spec.Build's ᾱ, float64."""
    T = spec["T"]
    if spec["kind"] == "linear":
        s, e = spec["beta_start"], spec["beta_end"]
        betas = [s if T == 1 else s + (e - s) * i / (T - 1) for i in range(T)]
    elif spec["kind"] == "cosine":
        f = lambda t: math.cos((t / T + spec["s"]) / (1 + spec["s"]) * math.pi / 2) ** 2
        betas = [min(1 - f(i + 1) / f(i), 0.999) for i in range(T)]
    else:
        raise SystemExit(f"schedule kind {spec['kind']!r} is not linear or cosine")
    ab, p = [], 1.0
    for b in betas:
        p *= 1 - b
        ab.append(p)
    return torch.tensor(ab, dtype=torch.float64)


def learning_rate(r, step):
    """train.learningRate: warm-up, then constant or cosine to 0 at the last step (step is 1-based)."""
    if step <= r["lr_warmup"]:
        return r["lr"] * step / r["lr_warmup"]
    if r["lr_schedule"] != "cosine" or r["steps"] <= r["lr_warmup"]:
        return r["lr"]
    f = min(1.0, (step - r["lr_warmup"]) / (r["steps"] - r["lr_warmup"]))
    return r["lr"] * 0.5 * (1 + math.cos(math.pi * f))


def parse(argv):
    p = argparse.ArgumentParser(prog="condiff_torch.train", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="checkpoint.RunConfig JSON (condiff train --print-config)")
    src.add_argument("--init", help="a condiff export: architecture, schedule and first weights")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--replay", help="train on the batches `condiff train --record-batches FILE` drew, step by step, "
                   "instead of drawing them (one process; recipe parity)")
    p.add_argument("--data", help="mnist or fashion-mnist (default: the config's)")
    p.add_argument("--data-dir", default=None, help="directory of the IDX files")
    p.add_argument("--data-file", default=None, help="the training set as condiff loads it (condiff dataset --out FILE.npz): "
                   "any dataset condiff reads (synthetic, folder:DIR, --classes subsets)")
    for name, typ in [("steps", int), ("batch", int), ("lr", float), ("seed", int), ("cfg-drop", float), ("ema", float),
                      ("grad-clip", float), ("lr-schedule", str), ("lr-warmup", int), ("save-every", int), ("loss-weight", str),
                      ("ac-weight", float), ("ac-classifier", str)]:
        p.add_argument("--" + name, type=typ, default=None)
    return p.parse_args(argv)


def recipe_from(args, run):
    """The recipe: the config's train section, overridden by the flags, in TrainInfo's JSON names."""
    r = {"steps": 2000, "batch": 32, "lr": 2e-4, "seed": 1, "cfg_drop": 0.0, "ema_decay": 0.999, "grad_clip": 1.0,
         "lr_schedule": "constant", "lr_warmup": 0, "min_snr_gamma": 0.0, "dataset": "mnist", "data_dir": ""}
    r.update({k: v for k, v in run.get("train", {}).items() if v is not None})
    for flag, key in [("steps", "steps"), ("batch", "batch"), ("lr", "lr"), ("seed", "seed"), ("cfg_drop", "cfg_drop"),
                      ("ema", "ema_decay"), ("grad_clip", "grad_clip"), ("lr_schedule", "lr_schedule"), ("lr_warmup", "lr_warmup"),
                      ("data", "dataset"), ("data_dir", "data_dir"), ("ac_weight", "ac_weight")]:
        v = getattr(args, flag)
        if v is not None:
            r[key] = v
    if args.loss_weight is not None:
        if args.loss_weight == "none":
            r["min_snr_gamma"] = 0.0
        elif args.loss_weight.startswith("min-snr:"):
            r["min_snr_gamma"] = float(args.loss_weight[len("min-snr:"):])
        else:
            raise SystemExit(f"--loss-weight {args.loss_weight}: not none or min-snr:GAMMA")
    return r


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = torch.device("cpu")
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    else:
        rank, world = 0, 1
        if torch.cuda.is_available():
            device = torch.device("cuda")
    ckpath = os.path.join(args.out, CHECKPOINT)
    state = None
    if args.resume:
        if not os.path.exists(ckpath):
            raise SystemExit(f"--resume: {ckpath} does not exist")
        state = torch.load(ckpath, map_location="cpu")
        run = state["run"]
    elif args.config:
        run = json.load(open(args.config))
    elif args.init:
        from .onnxio import read
        cfg, md, inits = read(args.init)
        run = {"config": cfg, "schedule": json.loads(md.get("condiff.schedule", "null")) if "condiff.schedule" in md else None,
               "train": {}, "init": args.init}
    else:
        raise SystemExit("give --config CONFIG.json, --init MODEL.onnx or --resume")
    if not args.resume and os.path.exists(ckpath):
        raise SystemExit(f"--out {args.out} already holds a checkpoint; --resume it or choose another directory")
    cfg = run["config"]
    if cfg["kind"] != "denoiser":
        raise SystemExit("the torch trainer trains denoisers (classifiers: condiff train-classifier)")
    r = state["recipe"] if state else recipe_from(args, run)
    if args.resume and args.steps is not None:
        if args.steps < state["step"]:
            raise SystemExit(f"--steps {args.steps} is below the step the checkpoint holds ({state['step']})")
        r["steps"] = args.steps
    if r["batch"] % world:
        raise SystemExit(f"--batch {r['batch']} does not split evenly over {world} processes")
    save_every = args.save_every if args.save_every is not None else 100
    data_file = args.data_file or (state or {}).get("data_file")
    if data_file:
        images, labels, names = cdata.load_file(data_file, r["dataset"], cfg["image_size"], cfg["channels"])
    else:
        images, labels, names = cdata.load(r["dataset"], cfg["image_size"], r.get("data_dir", ""))
    if names != cfg["class_names"]:
        raise SystemExit(f"--data {r['dataset']}: classes {names}, the config's {cfg['class_names']}")
    if bool(cfg.get("null_class")) != (r["cfg_drop"] > 0):
        raise SystemExit(f"--cfg-drop {r['cfg_drop']}: must be > 0 exactly when the config has a null class ({cfg.get('null_class')})")
    images = torch.from_numpy(images)
    labels = torch.from_numpy(labels)

    torch.manual_seed(r["seed"])
    net = Net(cfg, seed=r["seed"])
    if run.get("init") and not state:
        from .onnxio import load_weights, read
        _, _, inits = read(run["init"])
        load_weights(net, inits, run["init"])
    # M_AC: the auxiliary classifier judges x̂₀ = c1·x_t − c2·ε̂ against the
    # true label (a dropped label is not judged), weighted --ac-weight;
    # trained jointly (condiff's default classifier, its parameters
    # "clf."-prefixed as train's) or frozen from a condiff export.
    clf, clf_frozen = None, False
    if cfg["variant"] == "ac" and r.get("ac_weight", 0) > 0:
        ccfg = {"kind": "classifier", "norm": "group", "groups": 8, "channels": cfg["channels"], "image_size": cfg["image_size"],
                "base_channels": 32, "channel_mult": None, "num_res_blocks": 0, "num_classes": cfg["num_classes"],
                "class_names": cfg["class_names"], "null_class": False}
        if args.ac_classifier:
            from .onnxio import load_weights, read
            ccfg, _, cinits = read(args.ac_classifier)
            clf, clf_frozen = Net(ccfg), True
            load_weights(clf, cinits, args.ac_classifier)
            clf.requires_grad_(False)
        else:
            clf = Net(ccfg, seed=r["seed"] + 1)
        r["ac_mode"] = "frozen" if clf_frozen else "joint"
    elif cfg["variant"] != "ac":
        r.pop("ac_weight", None)
    ema = {n: p.detach().clone() for n, p in net.named().items()}
    params = list(net.parameters()) + (list(clf.parameters()) if clf is not None and not clf_frozen else [])
    opt = torch.optim.Adam(params, lr=r["lr"], betas=(0.9, 0.999), eps=1e-8)
    step = 0
    gen = torch.Generator().manual_seed(r["seed"])
    if state:
        if clf is not None and state.get("clf") is not None:
            clf.load_state_dict(state["clf"])
        net.load_state_dict(state["net"])
        ema = state["ema"]
        opt.load_state_dict(state["opt"])
        step = state["step"]
        gen.set_state(state["rng"])
    net.to(device)
    if clf is not None:
        clf.to(device)
    ema = {n: v.to(device) for n, v in ema.items()}

    class Step(torch.nn.Module):
        """One module for DDP: the denoiser's ε̂ and, for M_AC, the
        classifier's logits on x̂₀ = c1·x_t − c2·ε̂."""

        def __init__(self):
            super().__init__()
            self.net, self.clf = net, clf

        def forward(self, xt, t, y, c1=None, c2=None):
            out = self.net(xt, t, y)
            if self.clf is None:
                return out, None
            return out, self.clf(c1 * xt - c2 * out)[0]

    model = Step()
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    ab = alpha_bar(run["schedule"]).to(device)
    sab, s1ab = ab.sqrt().float(), (1 - ab).sqrt().float()
    snr = ab / (1 - ab)
    T, B, share = run["schedule"]["T"], r["batch"], r["batch"] // world
    null = cfg["num_classes"]
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        logpath = os.path.join(args.out, LOG)
        if state and os.path.exists(logpath):
            # Lines past the checkpoint (a kill between saves) go: the
            # resumed run writes them again (checkpoint.TruncateLog).
            kept = [l for l in open(logpath) if l.strip() and json.loads(l)["step"] <= step]
            with open(logpath + ".tmp", "w") as f:
                f.writelines(kept)
            os.replace(logpath + ".tmp", logpath)
        log = open(logpath, "a")
    def save():
        log.flush()
        tmp = ckpath + ".tmp"
        torch.save({"run": run, "recipe": r, "net": net.state_dict(), "clf": clf.state_dict() if clf is not None else None,
                    "ema": {n: v.cpu() for n, v in ema.items()}, "opt": opt.state_dict(),
                    "step": step, "rng": gen.get_state(), "data_file": data_file}, tmp)
        os.replace(tmp, ckpath)

    replay = None
    if args.replay:
        # condiff train --record-batches: per example int32 image, t,
        # label, y, then float32 eps[C*H*W] (train.RecordBatch).
        if distributed:
            raise SystemExit("--replay runs in one process")
        D = int(np.prod(images.shape[1:]))
        rec = np.fromfile(args.replay, dtype=np.uint8)
        per = 16 + 4 * D
        if len(rec) % (per * B):
            raise SystemExit(f"--replay {args.replay}: {len(rec)} bytes are not whole batches of {B} examples of {per} bytes")
        if len(rec) // (per * B) < r["steps"]:
            raise SystemExit(f"--replay {args.replay}: {len(rec) // (per * B)} batches, fewer than the run's {r['steps']} steps")
        rec = rec.reshape(-1, per)
        replay = (rec[:, :16].copy().view("<i4"), rec[:, 16:].copy().view("<f4"))
    start, t0 = step, time.time()
    while step < r["steps"]:
        if replay is not None:
            rows = slice(step * B, (step + 1) * B)  # the record starts at step 0
            ints, noise = replay[0][rows], replay[1][rows]
            idx, t, y_fed = (torch.from_numpy(ints[:, k].astype(np.int64)) for k in (0, 1, 3))
            eps = torch.from_numpy(noise).reshape((B,) + tuple(images.shape[1:]))
            x0, y = images[idx].to(device), labels[idx].to(device)
            if not torch.equal(y.long(), torch.from_numpy(ints[:, 2].astype(np.int64)).to(y.device)):
                raise SystemExit(f"--replay {args.replay}: step {step}: the recorded labels are not this dataset's")
            drop = (y_fed == null).to(device) if cfg.get("null_class") else torch.zeros(B, dtype=torch.bool, device=device)
            t, eps = t.to(device), eps.to(device)
        else:
            # The global batch, drawn alike in every process; each takes its share.
            idx = torch.randint(len(labels), (B,), generator=gen)
            t = torch.randint(T, (B,), generator=gen)
            eps = torch.randn((B,) + tuple(images.shape[1:]), generator=gen)
            drop = torch.rand(B, generator=gen, dtype=torch.float64) < r["cfg_drop"]
            mine = slice(rank * share, (rank + 1) * share)
            x0, y, t, eps, drop = images[idx[mine]].to(device), labels[idx[mine]].to(device), t[mine].to(device), eps[mine].to(device), drop[mine].to(device)
        labels_true = y
        if cfg.get("null_class"):
            y = torch.where(drop, torch.full_like(y, null), y)
        if cfg["variant"] == "uncond":
            y = torch.zeros_like(y)
        xt = sab[t][:, None, None, None] * x0 + s1ab[t][:, None, None, None] * eps
        model.train()
        c1 = c2 = None
        if clf is not None:
            c1, c2 = (1 / sab[t])[:, None, None, None], (s1ab[t] / sab[t])[:, None, None, None]
        out, logits = model(xt, t, y, c1, c2)
        sq = (out - eps) ** 2
        mse = sq.mean()
        if r["min_snr_gamma"] > 0:
            w = (torch.minimum(snr[t], torch.tensor(r["min_snr_gamma"], dtype=torch.float64, device=device)) / snr[t]).float()
            loss = (sq * w[:, None, None, None]).mean()
        else:
            loss = mse
        aux = None
        if clf is not None:
            judged = ~drop if cfg.get("null_class") else torch.ones_like(drop)
            # train's crossEntropy: the sum over judged examples, over all n
            aux = -(F.log_softmax(logits, 1).gather(1, labels_true[:, None])[:, 0] * judged).sum() / len(t)
            loss = loss + r["ac_weight"] * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if r["grad_clip"] > 0:  # train.clipGlobalNorm: scale to the bound when over it
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in net.parameters() if p.grad is not None))
            if norm > r["grad_clip"]:
                for p in net.parameters():
                    if p.grad is not None:
                        p.grad.mul_(r["grad_clip"] / norm.item())
        step += 1
        lr = learning_rate(r, step)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        d = min(r["ema_decay"], (1 + step) / (10 + step))
        with torch.no_grad():
            for n, p in net.named().items():
                ema[n].mul_(d).add_(p.detach(), alpha=1 - d)
        losses = torch.stack([loss.detach(), mse.detach(), aux.detach() if aux is not None else torch.zeros((), device=device)])
        if distributed:  # every process's share weighs alike: the global mean
            dist.all_reduce(losses, op=dist.ReduceOp.SUM)
            losses /= world
        loss, mse, aux = losses[0], losses[1], (losses[2] if clf is not None else None)
        if rank == 0:
            ips = (step - start) * B / max(time.time() - t0, 1e-9)
            entry = {"step": step, "loss": loss.item(), "mse": mse.item(), "lr": lr, "img_per_s": ips}
            if aux is not None:
                entry["aux"] = aux.item()
            log.write(json.dumps(entry) + "\n")
            if step % 50 == 0 or step == r["steps"]:
                print(f"train loss {loss.item():.4f} {ips:.1f} img/s: {step}/{r['steps']}", file=sys.stderr, flush=True)
            if save_every and step % save_every == 0 and step < r["steps"]:
                save()
    if rank == 0:
        save()  # the end (also of a run of 0 steps: its initial weights)
        log.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
