package diffusion

import "math"

// DDIM is Song et al.'s sampler on a respaced chain, with stochasticity η
// (0: deterministic; 1: the DDPM posterior's variance on the respaced chain).
var DDIM Sampler = ddim{}

func init() { Register(DDIM) }

type ddim struct{}

func (ddim) Name() string                          { return "ddim" }
func (ddim) Doc() string                           { return "Song et al., any number of steps, stochasticity --eta" }
func (ddim) TakesEta() bool                        { return true }
func (ddim) Timesteps(T, steps int) ([]int, error) { return UniformTimesteps(T, steps) }
func (ddim) NewRow(c Chain) Row                    { return ddimRow{c} }

type ddimRow struct{ Chain }

func (r ddimRow) Step(i int, x, eps, x0 []float32, z Noise) {
	DDIMStep(r.Schedule, r.Timesteps[i], next(r.Timesteps, i), r.Eta, x, x0, z)
}

// DDIMStep is Song et al.'s step from t to next (-1: clean), with the noise
// re-derived from the clipped x0: x' = √ᾱ'·x0 + √(1−ᾱ'−σ²)·ε + σ·z,
// σ = η·√((1−ᾱ')/(1−ᾱ))·√(1−ᾱ/ᾱ').
func DDIMStep(sch *Schedule, t, next int, eta float64, x, x0 []float32, z Noise) {
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
			v += sigma * z.NormFloat64()
		}
		x[k] = float32(v)
	}
}
