package diffusion

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/condiff/condiff/internal/field"
)

// Denoiser predicts noise: x [n C H W], t [n], y [n] -> out [n C H W]. The
// ONNX Runtime session satisfies it; so can any other implementation.
type Denoiser interface {
	Eps(x []float32, t, y []int64, out []float32) error
}

// Request says what to sample.
type Request struct {
	Sampler  Sampler
	Steps    int     // model evaluations for ddim and dpm++2m (ddpm: 0 or T)
	Eta      float64 // ddim stochasticity (0: deterministic)
	Guidance float64 // classifier-free guidance weight W
	Null     int     // the null class label (for guidance)
	Seed     uint64
	Batch    int   // images per denoiser call (a guided call runs 2× this)
	Values   int   // values per image: C·H·W
	Indices  []int // which images (global indices) to make
	Labels   []int // label of each image in Indices
}

// ImageRNG is the noise stream of image index i: it does not depend on the
// batch or the shard the image is made in.
func ImageRNG(seed uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x696d616765<<20^uint64(index)))
}

// Sample runs the reverse chain for the images of req in batches, calling
// done with each finished batch's global indices and pixels [b C H W] in
// [-1, 1]. It stops between steps when ctx is cancelled, returning
// ctx.Err(); batches already passed to done are complete. step, if not nil,
// is called after every denoiser call.
//
// With guidance W the denoiser runs once per step on 2n rows (conditional
// rows, then null rows) and ε = (1+W)·ε(x, y) − W·ε(x, ∅).
func Sample(ctx context.Context, d Denoiser, sch *Schedule, req Request, step func(), done func(indices []int, x []float32) error) error {
	ts, err := Timesteps(req.Sampler, sch.Spec.T, req.Steps)
	if err != nil {
		return err
	}
	if !(req.Eta >= 0) || math.IsInf(req.Eta, 0) {
		return field.Errorf("diffusion", "Eta", req.Eta, "must be a finite number >= 0")
	}
	if !(req.Guidance >= 0) || math.IsInf(req.Guidance, 0) {
		return field.Errorf("diffusion", "Guidance", req.Guidance, "must be a finite number >= 0")
	}
	if req.Batch < 1 {
		return field.Errorf("diffusion", "Batch", req.Batch, "must be > 0")
	}
	if len(req.Labels) != len(req.Indices) {
		return field.Errorf("diffusion", "Labels", len(req.Labels), "%d labels for %d images", len(req.Labels), len(req.Indices))
	}
	B, D := min(req.Batch, max(1, len(req.Indices))), req.Values
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
				if cerr := ctx.Err(); cerr != nil {
					return cerr // the denoiser was stopped by the cancellation
				}
				return err
			}
			if err := finite(eps, D, si, len(ts), t, "the model output"); err != nil {
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
				hPrev = sch.lambda(t) - sch.lambda(ts[si-1])
			}
			for i := 0; i < n; i++ {
				sl := i * D
				update(req, sch, t, next, si, hPrev, xs[sl:sl+D], eps[sl:sl+D], x0[sl:sl+D], prevX0[sl:sl+D], rngs[i])
			}
			if err := finite(xs, D, si, len(ts), t, "the sampler state"); err != nil {
				return err
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

// NonFiniteError says that a reverse step met NaN or Inf.
type NonFiniteError struct {
	Step, Steps int    // 1-based step of the chain, and the chain's length
	T           int    // the model timestep of that step
	What        string // "the model output" or "the sampler state"
	Row, Index  int    // first bad value: the batch row and the value within it
	Value       float32
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("diffusion: step %d of %d (t=%d): %s is not finite (%v in batch row %d, value %d); no image of this batch was written",
		e.Step, e.Steps, e.T, e.What, e.Value, e.Row, e.Index)
}

// finite checks v ([rows D]) for NaN and Inf.
func finite(v []float32, D, si, steps, t int, what string) error {
	for k, x := range v {
		if x-x != 0 { // NaN or ±Inf
			return &NonFiniteError{Step: si + 1, Steps: steps, T: t, What: what, Row: k / D, Index: k % D, Value: x}
		}
	}
	return nil
}

// update moves one image from timestep t to next (-1: clean) in place.
func update(req Request, sch *Schedule, t, next, si int, hPrev float64, x, eps, x0, prevX0 []float32, rng *rand.Rand) {
	sch.PredictX0(t, x, eps, x0)
	switch req.Sampler {
	case DDPM:
		DDPMStep(sch, t, x, x0, rng)
	case DDIM:
		DDIMStep(sch, t, next, req.Eta, x, x0, rng)
	case DPMSolver2M:
		if next < 0 {
			copy(x, x0)
		} else {
			DPMSolver2MStep(sch, t, next, si, hPrev, x, x0, prevX0)
		}
		copy(prevX0, x0)
	}
}
