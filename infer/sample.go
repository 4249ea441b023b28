package infer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/condiff/condiff/schedule"
)

// Denoiser predicts noise: x [n C H W], t [n], y [n] -> out [n C H W]. The
// ONNX Runtime Session satisfies it; so can any other implementation.
type Denoiser interface {
	Eps(x []float32, t, y []int64, out []float32) error
}

// Samplers.
const (
	DDPM      = "ddpm"    // ancestral, all T steps
	DDIM      = "ddim"    // respaced, --eta
	DPMSolver = "dpm++2m" // DPM-Solver++(2M), data prediction, multistep
)

// Request says what to sample.
type Request struct {
	Sampler  string
	Steps    int     // model evaluations for ddim and dpm++2m (ddpm: T)
	Eta      float64 // ddim stochasticity (0: deterministic)
	Guidance float64 // classifier-free guidance weight W
	Null     int     // the null class index (for guidance)
	Seed     uint64
	Batch    int
	Sample   int   // values per image: C·H·W
	Indices  []int // which images (global indices) to make
	Labels   []int // label of each image in Indices
}

// Timesteps returns the model timesteps a sampler visits, descending.
func Timesteps(sampler string, T, steps int) ([]int, error) {
	switch sampler {
	case DDPM:
		ts := make([]int, T)
		for i := range ts {
			ts[i] = T - 1 - i
		}
		return ts, nil
	case DDIM, DPMSolver:
		if steps < 1 || steps > T {
			return nil, fmt.Errorf("--steps %d is out of 1..%d (the model's T)", steps, T)
		}
		// Evenly spaced from T-1 down, ending at the lowest timestep 0:
		// t_i = round((T-1)·(steps-1-i)/(steps-1)).
		ts := make([]int, steps)
		for i := range ts {
			if steps == 1 {
				ts[i] = T - 1
				continue
			}
			ts[i] = int(math.Round(float64(T-1) * float64(steps-1-i) / float64(steps-1)))
		}
		return ts, nil
	}
	return nil, fmt.Errorf("--sampler %q is not ddpm, ddim or dpm++2m", sampler)
}

// ImageRNG is the noise stream of image index i: it does not depend on the
// batch or the shard the image is made in.
func ImageRNG(seed uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x696d616765<<20^uint64(index)))
}

// Run samples the images of req in batches, calling done with each finished
// batch's global indices and pixels [b C H W] in [-1, 1]. It stops between
// steps when ctx is cancelled, returning ctx.Err(); batches already passed to
// done are complete. step is called after every denoiser call.
func Run(ctx context.Context, d Denoiser, sch *schedule.Schedule, req Request, step func(), done func(indices []int, x []float32) error) error {
	ts, err := Timesteps(req.Sampler, sch.Spec.T, req.Steps)
	if err != nil {
		return err
	}
	if req.Eta < 0 {
		return fmt.Errorf("--eta %g < 0", req.Eta)
	}
	B, D := req.Batch, req.Sample
	guided := req.Guidance != 0
	mult := 1
	if guided {
		mult = 2
	}
	// Buffers sized once for the largest batch; no allocation per step.
	x := make([]float32, B*D)
	x0 := make([]float32, B*D)
	prevX0 := make([]float32, B*D)
	in := make([]float32, mult*B*D)
	out := make([]float32, mult*B*D)
	tin := make([]int64, mult*B)
	yin := make([]int64, mult*B)
	rngs := make([]*rand.Rand, B)

	for start := 0; start < len(req.Indices); start += B {
		idx := req.Indices[start:min(start+B, len(req.Indices))]
		labels := req.Labels[start : start+len(idx)]
		n := len(idx)
		xs := x[:n*D]
		for i, gi := range idx {
			rngs[i] = ImageRNG(req.Seed, gi)
			for k := 0; k < D; k++ {
				xs[i*D+k] = float32(rngs[i].NormFloat64())
			}
		}
		for si, t := range ts {
			if err := ctx.Err(); err != nil {
				return err
			}
			// One batched call of mult·n: conditional rows, then null rows.
			copy(in, xs)
			for i := 0; i < n; i++ {
				tin[i], yin[i] = int64(t), int64(labels[i])
			}
			if guided {
				copy(in[n*D:], xs)
				for i := 0; i < n; i++ {
					tin[n+i], yin[n+i] = int64(t), int64(req.Null)
				}
			}
			eps := out[:mult*n*D]
			if err := d.Eps(in[:mult*n*D], tin[:mult*n], yin[:mult*n], eps); err != nil {
				return err
			}
			if guided {
				w := float32(req.Guidance)
				for k := 0; k < n*D; k++ {
					eps[k] = (1+w)*eps[k] - w*eps[n*D+k]
				}
			}
			next := -1 // -1: the clean image
			if si+1 < len(ts) {
				next = ts[si+1]
			}
			hPrev := 0.0
			if si > 0 {
				hPrev = lambda(sch, t) - lambda(sch, ts[si-1])
			}
			for i := 0; i < n; i++ {
				sl := i * D
				update(req, sch, t, next, si, hPrev, xs[sl:sl+D], eps[sl:sl+D], x0[sl:sl+D], prevX0[sl:sl+D], rngs[i])
			}
			if step != nil {
				step()
			}
		}
		if err := done(idx, xs); err != nil {
			return err
		}
	}
	return nil
}

