package diffusion

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fakeDenoiser predicts eps = 0.3·x + t/T·0.1 + 0.05·y elementwise: cheap,
// deterministic and independent of the batch it runs in.
type fakeDenoiser struct {
	T     int
	calls int
	sizes []int
}

func (f *fakeDenoiser) Eps(x []float32, t, y []int64, out []float32) error {
	f.calls++
	f.sizes = append(f.sizes, len(t))
	d := len(x) / len(t)
	for i := range t {
		for k := 0; k < d; k++ {
			out[i*d+k] = 0.3*x[i*d+k] + float32(t[i])/float32(f.T)*0.1 + 0.05*float32(y[i])
		}
	}
	return nil
}

func linear(t *testing.T) *Schedule {
	sp, _ := Default("linear", 1000)
	s, err := sp.Build()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDDPMStepReference: with x0 inside [-1, 1] (no clipping), the step's
// mean equals Ho et al.'s 1/√α_t·(x_t − β_t/√(1−ᾱ_t)·ε), and its noise is
// σ_t·z with σ_t² = β̃_t.
func TestDDPMStepReference(t *testing.T) {
	sch := linear(t)
	for _, ts := range []int{999, 500, 10, 0} {
		eps := []float32{0.5, -1.2, 0.3}
		x := make([]float32, 3)
		for k, v := range []float64{0.4, -0.7, 0.1} { // x0 inside [-1, 1]
			x[k] = float32(sch.SqrtAB[ts]*v + sch.SqrtOneAB[ts]*float64(eps[k]))
		}
		x0 := make([]float32, 3)
		sch.PredictX0(ts, x, eps, x0)
		got := slices.Clone(x)
		DDPMStep(sch, ts, got, x0, rand.New(rand.NewPCG(1, 1)))
		z := rand.New(rand.NewPCG(1, 1))
		beta, ab := sch.Betas[ts], sch.AlphaBar[ts]
		abPrev := 1.0
		if ts > 0 {
			abPrev = sch.AlphaBar[ts-1]
		}
		for k := range x {
			want := 1 / math.Sqrt(1-beta) * (float64(x[k]) - beta/math.Sqrt(1-ab)*float64(eps[k]))
			if ts > 0 {
				want += math.Sqrt(beta*(1-abPrev)/(1-ab)) * z.NormFloat64()
			}
			if d := math.Abs(want - float64(got[k])); d > 1e-5 {
				t.Errorf("t=%d k=%d: got %.6f, reference %.6f", ts, k, got[k], want)
			}
		}
	}
}

// TestDDIMStepReference: η=0 DDIM equals Song et al.'s
// x' = √ᾱ'·(x − √(1−ᾱ)ε)/√ᾱ + √(1−ᾱ')·ε when x0 needs no clipping.
func TestDDIMStepReference(t *testing.T) {
	sch := linear(t)
	for _, c := range [][2]int{{999, 979}, {500, 480}, {20, -1}} {
		eps := []float32{0.2, -0.9}
		x := make([]float32, 2)
		for k, v := range []float64{0.5, -0.3} { // x0 inside [-1, 1]
			x[k] = float32(sch.SqrtAB[c[0]]*v + sch.SqrtOneAB[c[0]]*float64(eps[k]))
		}
		x0 := make([]float32, 2)
		sch.PredictX0(c[0], x, eps, x0)
		got := slices.Clone(x)
		DDIMStep(sch, c[0], c[1], 0, got, x0, nil)
		ab := sch.AlphaBar[c[0]]
		abPrev := 1.0
		if c[1] >= 0 {
			abPrev = sch.AlphaBar[c[1]]
		}
		for k := range x {
			x0r := (float64(x[k]) - math.Sqrt(1-ab)*float64(eps[k])) / math.Sqrt(ab)
			want := math.Sqrt(abPrev)*x0r + math.Sqrt(1-abPrev)*float64(eps[k])
			if d := math.Abs(want - float64(got[k])); d > 1e-4 {
				t.Errorf("%d->%d k=%d: got %.6f, reference %.6f", c[0], c[1], k, got[k], want)
			}
		}
	}
}

func TestTimesteps(t *testing.T) {
	ts, err := DDIM.Timesteps(1000, 5)
	if err != nil || !slices.Equal(ts, []int{999, 749, 500, 250, 0}) {
		t.Fatalf("ddim 5 of 1000: %v %v", ts, err)
	}
	if ts, err := DPMSolver2M.Timesteps(1000, 0); err != nil || len(ts) != DefaultSteps {
		t.Fatalf("dpm++2m default: %v %v", ts, err)
	}
	if ts, err := DDIM.Timesteps(7, 0); err != nil || len(ts) != 7 {
		t.Fatalf("ddim default on T=7 (capped at T): %v %v", ts, err)
	}
	if ts, err := DDPM.Timesteps(10, 0); err != nil || !slices.Equal(ts, []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}) {
		t.Fatalf("ddpm: %v", ts)
	}
	for _, s := range []int{-1, 1001} {
		if _, err := DDIM.Timesteps(1000, s); err == nil {
			t.Errorf("steps %d accepted", s)
		}
	}
	if _, err := ParseSampler("euler"); err == nil || !strings.Contains(err.Error(), SamplerNames()) {
		t.Errorf("unknown sampler: %v", err)
	}
	if _, err := DDPM.Timesteps(1000, 50); err == nil || !strings.Contains(err.Error(), "takes all 1000 steps") {
		t.Errorf("ddpm with 50 of 1000 steps: %v", err)
	}
}

