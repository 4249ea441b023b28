package diffusion

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// goldenCase is one chain of testdata/goldens.json, written by goldens.py
// from the published update rules (an implementation that shares no code
// with the samplers here).
type goldenCase struct {
	Name      string    `json:"name"`
	Sampler   string    `json:"sampler"`
	Kind      string    `json:"kind"`
	T         int       `json:"T"`
	BetaStart float64   `json:"beta_start"`
	BetaEnd   float64   `json:"beta_end"`
	Steps     int       `json:"steps"`
	Eta       float64   `json:"eta"`
	Guidance  float64   `json:"guidance"`
	Interval  []float64 `json:"interval"` // [lo, hi] σ values, or absent
	Guide     bool      `json:"guide"`    // autoguidance with guide_fn
	Timesteps []int     `json:"timesteps"`
	Guided    []bool    `json:"guided"` // whether each step is guided
	Images    []struct {
		Label      int         `json:"label"`
		Noise      []float64   `json:"noise"`
		Trajectory [][]float64 `json:"trajectory"`
		Final      []float64   `json:"final"`
	} `json:"images"`
}

type goldens struct {
	Null   int          `json:"null"`
	Values int          `json:"values"`
	Cases  []goldenCase `json:"cases"`
}

// goldenEps is goldens.py's eps_fn, in float64: nonlinear in x, depending
// on t, y and the value index.
type goldenEps struct {
	T     int
	seen  map[int][][]float32 // row label → the x of every call, in order
	calls []int64             // the timestep of every call
	nulls []bool              // whether each call held null rows
}

func (g *goldenEps) Eps(x []float32, t, y []int64, out []float32) error {
	d := len(x) / len(t)
	g.calls = append(g.calls, t[0])
	g.nulls = append(g.nulls, false)
	for i := range t {
		if y[i] == 3 {
			g.nulls[len(g.nulls)-1] = true
		}
		row := x[i*d : (i+1)*d]
		if y[i] != 3 { // the null rows repeat the conditional ones
			g.seen[int(y[i])] = append(g.seen[int(y[i])], append([]float32(nil), row...))
		}
		for k := range row {
			v := math.Tanh(0.9*float64(row[k])+0.25*math.Cos(0.7*float64(k)+1.3*float64(y[i])))*(0.6+float64(t[i])/float64(g.T)) + 0.05*float64(y[i])
			out[i*d+k] = float32(v)
		}
	}
	return nil
}

// goldenGuide is goldens.py's guide_fn: the autoguidance guide.
type goldenGuide struct {
	T     int
	calls []int64 // the timestep of every call
}

func (g *goldenGuide) Eps(x []float32, t, y []int64, out []float32) error {
	d := len(x) / len(t)
	g.calls = append(g.calls, t[0])
	for i := range t {
		for k := 0; k < d; k++ {
			v := math.Tanh(0.6*float64(x[i*d+k])-0.2*math.Sin(0.4*float64(k)+0.9*float64(y[i])))*(0.8+0.5*float64(t[i])/float64(g.T)) - 0.03*float64(y[i])
			out[i*d+k] = float32(v)
		}
	}
	return nil
}

// replay is recorded noise; it fails the test when a chain draws more or
// fewer numbers than the reference did.
type replay struct {
	z []float64
	n int
}

func (r *replay) NormFloat64() float64 {
	if r.n >= len(r.z) {
		r.n++
		return 0
	}
	r.n++
	return r.z[r.n-1]
}

func loadGoldens(t *testing.T) goldens {
	t.Helper()
	b, err := os.ReadFile("testdata/goldens.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldens
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("goldens.json holds no case")
	}
	return g
}

