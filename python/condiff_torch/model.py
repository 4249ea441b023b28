"""condiff's networks (models/unet.go) on PyTorch.

Net(config) builds the network a condiff config describes (the JSON of
checkpoint.RunConfig's "config", or an export's condiff.config metadata).
Its parameters are named and shaped as in condiff: net.named() maps
"down.0.res.0.conv1.weight" to its tensor. A linear layer's weight is
[in, out] (x·W + b), as condiff stores it.

The forward pass is a line-by-line transcription of models/unet.go against
Ops, PyTorch's implementation of models/ops.go; a change there is made here
too, and the forward-parity test (python/test_parity.py, run by go test)
catches a difference.
"""
import math

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5      # models.NormEps
BN_MOMENTUM = 0.1    # train's bnMomentum: the newest batch's weight; variance stored unbiased


def sinusoid(t, dim):
    """models.Sinusoid: [cos(t·f), sin(t·f)], f_i = exp(−ln(10000)·i/(dim/2)), in float64, rounded once."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64, device=t.device)
    a = t.to(torch.float64)[:, None] * torch.exp(-math.log(10000) * i / half)[None]
    return torch.cat([torch.cos(a), torch.sin(a)], 1).to(torch.float32)


def key(name):
    """A parameter's name as a torch module attribute ('.' is not allowed)."""
    return name.replace(".", "__")


