package diffusion

import (
	"context"
	"slices"
	"testing"
)

// TestMixedBatch: images of different samplers, step counts, η and
// guidance weights, sharing denoiser calls (each joining and leaving at
// its own time), end bit-identical to each made alone by Sample: what an
// image gets does not depend on what shares its calls.
func TestMixedBatch(t *testing.T) {
	sch := linear(t)
	type job struct {
		s     Sampler
		steps int
		eta   float64
		w     float64
		index int
		label int
		join  int // the call at which it joins
	}
	jobs := []job{
		{DDIM, 10, 0, 0, 0, 1, 0},
		{DPMSolver2M, 7, 0, 1.5, 1, 2, 0},
		{DDIM, 20, 1, 2, 2, 0, 3},
		{DPMSolver2M, 3, 0, 0, 3, 1, 5},
		{DDPM, 0, 0, 1, 4, 2, 1},
	}
	const seed, null, D = 9, 3, 12
	b := &Batch{Values: D}
	f := &fakeDenoiser{T: 1000}
	var active []*Image
	made := make([]*Image, len(jobs))
	for call := 0; ; call++ {
		for i, j := range jobs {
			if j.join == call {
				ts, err := j.s.Timesteps(1000, j.steps)
				if err != nil {
					t.Fatal(err)
				}
				made[i] = NewImage(j.s, Chain{Schedule: sch, Timesteps: ts, Eta: j.eta, Values: D}, j.label, j.w, null, ImageRNG(seed, j.index))
				active = append(active, made[i])
			}
		}
		if len(active) == 0 {
			break
		}
		if err := b.Step(f, active); err != nil {
			t.Fatal(err)
		}
		active = slices.DeleteFunc(active, (*Image).Done)
	}
	if slices.Max(f.sizes) < 5 {
		t.Fatalf("calls of %v rows: the images never shared a call", f.sizes)
	}
	for i, j := range jobs {
		req := Request{Sampler: j.s, Steps: j.steps, Eta: j.eta, Guidance: j.w, Null: null, Seed: seed, Batch: 1, Values: D,
			Indices: []int{j.index}, Labels: []int{j.label}}
		err := Sample(context.Background(), &fakeDenoiser{T: 1000}, sch, req, nil, func(_ []int, x []float32) error {
			if !slices.Equal(x, made[i].X) {
				t.Errorf("job %d (%s): mixed batch %v, alone %v", i, j.s.Name(), made[i].X[:3], x[:3])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
