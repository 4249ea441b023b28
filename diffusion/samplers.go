package diffusion

import (
	"math"
	"math/rand/v2"
)

// DDPMStep is Ho et al.'s ancestral step from t to t-1 with the posterior
// q(x_{t-1} | x_t, x0): mean c1·x0 + c2·x_t, variance β̃_t; no noise at t=0.
func DDPMStep(sch *Schedule, t int, x, x0 []float32, rng *rand.Rand) {
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
func DDIMStep(sch *Schedule, t, next int, eta float64, x, x0 []float32, rng *rand.Rand) {
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
func DPMSolver2MStep(sch *Schedule, t, next, si int, hPrev float64, x, x0, prevX0 []float32) {
	h := sch.lambda(next) - sch.lambda(t)
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