class Ops:
    """models.Ops on PyTorch. With build=True, Param creates each parameter
    (condiff's initialisation: He normal, zeros, ones) in net."""

    def __init__(self, net, build=False, generator=None):
        self.net, self.build, self.gen = net, build, generator

    def param(self, name, shape, init):
        k = key(name)
        if self.build:
            kind, fan_in, scale = init
            t = torch.zeros(shape)
            if kind == "ones":
                t.fill_(1)
            elif kind == "normal":
                t.normal_(0, math.sqrt(2.0 / fan_in) * scale, generator=self.gen)
            self.net.params[k] = nn.Parameter(t)
        return self.net.params[k]

    def conv(self, x, w, b, stride, pad):
        return F.conv2d(x, w, b, stride=stride, padding=pad)

    def linear(self, x, w, b):
        return x @ w + b

    def silu(self, x):
        return F.silu(x)

    def add(self, a, b):
        return a + b

    def add_channels(self, x, v):
        return x + v[:, :, None, None]

    def concat(self, a, b):
        return torch.cat([a, b], 1)

    def upsample(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def norm_act(self, x, gamma, beta, name, kind, groups):
        if kind == "group":
            h = F.group_norm(x, groups, eps=NORM_EPS)
        else:
            h = self.net.batch_norm(x, name)
        if gamma.dim() == 1:
            h = h * gamma[None, :, None, None] + beta[None, :, None, None]
        else:
            h = h * gamma[:, :, None, None] + beta[:, :, None, None]
        return F.silu(h)

    def gather(self, table, y):
        return table[y]

    def time_embedding(self, t, dim):
        if self.net.table is not None:  # the same values, looked up (an export's graph)
            return self.net.table[t]
        return sinusoid(t, dim)

    def to_map(self, x, h, w):
        return x.reshape(x.shape[0], 1, h, w)

    def global_mean(self, x):
        return x.mean(dim=(2, 3))

    def attend(self, q, k, v):
        n, c, h, w = q.shape
        q, k, v = q.reshape(n, c, h * w), k.reshape(n, c, h * w), v.reshape(n, c, h * w)
        s = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # [n i j]
        return torch.bmm(v, s.transpose(1, 2)).reshape(n, c, h, w)


def He(fan_in, scale):
    return ("normal", fan_in, scale)


ZEROS, ONES = ("zeros", 0, 0.0), ("ones", 0, 0.0)


def conv(o, name, x, cin, cout, k, stride, pad, scale):
    init = ZEROS if scale == 0 else He(cin * k * k, scale)
    w = o.param(name + ".weight", [cout, cin, k, k], init)
    b = o.param(name + ".bias", [cout], ZEROS)
    return o.conv(x, w, b, stride, pad)


def linear(o, name, x, cin, cout):
    w = o.param(name + ".weight", [cin, cout], He(cin, 1))
    b = o.param(name + ".bias", [cout], ZEROS)
    return o.linear(x, w, b)


def label_rows(c):
    return c["num_classes"] + (1 if c.get("null_class") else 0)


class Denoiser:
    """models.Denoiser: the DDPM U-Net, conditioned by variant."""

    def __init__(self, cfg):
        self.c = cfg

    def forward(self, o, x, t, y):
        c = self.c
        ch = c["base_channels"]
        temb = self.time_mlp(o, t, ch)
        h, cin = x, c["channels"]
        if c["variant"] == "ac":
            s = c["image_size"]
            m = o.gather(o.param("label_map", [label_rows(c), s * s], He(1, 0.5)), y)
            h = o.concat(h, o.to_map(m, s, s))
            cin += 1
        h = conv(o, "conv_in", h, cin, ch, 3, 1, 1, 1)
        skips, skip_ch, cur = [h], [ch], ch
        mults = c["channel_mult"]
        for lvl, mult in enumerate(mults):
            for i in range(c["num_res_blocks"]):
                h = self.res_block(o, f"down.{lvl}.res.{i}", h, temb, y, cur, mult * ch)
                cur = mult * ch
                h = self.maybe_attn(o, f"down.{lvl}.attn.{i}", lvl, h, y, cur)
                skips.append(h)
                skip_ch.append(cur)
            if lvl != len(mults) - 1:
                h = conv(o, f"down.{lvl}.downsample", h, cur, cur, 3, 2, 1, 1)
                skips.append(h)
                skip_ch.append(cur)
        h = self.res_block(o, "mid.res.0", h, temb, y, cur, cur)
        if c.get("attention_resolutions"):
            h = self.attn_block(o, "mid.attn", h, y, cur)
        h = self.res_block(o, "mid.res.1", h, temb, y, cur, cur)
        for lvl in range(len(mults) - 1, -1, -1):
            mult = mults[lvl]
            for i in range(c["num_res_blocks"] + 1):
                s, sc = skips.pop(), skip_ch.pop()
                h = o.concat(h, s)
                h = self.res_block(o, f"up.{lvl}.res.{i}", h, temb, y, cur + sc, mult * ch)
                cur = mult * ch
                h = self.maybe_attn(o, f"up.{lvl}.attn.{i}", lvl, h, y, cur)
            if lvl != 0:
                h = o.upsample(h)
                h = conv(o, f"up.{lvl}.upsample", h, cur, cur, 3, 1, 1, 1)
        h = self.norm(o, "out.norm", h, y, cur)
        return conv(o, "conv_out", h, cur, c["channels"], 3, 1, 1, 0)

    def time_mlp(self, o, t, ch):
        e = o.time_embedding(t, ch)
        e = linear(o, "time.0", e, ch, 4 * ch)
        return linear(o, "time.1", o.silu(e), 4 * ch, 4 * ch)

    def res_block(self, o, name, x, temb, y, cin, cout):
        h = conv(o, name + ".conv1", self.norm(o, name + ".norm1", x, y, cin), cin, cout, 3, 1, 1, 1)
        h = o.add_channels(h, linear(o, name + ".temb", o.silu(temb), 4 * self.c["base_channels"], cout))
        h = conv(o, name + ".conv2", self.norm(o, name + ".norm2", h, y, cout), cout, cout, 3, 1, 1, 0.1)
        if cin != cout:
            x = conv(o, name + ".skip", x, cin, cout, 1, 1, 0, 1)
        return o.add(x, h)

    def maybe_attn(self, o, name, lvl, x, y, ch):
        if (self.c["image_size"] >> lvl) not in (self.c.get("attention_resolutions") or []):
            return x
        return self.attn_block(o, name, x, y, ch)

    def attn_block(self, o, name, x, y, ch):
        h = self.norm(o, name + ".norm", x, y, ch)
        q = conv(o, name + ".q", h, ch, ch, 1, 1, 0, 1)
        k = conv(o, name + ".k", h, ch, ch, 1, 1, 0, 1)
        v = conv(o, name + ".v", h, ch, ch, 1, 1, 0, 1)
        return o.add(x, conv(o, name + ".proj", o.attend(q, k, v), ch, ch, 1, 1, 0, 0))

    def norm(self, o, name, x, y, ch):
        c = self.c
        if c["variant"] == "cbn":
            g = o.gather(o.param(name + ".gamma", [label_rows(c), ch], ONES), y)
            b = o.gather(o.param(name + ".beta", [label_rows(c), ch], ZEROS), y)
            return o.norm_act(x, g, b, name, c["norm"], c["groups"])
        return o.norm_act(x, o.param(name + ".gamma", [ch], ONES), o.param(name + ".beta", [ch], ZEROS), name, c["norm"], c["groups"])


class Classifier:
    """models.Classifier: three conv-norm-SiLU stages, global mean, linear head."""

    def __init__(self, cfg):
        self.c = cfg

    def forward(self, o, x):
        c = self.c
        ch = c["base_channels"]

        def stage(name, h, cin, cout, stride):
            h = conv(o, name + ".conv", h, cin, cout, 3, stride, 1, 1)
            return o.norm_act(h, o.param(name + ".norm.gamma", [cout], ONES), o.param(name + ".norm.beta", [cout], ZEROS),
                              name + ".norm", c["norm"], c["groups"])

        h = stage("stage.0", x, c["channels"], ch, 1)
        h = stage("stage.1", h, ch, 2 * ch, 2)
        h = stage("stage.2", h, 2 * ch, 4 * ch, 2)
        features = o.global_mean(h)
        return linear(o, "head", features, 4 * ch, c["num_classes"]), features


class Net(nn.Module):
    """The network of a condiff config, its parameters under condiff's names."""

    def __init__(self, cfg, seed=1):
        super().__init__()
        self.cfg = cfg
        self.params = nn.ParameterDict()
        self.bn_names = []
        self.table = None
        self.arch = Denoiser(cfg) if cfg["kind"] == "denoiser" else Classifier(cfg)
        gen = torch.Generator().manual_seed(seed)
        s, n = cfg["image_size"], 2
        x = torch.zeros(n, cfg["channels"], s, s)
        with torch.no_grad():
            o = Ops(self, build=True, generator=gen)
            self._tracing = True
            if cfg["kind"] == "denoiser":
                self.arch.forward(o, x, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
            else:
                self.arch.forward(o, x)
            self._tracing = False

    def batch_norm(self, x, name):
        """Batch norm without affine: batch statistics in training (and the
        running ones updated as train's updateStats does), running
        statistics at inference."""
        rm, rv = key(name + ".running_mean"), key(name + ".running_var")
        if self._tracing:
            c = x.shape[1]
            self.register_buffer(rm, torch.zeros(c))
            self.register_buffer(rv, torch.ones(c))
            self.bn_names.append(name)
        mean, var = getattr(self, rm), getattr(self, rv)
        if self.training and not self._tracing:
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                return self.synced_batch_norm(x, mean, var)
            return F.batch_norm(x, mean, var, training=True, momentum=BN_MOMENTUM, eps=NORM_EPS)
        return F.batch_norm(x, mean, var, training=False, eps=NORM_EPS)

    def synced_batch_norm(self, x, running_mean, running_var):
        """Batch norm over the global batch under DDP (SyncBatchNorm): each
        process's Σx and Σx² per channel (float64) are summed over the
        processes, with their gradients, so that N processes normalise as
        one process with the whole batch does; the running statistics are
        updated alike in every process."""
        dims = [0] + list(range(2, x.dim()))
        n = torch.tensor(float(x.numel() // x.shape[1]), dtype=torch.float64, device=x.device)
        xd = x.double()
        sums = torch.cat([xd.sum(dims), (xd * xd).sum(dims), n[None]])
        sums = dist_nn.all_reduce(sums)
        c = x.shape[1]
        count = sums[2 * c]
        mean = sums[:c] / count
        var = (sums[c:2 * c] / count - mean * mean).clamp_min(0)
        with torch.no_grad():
            running_mean.mul_(1 - BN_MOMENTUM).add_(mean.float(), alpha=BN_MOMENTUM)
            running_var.mul_(1 - BN_MOMENTUM).add_((var * count / (count - 1)).float(), alpha=BN_MOMENTUM)
        shape = [1, c] + [1] * (x.dim() - 2)
        return ((xd - mean.view(shape)) / torch.sqrt(var.view(shape) + NORM_EPS)).float()

    def forward(self, x, t=None, y=None):
        o = Ops(self)
        if self.cfg["kind"] == "denoiser":
            return self.arch.forward(o, x, t, y)
        return self.arch.forward(o, x)

    def use_table(self, T):
        """Look the time embedding up in a [T, base] table of models.Sinusoid
        (as condiff's graph does) instead of computing it: the same values,
        and an exported graph without float64 arithmetic."""
        self.table = sinusoid(torch.arange(T), self.cfg["base_channels"])

    def named(self):
        """condiff's names → parameters."""
        return {k.replace("__", "."): p for k, p in self.params.items()}

    def stats(self):
        """condiff's names → batch-norm running statistics."""
        out = {}
        for name in self.bn_names:
            for s in (".running_mean", ".running_var"):
                out[name + s] = getattr(self, key(name + s))
        return out
