#!/usr/bin/env python3
"""Writes goldens.json: reverse-chain trajectories of every sampler, computed
from the published update rules by an implementation that shares no code with
condiff's Go samplers. TestGoldenTrajectories replays them.

    /usr/bin/python3 diffusion/testdata/goldens.py > diffusion/testdata/goldens.json

Each case fixes a schedule, a sampler, its step count, η, the guidance weight
w and an ε function (below); the noise (x_T and every draw a stochastic step
makes) comes from NumPy and is stored, in the order a chain consumes it, so
the Go test replays the same noise. Everything is float64 here.

References:
  DDPM: Ho et al. 2020, eq. 6–7 (posterior mean and variance β̃).
  DDIM: Song et al. 2021, eq. 12 and 16 (σ_t(η)); ε re-derived from the
        clipped x̂₀ as improved-diffusion's ddim_sample does.
  DPM-Solver++(2M): Lu et al. 2022, Algorithm 2 (multistep, data
        prediction), first order on the first step and on the last (to σ=0).
  Guidance: Ho & Salimans 2021, ε̃ = (1+w)·ε(x, y) − w·ε(x, ∅).
  Guidance interval: Kynkäänniemi et al. 2024: guidance only at the steps
        whose noise level σ_t = √((1−ᾱ_t)/ᾱ_t) lies in (lo, hi]; the
        others take ε(x, y) alone.
  Autoguidance: Karras et al. 2024, ε̃ = (1+w)·ε(x, y) − w·ε_guide(x, y),
        the guide being a second model (guide_fn below) fed the image's
        own label.
"""
import json
import math
import sys

import numpy as np

NULL = 3  # the null label of the guided cases
D = 6     # values per image


def schedule(kind, T, b0=None, b1=None, s=0.008):
    if kind == "linear":
        betas = np.array([b0 + (b1 - b0) * i / (T - 1) for i in range(T)])
    else:  # Nichol & Dhariwal 2021, eq. 17
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])
    return betas, np.cumprod(1 - betas)


def eps_fn(x, t, y, T):
    """The fixed noise prediction: nonlinear in x, depends on t, y and the
    value index k."""
    k = np.arange(x.shape[0])
    return np.tanh(0.9 * x + 0.25 * np.cos(0.7 * k + 1.3 * y)) * (0.6 + t / T) + 0.05 * y


def guide_fn(x, t, y, T):
    """The guide's noise prediction: another function of x, t, y and k."""
    k = np.arange(x.shape[0])
    return np.tanh(0.6 * x - 0.2 * np.sin(0.4 * k + 0.9 * y)) * (0.8 + 0.5 * t / T) - 0.03 * y


def noise_level(ab, t):
    """σ_t, computed as condiff's Schedule.Sigma does (√(1−ᾱ)/√ᾱ), so that
    an interval bound set to a step's σ is that step's σ exactly."""
    return math.sqrt(1 - ab[t]) / math.sqrt(ab[t])


def uniform(T, steps):
    if steps == 1:
        return [T - 1]
    return [int(math.floor((T - 1) * (steps - 1 - i) / (steps - 1) + 0.5)) for i in range(steps)]


