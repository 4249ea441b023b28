package diffusion

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// The sampler of this file is registered for the package's tests only: it
// shows that a sampler is one file (this one) and that the loop, the
// registry and the help texts take it without an edit. It is a real
// first-order solver: the Euler step of the probability-flow ODE in σ-space
// (x̃ = x/√ᾱ, σ = √(1−ᾱ)/√ᾱ; Karras et al. 2022, eq. 4), and its rows keep
// state (the previous step), so they carry what the loop must not.
const testSamplerName = "test-euler"

func init() { Register(testEuler{}) }

type testEuler struct{}

func (testEuler) Name() string                          { return testSamplerName }
func (testEuler) Doc() string                           { return "Euler (test only)" }
func (testEuler) TakesEta() bool                        { return false }
func (testEuler) Timesteps(T, steps int) ([]int, error) { return UniformTimesteps(T, steps) }
func (testEuler) NewRow(c Chain) Row                    { return &eulerRow{Chain: c, last: -1} }

type eulerRow struct {
	Chain
	last int // the previous call's index: steps must come in order
}

func (r *eulerRow) Step(i int, x, eps, x0 []float32, z Noise) {
	if i != r.last+1 {
		panic("test-euler: steps out of order")
	}
	r.last = i
	s := r.Schedule
	t, n := r.Timesteps[i], next(r.Timesteps, i)
	sig := s.SqrtOneAB[t] / s.SqrtAB[t]
	sigNext, abNext := 0.0, 1.0
	if n >= 0 {
		sigNext, abNext = s.SqrtOneAB[n]/s.SqrtAB[n], s.AlphaBar[n]
	}
	for k := range x {
		xt := float64(x[k]) / s.SqrtAB[t]      // x̃ = x/√ᾱ
		d := (xt - float64(x0[k])) / sig       // dx̃/dσ
		xn := xt + (sigNext-sig)*d             // Euler to σ_next
		x[k] = float32(xn * math.Sqrt(abNext)) // back to x = √ᾱ'·x̃
	}
}

// recorder is a test sampler (not registered) that records what the loop
// hands every row, and moves x to x̂₀.
type recorder struct{ rows []*recRow }

type recRow struct {
	ts  []int
	x   [][]float32
	eps [][]float32
}

func (*recorder) Name() string                          { return "recorder" }
func (*recorder) Doc() string                           { return "" }
func (*recorder) TakesEta() bool                        { return false }
func (*recorder) Timesteps(T, steps int) ([]int, error) { return UniformTimesteps(T, steps) }
func (r *recorder) NewRow(c Chain) Row {
	row := &recRow{ts: c.Timesteps}
	r.rows = append(r.rows, row)
	return row
}

func (r *recRow) Step(i int, x, eps, x0 []float32, z Noise) {
	r.x = append(r.x, slices.Clone(x))
	r.eps = append(r.eps, slices.Clone(eps))
	copy(x, x0)
}

// TestRegistry: a sampler registered from its own file is found by name,
// listed in the names and help, runs through Sample with its own row state,
// and registering a name twice is refused.
func TestRegistry(t *testing.T) {
	s, err := ParseSampler(testSamplerName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(SamplerNames(), testSamplerName) || !strings.Contains(SamplerHelp(), "Euler (test only)") {
		t.Errorf("names %q / help %q miss the registered sampler", SamplerNames(), SamplerHelp())
	}
	for _, name := range []string{"ddpm", "ddim", "dpm++2m"} {
		if !strings.Contains(SamplerNames(), name) {
			t.Errorf("names %q miss %s", SamplerNames(), name)
		}
	}
	// The Euler step of the probability-flow ODE is DDIM with η=0 to first
	// order: on 200 steps the two land within 2e-2 of each other.
	idx := []int{0, 1, 2}
	e := runAll(t, &fakeDenoiser{T: 1000}, func() Request { r := request(s, 2, idx, 0); r.Steps = 200; return r }())
	d := runAll(t, &fakeDenoiser{T: 1000}, func() Request { r := request(DDIM, 2, idx, 0); r.Steps, r.Eta = 200, 0; return r }())
	for _, i := range idx {
		for k := range e[i] {
			if math.Abs(float64(e[i][k]-d[i][k])) > 2e-2 {
				t.Fatalf("image %d value %d: euler %g, ddim %g", i, k, e[i][k], d[i][k])
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a second sampler named ddim was registered")
		}
	}()
	Register(fakeNamed("ddim"))
}

type fakeNamed string

func (f fakeNamed) Name() string                        { return string(f) }
func (fakeNamed) Doc() string                           { return "" }
func (fakeNamed) TakesEta() bool                        { return false }
func (fakeNamed) Timesteps(T, steps int) ([]int, error) { return nil, nil }
func (fakeNamed) NewRow(c Chain) Row                    { return nil }
