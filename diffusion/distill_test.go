package diffusion

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTrailingTimesteps: the grid starts at T−1, steps evenly to the clean
// image, and the grid of N is every other point of the grid of 2N (what
// progressive distillation needs: a student step is two teacher steps).
func TestTrailingTimesteps(t *testing.T) {
	got, err := TrailingTimesteps(1000, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{999, 749, 499, 249}; !slices.Equal(got, want) {
		t.Errorf("4 steps of 1000: %v, want %v", got, want)
	}
	for _, T := range []int{1000, 1024, 4000} {
		for n := 1; 2*n <= 64; n *= 2 {
			a, _ := TrailingTimesteps(T, n)
			b, _ := TrailingTimesteps(T, 2*n)
			for k := range a {
				if b[2*k] != a[k] {
					t.Fatalf("T %d: the grid of %d (%v) is not every other point of the grid of %d (%v)", T, n, a, 2*n, b)
				}
			}
		}
	}
	if _, err := TrailingTimesteps(10, 11); err == nil {
		t.Error("11 steps of a 10-step schedule accepted")
	}
	s, err := ParseSampler("ddim-trailing")
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.Timesteps(1000, 2); !slices.Equal(ts, []int{999, 499}) {
		t.Errorf("ddim-trailing's Timesteps(1000, 2) = %v", ts)
	}
}

// TestDistillTarget: by hand on a two-step schedule, and on the linear
// schedule: the student's DDIM step with the target (as ε, EpsFromV)
// lands on the teacher's state, to float32 rounding.
func TestDistillTarget(t *testing.T) {
	// ᾱ = 0.64, 0.25 (α 0.8, 0.5; σ 0.6, √0.75): from t = 1 to t2 = 0 with
	// z_t = 1, z2 = 0.5, from the definitions as on paper.
	sch := &Schedule{SqrtAB: []float64{0.8, 0.5}, SqrtOneAB: []float64{0.6, math.Sqrt(0.75)}}
	v := make([]float32, 1)
	sch.DistillTarget(1, 0, []float32{1}, []float32{0.5}, v)
	r := 0.6 / math.Sqrt(0.75)
	x := (0.5 - r*1) / (0.8 - r*0.5)
	eps := (1 - 0.5*x) / math.Sqrt(0.75)
	if want := 0.5*eps - math.Sqrt(0.75)*x; math.Abs(float64(v[0])-want) > 1e-6 {
		t.Errorf("by hand: v %v, want %v", v[0], want)
	}
	// To the clean image (t2 = −1): x̃ = z2, v = (α·z_t − z2)/σ.
	sch.DistillTarget(0, -1, []float32{0.3}, []float32{-0.2}, v)
	if want := (0.8*0.3 + 0.2) / 0.6; math.Abs(float64(v[0])-want) > 1e-6 {
		t.Errorf("to clean: v %v, want %v", v[0], want)
	}
	// EpsFromV: ε = σ·x + α·v.
	e := []float32{2}
	sch.EpsFromV(0, []float32{1}, e)
	if want := 0.6*1 + 0.8*2; math.Abs(float64(e[0])-want) > 1e-6 {
		t.Errorf("EpsFromV: %v, want %v", e[0], want)
	}

	lin, err := Spec{Kind: "linear", T: 1000, BetaStart: 1e-4, BetaEnd: 0.02}.Build()
	if err != nil {
		t.Fatal(err)
	}
	r2 := rand.New(rand.NewPCG(3, 4))
	for _, c := range [][2]int{{999, 749}, {749, 499}, {499, 249}, {249, -1}, {124, 61}} {
		zt, z2, out := make([]float32, 64), make([]float32, 64), make([]float32, 64)
		for k := range zt {
			zt[k], z2[k] = float32(r2.NormFloat64()), float32(r2.NormFloat64()*0.5)
		}
		lin.DistillTarget(c[0], c[1], zt, z2, out)
		lin.EpsFromV(c[0], zt, out)
		// The student's unclipped DDIM step with that ε.
		a, s := lin.SqrtAB[c[0]], lin.SqrtOneAB[c[0]]
		a2, s2 := 1.0, 0.0
		if c[1] >= 0 {
			a2, s2 = lin.SqrtAB[c[1]], lin.SqrtOneAB[c[1]]
		}
		for k := range zt {
			x := (float64(zt[k]) - s*float64(out[k])) / a
			got := a2*x + s2*float64(out[k])
			// ε is float32: its rounding, times the step's σ_t2 + α_t2·σ_t/α_t.
			tol := 1e-6 * (1 + math.Abs(float64(out[k]))) * (s2 + a2*s/a)
			if math.Abs(got-float64(z2[k])) > tol {
				t.Fatalf("%d → %d: the student's step lands at %v, the teacher's at %v", c[0], c[1], got, z2[k])
			}
		}
		if w := lin.DistillWeight(c[0]); !(w >= 0.5) || w > 1 {
			t.Errorf("t=%d: weight %v, want in [0.5, 1]", c[0], w)
		}
	}
}