def trailing(T, steps):
    return [T * (steps - k) // steps - 1 for k in range(steps)]


def run(case):
    betas, ab = schedule(case["kind"], case["T"], case.get("beta_start"), case.get("beta_end"))
    T, w, eta, sampler = case["T"], case["guidance"], case["eta"], case["sampler"]
    if sampler == "ddpm":
        ts = list(range(T - 1, -1, -1))
    elif sampler == "ddim-trailing":
        ts = trailing(T, case["steps"])
    else:
        ts = uniform(T, case["steps"])
    rng = np.random.default_rng(case["seed"])
    # An interval given as chain positions [i, j] becomes (σ at step j, σ at
    # step i]: its bounds are two steps' σ exactly, so < against ≤ at either
    # end changes which steps are guided.
    iv = case.get("interval_steps")
    if iv is not None:
        case = {**case, "interval": [noise_level(ab, ts[iv[1]]), noise_level(ab, ts[iv[0]])]}
    lo, hi = case.get("interval", [0, 0])
    guided = [w != 0 and ((lo, hi) == (0, 0) or lo < noise_level(ab, t) <= hi) for t in ts]
    images = []
    for label in case["labels"]:
        noise = []

        def draw():
            z = rng.standard_normal(D)
            noise.extend(z.tolist())
            return z

        x = draw()
        traj, x0s = [], []
        for i, t in enumerate(ts):
            traj.append(x.tolist())
            e = eps_fn(x, t, label, T)
            if guided[i]:
                other = guide_fn(x, t, label, T) if case.get("guide") else eps_fn(x, t, NULL, T)
                e = (1 + w) * e - w * other
            x0 = np.clip((x - math.sqrt(1 - ab[t]) * e) / math.sqrt(ab[t]), -1, 1)
            nxt = ts[i + 1] if i + 1 < len(ts) else -1
            a_next = ab[nxt] if nxt >= 0 else 1.0
            if sampler == "ddpm":
                mean = (math.sqrt(a_next) * betas[t] / (1 - ab[t])) * x0 \
                    + (math.sqrt(1 - betas[t]) * (1 - a_next) / (1 - ab[t])) * x
                var = (1 - a_next) / (1 - ab[t]) * betas[t]
                x = mean + math.sqrt(var) * draw() if t > 0 else mean
            elif sampler in ("ddim", "ddim-trailing"):
                e_hat = (x - math.sqrt(ab[t]) * x0) / math.sqrt(1 - ab[t])
                sigma = eta * math.sqrt((1 - a_next) / (1 - ab[t])) * math.sqrt(1 - ab[t] / a_next)
                x = math.sqrt(a_next) * x0 + math.sqrt(max(0.0, 1 - a_next - sigma ** 2)) * e_hat
                if sigma > 0:
                    x = x + sigma * draw()
            elif sampler == "dpm++2m":
                alpha = lambda a: math.sqrt(a)
                sig = lambda a: math.sqrt(1 - a)
                lam = lambda a: math.log(alpha(a) / sig(a)) if a < 1 else math.inf
                h = lam(a_next) - lam(ab[t])
                if i == 0 or nxt < 0:  # first order: the first and the last step
                    Dv = x0
                else:
                    h_prev = lam(ab[t]) - lam(ab[ts[i - 1]])
                    r = h_prev / h
                    Dv = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0s[-1]
                x = (sig(a_next) / sig(ab[t])) * x - alpha(a_next) * (math.exp(-h) - 1) * Dv
            x0s.append(x0)
        images.append({"label": label, "noise": noise, "trajectory": traj, "final": x.tolist()})
    return {**case, "timesteps": ts, "guided": guided, "images": images}


CASES = [
    dict(name="ddpm linear", sampler="ddpm", kind="linear", T=50, beta_start=1e-3, beta_end=0.2, steps=0, eta=0, guidance=0),
    dict(name="ddpm cosine guided", sampler="ddpm", kind="cosine", T=20, steps=0, eta=0, guidance=1),
    dict(name="ddim eta 0", sampler="ddim", kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, steps=10, eta=0, guidance=0),
    dict(name="ddim eta 1", sampler="ddim", kind="linear", T=50, beta_start=1e-3, beta_end=0.2, steps=10, eta=1, guidance=0),
    dict(name="ddim eta 0.5 cosine guided", sampler="ddim", kind="cosine", T=100, steps=7, eta=0.5, guidance=1.5),
    dict(name="dpm++2m second order", sampler="dpm++2m", kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, steps=10, eta=0, guidance=0),
    dict(name="dpm++2m cosine guided", sampler="dpm++2m", kind="cosine", T=100, steps=8, eta=0, guidance=2),
    dict(name="dpm++2m first order", sampler="dpm++2m", kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, steps=2, eta=0, guidance=0),
    dict(name="dpm++2m one step", sampler="dpm++2m", kind="cosine", T=100, steps=1, eta=0, guidance=0),
    dict(name="ddim interval", sampler="ddim", kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, steps=10, eta=0, guidance=2,
         interval_steps=[3, 7]),
    dict(name="dpm++2m cosine interval", sampler="dpm++2m", kind="cosine", T=100, steps=8, eta=0, guidance=1.5,
         interval_steps=[0, 4]),
    dict(name="ddim eta 1 guide", sampler="ddim", kind="linear", T=50, beta_start=1e-3, beta_end=0.2, steps=10, eta=1, guidance=1.5,
         guide=True),
    dict(name="ddpm cosine guide interval", sampler="ddpm", kind="cosine", T=20, steps=0, eta=0, guidance=1, guide=True,
         interval_steps=[5, 14]),
    dict(name="ddim trailing guided", sampler="ddim-trailing", kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, steps=4, eta=0,
         guidance=1),
]

if __name__ == "__main__":
    out = []
    for seed, c in enumerate(CASES):
        out.append(run({**c, "seed": 100 + seed, "labels": [0, 2]}))
    sys.stdout.write('{"null": %d, "values": %d, "cases": [\n' % (NULL, D))
    sys.stdout.write(",\n".join(json.dumps(c) for c in out))
    sys.stdout.write("\n]}\n")
