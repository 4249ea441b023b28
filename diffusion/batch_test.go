package diffusion

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
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
				made[i] = NewImage(j.s, Chain{Schedule: sch, Timesteps: ts, Eta: j.eta, Values: D}, j.label, Guidance{Weight: j.w, Null: null}, ImageRNG(seed, j.index))
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

// nanFor answers NaN on the rows of one label and the fake denoiser's
// values on the others.
type nanFor struct {
	fakeDenoiser
	label int64
}

func (f *nanFor) Eps(x []float32, t, y []int64, out []float32) error {
	f.fakeDenoiser.Eps(x, t, y, out)
	d := len(x) / len(t)
	for i := range t {
		if y[i] == f.label {
			out[i*d+d/2] = float32(math.NaN())
		}
	}
	return nil
}

// TestNonFiniteImageFailsAlone: a row the model answers NaN on, whether
// an image's own or its null row, fails that image only (Err names the
// step and what was not finite); the images sharing those calls go on and
// end bit-identical to each made alone.
func TestNonFiniteImageFailsAlone(t *testing.T) {
	sch := linear(t)
	const seed, null, D, poison = 9, 3, 12, 2
	ts, err := DDIM.Timesteps(1000, 6)
	if err != nil {
		t.Fatal(err)
	}
	chain := Chain{Schedule: sch, Timesteps: ts, Values: D}
	images := []*Image{
		NewImage(DDIM, chain, 0, Guidance{Weight: 1, Null: null}, ImageRNG(seed, 0)),
		NewImage(DDIM, chain, poison, Guidance{Null: null}, ImageRNG(seed, 1)),         // NaN from the model at step 1
		NewImage(DDIM, chain, 1, Guidance{Weight: 2, Null: poison}, ImageRNG(seed, 2)), // NaN in its null row
		NewImage(DDIM, chain, 1, Guidance{Null: null}, ImageRNG(seed, 3)),
	}
	b := &Batch{Values: D}
	active := slices.Clone(images)
	for len(active) > 0 {
		if err := b.Step(&nanFor{fakeDenoiser{T: 1000}, poison}, active); err != nil {
			t.Fatalf("the call failed for all: %v", err)
		}
		active = slices.DeleteFunc(active, func(im *Image) bool { return im.Done() || im.Err() != nil })
	}
	for i, want := range []string{"", "step 1 of 6 (t=", "step 1 of 6 (t=", ""} {
		err := images[i].Err()
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("image %d: Err %v, want one naming %q", i, err, want)
		}
		var nf *NonFiniteError
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("image %d: %T, want *NonFiniteError", i, err)
		}
	}
	for _, i := range []int{0, 3} {
		req := Request{Sampler: DDIM, Steps: 6, Guidance: images[i].Guidance.Weight, Null: null, Seed: seed, Batch: 1, Values: D,
			Indices: []int{i}, Labels: []int{images[i].Label}}
		err := Sample(context.Background(), &fakeDenoiser{T: 1000}, sch, req, nil, func(_ []int, x []float32) error {
			if !slices.Equal(x, images[i].X) {
				t.Errorf("image %d: beside failing images %v, alone %v", i, images[i].X[:3], x[:3])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Sample still fails the whole batch (no image of it is written).
	req := Request{Sampler: DDIM, Steps: 6, Null: null, Seed: seed, Batch: 2, Values: D, Indices: []int{0, 1}, Labels: []int{0, poison}}
	err = Sample(context.Background(), &nanFor{fakeDenoiser{T: 1000}, poison}, sch, req, nil, func([]int, []float32) error {
		t.Error("a batch with a failed image was written")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "the model output is not finite") {
		t.Errorf("Sample over a NaN row: %v", err)
	}
}

// TestCheckPrecision: weights are checked in the precision they are used
// in: a guidance finite as float64 and infinite as float32 is refused, and
// η past 1 (σ over √(1−ᾱ')) too.
func TestCheckPrecision(t *testing.T) {
	base := Request{Sampler: DDIM, Steps: 10, Batch: 1}
	for _, c := range []struct {
		eta, w float64
		want   string
	}{{0, 1e300, "guidance 1e+300"}, {0, 4e38, "finite as float32"}, {1e300, 0, "eta 1e+300"}, {1.5, 0, "[0, 1]"}, {0, math.NaN(), "guidance"}} {
		r := base
		r.Eta, r.Guidance = c.eta, c.w
		if _, err := r.Check(1000); err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.want)) {
			t.Errorf("eta %g guidance %g: %v, want an error naming %q", c.eta, c.w, err, c.want)
		}
	}
	r := base
	r.Eta, r.Guidance = 1, 3e38
	if _, err := r.Check(1000); err != nil {
		t.Errorf("eta 1, guidance 3e38 (finite as float32): %v", err)
	}
}

// TestIntervalRows: an image guided within an interval takes two rows at
// the steps whose σ lies in it and one elsewhere; an autoguided image's
// second row goes to the guide, never to the main denoiser; a request's
// interval is checked.
func TestIntervalRows(t *testing.T) {
	sch, err := Spec{Kind: "linear", T: 1000, BetaStart: 1e-4, BetaEnd: 0.02}.Build()
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := DDIM.Timesteps(1000, 10)
	const D = 4
	chain := Chain{Schedule: sch, Timesteps: ts, Values: D}
	iv := Interval{Lo: sch.Sigma(ts[7]), Hi: sch.Sigma(ts[3])}
	for _, auto := range []bool{false, true} {
		im := NewImage(DDIM, chain, 1, Guidance{Weight: 1, Interval: iv, Null: 9, Auto: auto}, ImageRNG(1, 0))
		main, guide := &rowCounter{}, &rowCounter{}
		b := &Batch{Values: D, Guide: guide}
		var rows []int
		for !im.Done() {
			rows = append(rows, im.Rows())
			if err := b.Step(main, []*Image{im}); err != nil {
				t.Fatal(err)
			}
		}
		if fmt.Sprint(rows) != "[1 1 1 2 2 2 2 1 1 1]" {
			t.Errorf("auto %v: rows per step %v; want two at steps 3..6 (σ in (σ₇, σ₃])", auto, rows)
		}
		wantMain, wantNull, wantGuide := 14, 4, 0
		if auto {
			wantMain, wantNull, wantGuide = 10, 0, 4
		}
		if main.rows != wantMain || main.null != wantNull || guide.rows != wantGuide {
			t.Errorf("auto %v: %d main rows (%d null), %d guide rows; want %d (%d), %d", auto, main.rows, main.null, guide.rows, wantMain, wantNull, wantGuide)
		}
	}
	for _, s := range []string{"1,0.5", "-1,2", "x,2", "1", "nan,2"} {
		if _, err := ParseInterval(s); err == nil {
			t.Errorf("interval %q accepted", s)
		}
	}
	if iv, err := ParseInterval("0.3,inf"); err != nil || !iv.Contains(1e9) || iv.Contains(0.3) {
		t.Errorf("0.3,inf: %v %v", iv, err)
	}
}

// rowCounter is a denoiser that counts its rows (and the null rows, label 9).
type rowCounter struct{ rows, null int }

func (c *rowCounter) Eps(x []float32, t, y []int64, out []float32) error {
	c.rows += len(t)
	for _, l := range y {
		if l == 9 {
			c.null++
		}
	}
	for k := range out {
		out[k] = 0.1 * x[k]
	}
	return nil
}
