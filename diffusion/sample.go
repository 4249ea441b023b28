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
	Steps    int      // model evaluations (0: the sampler's default; ddpm takes only 0 or T)
	Eta      float64  // stochasticity, for samplers that take it (0: deterministic)
	Guidance float64  // guidance weight W
	Null     int      // the null class label (for classifier-free guidance)
	Interval Interval // the noise levels guidance applies at (zero: all)
	Guide    Denoiser // the autoguidance guide (nil: classifier-free guidance with Null)
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

// imageNoise is the noise of image index: ImageRNG. The golden tests
// replay recorded noise through it.
var imageNoise = func(seed uint64, index int) Noise { return ImageRNG(seed, index) }

// Check validates the sampling parameters of r for a schedule of T steps
// and returns the timesteps of its chains. It is the one home of these
// checks: Sample calls it, and callers that must refuse bad options before
// they write anything call it first.
func (r Request) Check(T int) ([]int, error) {
	if r.Sampler == nil {
		return nil, field.Errorf("diffusion", "Sampler", "", "not set: one of %s", SamplerNames())
	}
	ts, err := r.Sampler.Timesteps(T, r.Steps)
	if err != nil {
		return nil, err
	}
	if !(r.Eta >= 0 && r.Eta <= 1) {
		// σ = η·√((1−ᾱ')/(1−ᾱ))·√(1−ᾱ/ᾱ') passes √(1−ᾱ') past η = 1:
		// more noise than the forward process holds at the next step.
		return nil, field.Errorf("diffusion", "Eta", r.Eta, "must be a number in [0, 1]")
	}
	if r.Eta != 0 && !r.Sampler.TakesEta() {
		return nil, field.Errorf("diffusion", "Eta", r.Eta, "the %s sampler is not stochastic; leave it 0 or pick one that takes it", r.Sampler.Name())
	}
	// Guide computes in float32: a weight finite as float64 can be Inf there.
	if !(r.Guidance >= 0) || math.IsInf(float64(float32(r.Guidance)), 0) {
		return nil, field.Errorf("diffusion", "Guidance", r.Guidance, "must be a number >= 0 and finite as float32 (at most %g)", math.MaxFloat32)
	}
	if err := r.Interval.Check(); err != nil {
		return nil, err
	}
	if r.Batch < 1 {
		return nil, field.Errorf("diffusion", "Batch", r.Batch, "must be > 0")
	}
	if len(r.Labels) != len(r.Indices) {
		return nil, field.Errorf("diffusion", "Labels", len(r.Labels), "%d labels for %d images", len(r.Labels), len(r.Indices))
	}
	return ts, nil
}

// Sample runs the reverse chain for the images of req in batches, calling
// done with each finished batch's global indices and pixels [b C H W] in
// [-1, 1]. It stops between steps when ctx is cancelled, returning
// ctx.Err(); batches already passed to done are complete. step, if not nil,
// is called after every denoiser call.
//
// With guidance W the denoiser runs once per step on up to 2n rows
// (conditional rows, then the null rows of the images guided at that step)
// and ε = (1+W)·ε(x, y) − W·ε(x, ∅); with a guide, the guide runs on the
// second rows instead, with the image's own label. The loop knows
// no sampler: each image's Row owns its state, and Batch.Step is the step
// the sampling service makes over images of many requests.
func Sample(ctx context.Context, d Denoiser, sch *Schedule, req Request, step func(), done func(indices []int, x []float32) error) error {
	ts, err := req.Check(sch.Spec.T)
	if err != nil {
		return err
	}
	B, D := min(req.Batch, max(1, len(req.Indices))), req.Values
	chain := Chain{Schedule: sch, Timesteps: ts, Eta: req.Eta, Values: D}
	b := &Batch{Values: D, Guide: req.Guide}
	g := Guidance{Weight: req.Guidance, Interval: req.Interval, Null: req.Null, Auto: req.Guide != nil}
	images := make([]*Image, 0, B)
	xs := make([]float32, B*D)
	for start := 0; start < len(req.Indices); start += B {
		idx := req.Indices[start:min(start+B, len(req.Indices))]
		images = images[:0]
		for i, gi := range idx {
			images = append(images, NewImage(req.Sampler, chain, req.Labels[start+i], g, imageNoise(req.Seed, gi)))
		}
		for range ts {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := b.Step(d, images); err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return cerr // the denoiser was stopped by the cancellation
				}
				return err
			}
			for _, im := range images {
				if err := im.Err(); err != nil {
					return err // no image of this batch is written
				}
			}
			if step != nil {
				step()
			}
		}
		for i, im := range images {
			copy(xs[i*D:], im.X)
		}
		if err := done(idx, xs[:len(idx)*D]); err != nil {
			return err
		}
	}
	return nil
}

// Guide combines conditional and null predictions in place:
// cond = (1+w)·cond − w·null, value by value.
func Guide(w float64, cond, null []float32) {
	wf := float32(w)
	for k := range cond {
		cond[k] = (1+wf)*cond[k] - wf*null[k]
	}
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
func finite(v []float32, D, si, steps, t int, what string) *NonFiniteError {
	for k, x := range v {
		if x-x != 0 { // NaN or ±Inf
			return &NonFiniteError{Step: si + 1, Steps: steps, T: t, What: what, Row: k / D, Index: k % D, Value: x}
		}
	}
	return nil
}
