package diffusion

import "math"

// Noise is the forward process q(x_t | x_0) with the noise given:
// x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε, written into xt (all three [D]).
func (s *Schedule) Noise(t int, x0, eps, xt []float32) {
	a, b := s.SqrtAB[t], s.SqrtOneAB[t]
	for k := range xt {
		xt[k] = float32(a*float64(x0[k]) + b*float64(eps[k]))
	}
}

// X0Coefficients returns c1, c2 with x̂₀ = c1·x_t − c2·ε̂ at timestep t:
// c1 = 1/√ᾱ_t, c2 = √(1−ᾱ_t)/√ᾱ_t (the inverse of Noise, unclipped). The
// M_AC loss judges this x̂₀ inside the training graph.
func (s *Schedule) X0Coefficients(t int) (c1, c2 float64) {
	return 1 / s.SqrtAB[t], s.SqrtOneAB[t] / s.SqrtAB[t]
}

// PredictX0 writes the clean image implied by x_t and ε̂,
// (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t, clipped to the data range [-1, 1].
func (s *Schedule) PredictX0(t int, x, eps, x0 []float32) {
	a, b := s.SqrtAB[t], s.SqrtOneAB[t]
	for k := range x {
		v := (float64(x[k]) - b*float64(eps[k])) / a
		x0[k] = float32(math.Max(-1, math.Min(1, v)))
	}
}

// lambda is the half log-SNR log(α_t/σ_t) of timestep t.
func (s *Schedule) lambda(t int) float64 {
	return math.Log(s.SqrtAB[t] / s.SqrtOneAB[t])
}