// TestGoldenTrajectories runs every reference chain through Sample (batch
// of two images with different labels, guidance where the case has it:
// classifier-free or with a guide, everywhere or in an interval whose
// bounds are two steps' σ exactly) and compares the denoiser's input at
// every call, the steps that were guided (null rows in the call, or a call
// of the guide) and the finished images with the reference. Tolerance 2e-5: condiff keeps x in float32 (about 6e-8
// relative per step, amplified by 1/√ᾱ ≤ 12 at the noisiest steps here;
// the largest difference seen is 4e-7); a changed coefficient moves values
// by 1e-3 or more.
func TestGoldenTrajectories(t *testing.T) {
	g := loadGoldens(t)
	defer func(f func(uint64, int) Noise) { imageNoise = f }(imageNoise)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			spec := Spec{Kind: c.Kind, T: c.T, BetaStart: c.BetaStart, BetaEnd: c.BetaEnd}
			if c.Kind == "cosine" {
				spec = Spec{Kind: "cosine", T: c.T, S: 0.008}
			}
			sch, err := spec.Build()
			if err != nil {
				t.Fatal(err)
			}
			smp, err := ParseSampler(c.Sampler)
			if err != nil {
				t.Fatal(err)
			}
			streams := map[int]*replay{}
			imageNoise = func(seed uint64, index int) Noise {
				r := &replay{z: c.Images[index].Noise}
				streams[index] = r
				return r
			}
			d := &goldenEps{T: c.T, seen: map[int][][]float32{}}
			req := Request{Sampler: smp, Steps: c.Steps, Eta: c.Eta, Guidance: c.Guidance, Null: g.Null,
				Batch: 2, Values: g.Values, Indices: []int{0, 1}, Labels: []int{c.Images[0].Label, c.Images[1].Label}}
			if c.Interval != nil {
				req.Interval = Interval{Lo: c.Interval[0], Hi: c.Interval[1]}
			}
			guide := &goldenGuide{T: c.T}
			if c.Guide {
				req.Guide = guide
			}
			final := map[int][]float32{}
			err = Sample(context.Background(), d, sch, req, nil, func(idx []int, x []float32) error {
				for i, gi := range idx {
					final[gi] = append([]float32(nil), x[i*g.Values:(i+1)*g.Values]...)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(d.calls) != fmt.Sprint(c.Timesteps) {
				t.Fatalf("timesteps %v, reference %v", d.calls, c.Timesteps)
			}
			var wantGuide []int64
			for i, gd := range c.Guided {
				if gd && c.Guide {
					wantGuide = append(wantGuide, int64(c.Timesteps[i]))
				}
				if nulls := gd && !c.Guide; d.nulls[i] != nulls {
					t.Errorf("step %d (t=%d): null rows %v, reference guided %v (guide %v)", i, c.Timesteps[i], d.nulls[i], gd, c.Guide)
				}
			}
			if fmt.Sprint(guide.calls) != fmt.Sprint(wantGuide) && len(guide.calls)+len(wantGuide) > 0 {
				t.Errorf("the guide was called at %v, reference %v", guide.calls, wantGuide)
			}
			worst := 0.0
			for i, im := range c.Images {
				if s := streams[i]; s.n != len(s.z) {
					t.Errorf("image %d drew %d noise values, reference %d", i, s.n, len(s.z))
				}
				for si, want := range im.Trajectory {
					worst = max(worst, compare(t, fmt.Sprintf("image %d, input of call %d (t=%d)", i, si, c.Timesteps[si]), d.seen[im.Label][si], want))
				}
				worst = max(worst, compare(t, fmt.Sprintf("image %d, final", i), final[i], im.Final))
			}
			t.Logf("largest difference from the reference: %.2g", worst)
		})
	}
}

func compare(t *testing.T, what string, got []float32, want []float64) float64 {
	t.Helper()
	worst := 0.0
	for k := range want {
		d := math.Abs(float64(got[k]) - want[k])
		worst = max(worst, d)
		if !(d <= 2e-5) {
			t.Errorf("%s, value %d: %.6f, reference %.6f", what, k, got[k], want[k])
			return worst
		}
	}
	return worst
}

// TestGoldensCoverEverySampler: a registered sampler without a reference
// chain fails here (the test-only sampler of registry_test.go aside).
func TestGoldensCoverEverySampler(t *testing.T) {
	g := loadGoldens(t)
	for _, s := range Samplers() {
		if s.Name() == testSamplerName {
			continue
		}
		found := false
		for _, c := range g.Cases {
			found = found || c.Sampler == s.Name()
		}
		if !found {
			t.Errorf("sampler %s has no reference chain in testdata/goldens.json", s.Name())
		}
	}
}