func runAll(t *testing.T, d Denoiser, req Request) map[int][]float32 {
	t.Helper()
	out := map[int][]float32{}
	err := Sample(context.Background(), d, linear(t), req, nil, func(idx []int, x []float32) error {
		for i, gi := range idx {
			out[gi] = slices.Clone(x[i*req.Values : (i+1)*req.Values])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func request(sampler Sampler, batch int, idx []int, guidance float64) Request {
	labels := make([]int, len(idx))
	for i, gi := range idx {
		labels[i] = gi % 3
	}
	steps, eta := 20, 0.0
	if sampler == DDPM {
		steps = 0 // all T
	}
	if sampler.TakesEta() {
		eta = 0.5
	}
	return Request{Sampler: sampler, Steps: steps, Eta: eta, Guidance: guidance, Null: 3, Seed: 9, Batch: batch, Values: 12, Indices: idx, Labels: labels}
}

// TestBatchAndShardInvariance: an image depends on (seed, index) only: the
// same for batch 3 and 8, and the shards 0/2 ∪ 1/2 equal the whole run.
func TestBatchAndShardInvariance(t *testing.T) {
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, s := range Samplers() {
		f := &fakeDenoiser{T: 1000}
		a := runAll(t, f, request(s, 3, all, 0))
		b := runAll(t, f, request(s, 8, all, 0))
		var even, odd []int
		for _, i := range all {
			if i%2 == 0 {
				even = append(even, i)
			} else {
				odd = append(odd, i)
			}
		}
		shards := runAll(t, f, request(s, 4, even, 0))
		for k, v := range runAll(t, f, request(s, 4, odd, 0)) {
			shards[k] = v
		}
		for _, i := range all {
			if !slices.Equal(a[i], b[i]) || !slices.Equal(a[i], shards[i]) {
				t.Fatalf("%s: image %d differs between batch 3, batch 8 and shards", s, i)
			}
		}
		again := runAll(t, f, request(s, 3, all, 0))
		for _, i := range all {
			if !slices.Equal(a[i], again[i]) {
				t.Fatalf("%s: same seed, image %d differs", s, i)
			}
		}
	}
}

// TestGuidance: W=0 equals the unguided sampler; W>0 makes one call of 2N
// per step whose second half carries the null label, and every row's
// sampler receives exactly (1+W)·ε(x, y) − W·ε(x, ∅) of its own label.
func TestGuidance(t *testing.T) {
	idx := []int{0, 1, 2, 3}
	f := &fakeDenoiser{T: 1000}
	plain := runAll(t, f, request(DDIM, 4, idx, 0))
	g := &fakeDenoiser{T: 1000}
	guided := runAll(t, g, request(DDIM, 4, idx, 2))
	if g.calls != 20 || g.sizes[0] != 8 {
		t.Fatalf("guided run made %d calls of %v; want 20 calls of 8", g.calls, g.sizes[:1])
	}
	if slices.Equal(guided[1], plain[1]) {
		t.Fatal("guidance 2 changed nothing")
	}
	for _, w := range []float64{0, 0.5, 3} {
		rec := &recorder{}
		req := request(rec, 3, idx, w)
		req.Steps = 4
		runAll(t, &fakeDenoiser{T: 1000}, req)
		if len(rec.rows) != len(idx) {
			t.Fatalf("w=%g: %d rows started, want %d", w, len(rec.rows), len(idx))
		}
		for i, r := range rec.rows {
			for si, x := range r.x {
				// The fake denoiser's prediction for this row's label and for
				// the null label, combined in float64.
				tt := float64(r.ts[si]) / 1000 * 0.1
				for k := range x {
					c := 0.3*float64(x[k]) + tt + 0.05*float64(idx[i]%3) // request's labels
					n := 0.3*float64(x[k]) + tt + 0.05*float64(req.Null)
					want := (1+w)*c - w*n
					if d := math.Abs(float64(r.eps[si][k]) - want); d > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("w=%g row %d call %d value %d: sampler got ε %.7f, want (1+w)·ε(y) − w·ε(∅) = %.7f", w, i, si, k, r.eps[si][k], want)
					}
				}
			}
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	err := Sample(ctx, &fakeDenoiser{T: 1000}, linear(t), request(DDIM, 2, []int{0, 1, 2, 3, 4}, 0), nil, func(idx []int, x []float32) error {
		batches++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || batches != 1 {
		t.Fatalf("err %v after %d batches; want context.Canceled after 1", err, batches)
	}
}

// TestForward: Noise and X0Coefficients invert each other, and PredictX0
// agrees with them where no clipping happens.
func TestForward(t *testing.T) {
	sch := linear(t)
	x0 := []float32{0.25, -0.5, 0.9}
	eps := []float32{1.1, -0.3, 0.7}
	xt := make([]float32, 3)
	for _, ts := range []int{0, 300, 999} {
		sch.Noise(ts, x0, eps, xt)
		c1, c2 := sch.X0Coefficients(ts)
		got := make([]float32, 3)
		sch.PredictX0(ts, xt, eps, got)
		for k := range x0 {
			back := c1*float64(xt[k]) - c2*float64(eps[k])
			// float32 x_t carries ~6e-8 relative error, amplified by c1 ≤ 158 at t=999.
			if math.Abs(back-float64(x0[k])) > 2e-4 || math.Abs(float64(got[k]-x0[k])) > 2e-4 {
				t.Errorf("t=%d k=%d: x0 %g, coefficients give %g, PredictX0 %g", ts, k, x0[k], back, got[k])
			}
		}
	}
}
