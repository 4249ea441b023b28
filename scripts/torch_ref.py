#!/usr/bin/env python3
"""PyTorch reference of condiff's U-Net (models/unet.go), for `make bench`.

Same architecture (sinusoidal time MLP, residual blocks with the time
projection, len(mult) resolutions, concatenated skips, no attention), same
variants (uncond, cbn, ac) and norms (batch, group). Prints JSON: training
images/s per variant at 32x32, batch 64, base 32, and DDIM-50 sampling
throughput in eager mode at batch 1/16/64. Uses Debian's python3-torch (CPU).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoid(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], 1).float()


class Norm(nn.Module):
    def __init__(self, ch, kind, variant, rows, groups=8):
        super().__init__()
        self.n = nn.BatchNorm2d(ch, affine=False) if kind == "batch" else nn.GroupNorm(groups, ch, affine=False)
        self.cond = variant == "cbn"
        if self.cond:
            self.gamma, self.beta = nn.Embedding(rows, ch), nn.Embedding(rows, ch)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)
        else:
            self.gamma, self.beta = nn.Parameter(torch.ones(ch)), nn.Parameter(torch.zeros(ch))

    def forward(self, x, y):
        h = self.n(x)
        if self.cond:
            return h * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]
        return h * self.gamma[None, :, None, None] + self.beta[None, :, None, None]


class Res(nn.Module):
    def __init__(self, cin, cout, tdim, kind, variant, rows):
        super().__init__()
        self.n1, self.n2 = Norm(cin, kind, variant, rows), Norm(cout, kind, variant, rows)
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb, y):
        h = self.c1(F.silu(self.n1(x, y)))
        h = h + self.t(F.silu(temb))[:, :, None, None]
        h = self.c2(F.silu(self.n2(h, y)))
        return (self.skip(x) if self.skip is not None else x) + h


class UNet(nn.Module):
    def __init__(self, variant, kind, size=32, ch=32, mult=(1, 2, 2), nres=1, classes=10, channels=1):
        super().__init__()
        rows = classes + 1
        self.variant, self.ch, self.size = variant, ch, size
        self.t0, self.t1 = nn.Linear(ch, 4 * ch), nn.Linear(4 * ch, 4 * ch)
        cin = channels
        if variant == "ac":
            self.label_map = nn.Embedding(rows, size * size)
            cin += 1
        self.conv_in = nn.Conv2d(cin, ch, 3, padding=1)
        self.down, skip_ch, cur = nn.ModuleList(), [ch], ch
        for lvl, m in enumerate(mult):
            for _ in range(nres):
                self.down.append(Res(cur, m * ch, 4 * ch, kind, variant, rows))
                cur = m * ch
                skip_ch.append(cur)
            if lvl != len(mult) - 1:
                self.down.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skip_ch.append(cur)
        self.mid = nn.ModuleList([Res(cur, cur, 4 * ch, kind, variant, rows) for _ in range(2)])
        self.up = nn.ModuleList()
        for lvl in reversed(range(len(mult))):
            for _ in range(nres + 1):
                sc = skip_ch.pop()
                self.up.append(Res(cur + sc, mult[lvl] * ch, 4 * ch, kind, variant, rows))
                cur = mult[lvl] * ch
            if lvl != 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cur, cur, 3, padding=1)))
        self.out_norm = Norm(cur, kind, variant, rows)
        self.conv_out = nn.Conv2d(cur, channels, 3, padding=1)

    def forward(self, x, t, y):
        temb = self.t1(F.silu(self.t0(sinusoid(t, self.ch))))
        if self.variant == "ac":
            x = torch.cat([x, self.label_map(y).view(-1, 1, self.size, self.size)], 1)
        h = self.conv_in(x)
        hs = [h]
        for m in self.down:
            h = m(h, temb, y) if isinstance(m, Res) else m(h)
            hs.append(h)
        for m in self.mid:
            h = m(h, temb, y)
        for m in self.up:
            if isinstance(m, Res):
                h = m(torch.cat([h, hs.pop()], 1), temb, y)
            else:
                h = m(h)
        return self.conv_out(F.silu(self.out_norm(h, y)))


class Classifier(nn.Module):
    def __init__(self, ch=32, classes=10, channels=1):
        super().__init__()
        def stage(i, o, s):
            return nn.Sequential(nn.Conv2d(i, o, 3, stride=s, padding=1), nn.GroupNorm(8, o), nn.SiLU())
        self.f = nn.Sequential(stage(channels, ch, 1), stage(ch, 2 * ch, 2), stage(2 * ch, 4 * ch, 2))
        self.head = nn.Linear(4 * ch, classes)

    def forward(self, x):
        return self.head(self.f(x).mean((2, 3)))


def bench_train(variant, kind, steps=5, batch=64):
    torch.manual_seed(0)
    net = UNet(variant, kind)
    params = list(net.parameters())
    clf = None
    if variant == "ac":
        clf = Classifier()
        params += list(clf.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    ema = [p.detach().clone() for p in params]
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    def step():
        x0 = torch.randn(batch, 1, 32, 32)
        t = torch.randint(0, 1000, (batch,))
        y = torch.randint(0, 10, (batch,))
        e = torch.randn_like(x0)
        a = abar[t].sqrt()[:, None, None, None]
        s = (1 - abar[t]).sqrt()[:, None, None, None]
        xt = a * x0 + s * e
        eps = net(xt, t, y)
        loss = F.mse_loss(eps, e)
        if clf is not None:
            loss = loss + 0.1 * F.cross_entropy(clf((xt - s * eps) / a), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            for e_, p in zip(ema, params):
                e_.mul_(0.999).add_(p, alpha=0.001)
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


@torch.no_grad()
def bench_sample(batch, n=16, steps=50):
    torch.manual_seed(0)
    net = UNet("cbn", "batch").eval()
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    ts = [round(999 * (steps - 1 - i) / (steps - 1)) for i in range(steps)]
    n = max(n, batch)
    start = time.perf_counter()
    for b0 in range(0, n, batch):
        x = torch.randn(batch, 1, 32, 32)
        y = torch.arange(batch) % 10
        for i, t in enumerate(ts):
            eps = net(x, torch.full((batch,), t), y)
            a = abar[t].float()
            ap = abar[ts[i + 1]].float() if i + 1 < len(ts) else torch.tensor(1.0)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            e = (x - a.sqrt() * x0) / (1 - a).sqrt()
            x = ap.sqrt() * x0 + (1 - ap).sqrt() * e
    wall = time.perf_counter() - start
    return {"denoiser_evals_per_s": n * steps / wall, "images_per_s": n / wall}


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    out = {"torch": torch.__version__, "threads": threads, "size": 32, "batch": 64, "base": 32}
    for name, variant, kind in [("uncond", "uncond", "batch"), ("cbn_batch", "cbn", "batch"),
                                ("cbn_group", "cbn", "group"), ("ac", "ac", "batch")]:
        out[name + "_img_per_s"] = bench_train(variant, kind)
    for b in (1, 16, 64):
        out["sample_batch%d" % b] = bench_sample(b)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