// lambda is the half log-SNR log(alpha_t/sigma_t) of timestep t.
func lambda(sch *schedule.Schedule, t int) float64 {
	return math.Log(sch.SqrtAB[t] / sch.SqrtOneAB[t])
}

// PredictX0 returns the clean image implied by x_t and eps, clipped to [-1, 1].
func PredictX0(sch *schedule.Schedule, t int, x, eps, x0 []float32) {
	a, s := sch.SqrtAB[t], sch.SqrtOneAB[t]
	for k := range x {
		v := (float64(x[k]) - s*float64(eps[k])) / a
		x0[k] = float32(math.Max(-1, math.Min(1, v)))
	}
}

// update moves one image from timestep t to next (-1: clean) in place.
func update(req Request, sch *schedule.Schedule, t, next, si int, hPrev float64, x, eps, x0, prevX0 []float32, rng *rand.Rand) {
	PredictX0(sch, t, x, eps, x0)
	switch req.Sampler {
	case DDPM:
		DDPMStep(sch, t, x, x0, rng)
	case DDIM:
		DDIMStep(sch, t, next, req.Eta, x, x0, rng)
	case DPMSolver:
		if next < 0 {
			copy(x, x0)
		} else {
			DPMSolver2MStep(sch, t, next, si, hPrev, x, x0, prevX0)
		}
		copy(prevX0, x0)
	}
}

// DDPMStep is Ho et al.'s ancestral step from t to t-1 with the posterior
// q(x_{t-1} | x_t, x0): mean c1·x0 + c2·x_t, variance β̃_t; no noise at t=0.
func DDPMStep(sch *schedule.Schedule, t int, x, x0 []float32, rng *rand.Rand) {
	abPrev := 1.0
	if t > 0 {
		abPrev = sch.AlphaBar[t-1]
	}
	ab, beta := sch.AlphaBar[t], sch.Betas[t]
	c1 := beta * math.Sqrt(abPrev) / (1 - ab)
	c2 := (1 - abPrev) * math.Sqrt(1-beta) / (1 - ab)
	sigma := math.Sqrt(beta * (1 - abPrev) / (1 - ab))
	for k := range x {
		v := c1*float64(x0[k]) + c2*float64(x[k])
		if t > 0 {
			v += sigma * rng.NormFloat64()
		}
		x[k] = float32(v)
	}
}

// DDIMStep is Song et al.'s step from t to next (-1: clean), with the noise
// re-derived from the clipped x0: x' = √ᾱ'·x0 + √(1−ᾱ'−σ²)·ε + σ·z,
// σ = η·√((1−ᾱ')/(1−ᾱ))·√(1−ᾱ/ᾱ').
func DDIMStep(sch *schedule.Schedule, t, next int, eta float64, x, x0 []float32, rng *rand.Rand) {
	ab := sch.AlphaBar[t]
	abPrev := 1.0
	if next >= 0 {
		abPrev = sch.AlphaBar[next]
	}
	sigma := eta * math.Sqrt((1-abPrev)/(1-ab)) * math.Sqrt(1-ab/abPrev)
	dir := math.Sqrt(math.Max(0, 1-abPrev-sigma*sigma))
	for k := range x {
		e := (float64(x[k]) - math.Sqrt(ab)*float64(x0[k])) / math.Sqrt(1-ab)
		v := math.Sqrt(abPrev)*float64(x0[k]) + dir*e
		if sigma > 0 {
			v += sigma * rng.NormFloat64()
		}
		x[k] = float32(v)
	}
}

// DPMSolver2MStep is DPM-Solver++(2M) (Lu et al. 2022) from s=t to next:
// first order on the first step, second order after, with
// h = λ_next − λ_s, r = h_prev/h, D = x0 + (x0 − x0_prev)/(2r).
func DPMSolver2MStep(sch *schedule.Schedule, t, next, si int, hPrev float64, x, x0, prevX0 []float32) {
	h := lambda(sch, next) - lambda(sch, t)
	ratio := sch.SqrtOneAB[next] / sch.SqrtOneAB[t]
	phi := sch.SqrtAB[next] * (math.Exp(-h) - 1) // α_next·(e^{−h} − 1)
	second := si > 0 && hPrev > 0
	r := hPrev / h
	for k := range x {
		d := float64(x0[k])
		if second {
			d += (float64(x0[k]) - float64(prevX0[k])) / (2 * r)
		}
		x[k] = float32(ratio*float64(x[k]) - phi*d)
	}
}
