package diffusion

// DDIMTrailing is DDIM on the trailing grid (TrailingTimesteps): steps
// evenly spaced from T−1 to the clean image, each grid of 2N steps holding
// the grid of N. Distilled students (progressive distillation, Salimans &
// Ho 2022) are trained and sampled on it: a student of N steps does in
// each step what its teacher did in two on the grid of 2N.
var DDIMTrailing Sampler = ddimTrailing{}

func init() { Register(DDIMTrailing) }

type ddimTrailing struct{ ddim }

func (ddimTrailing) Name() string { return "ddim-trailing" }
func (ddimTrailing) Doc() string {
	return "DDIM on steps evenly spaced from T to the clean image (t_k = T·(steps−k)/steps − 1), the grid distilled students run on"
}
func (ddimTrailing) Timesteps(T, steps int) ([]int, error) { return TrailingTimesteps(T, steps) }

// TrailingTimesteps is the trailing grid of steps calls on a schedule of T
// steps (0: DefaultSteps): t_k = ⌊T·(steps−k)/steps⌋ − 1 for k = 0 …
// steps−1, then the clean image. With T a multiple of steps (or steps a
// power of two dividing T's), TrailingTimesteps(T, 2N)[2k] =
// TrailingTimesteps(T, N)[k]: the grid of N is every other point of the
// grid of 2N.
func TrailingTimesteps(T, steps int) ([]int, error) {
	steps, err := chainLength(T, steps)
	if err != nil {
		return nil, err
	}
	ts := make([]int, steps)
	for k := range ts {
		ts[k] = T*(steps-k)/steps - 1
	}
	return ts, nil
}

// DistillTarget is what a one-step v-prediction student at timestep t
// must output so that its DDIM step (η = 0, no clipping) from z_t lands on
// z2, the teacher's state after its two steps to t2 (−1: the clean image):
// with α = √ᾱ, σ = √(1−ᾱ) and r = σ_t2/σ_t, the student's clean image is
// x̃ = (z2 − r·z_t)/(α_t2 − r·α_t) (Salimans & Ho 2022, Algorithm 2), and
// its v = α_t·ε̃ − σ_t·x̃ with ε̃ = (z_t − α_t·x̃)/σ_t, that is
// (α_t·z_t − x̃)/σ_t. Written into v; all of [D].
func (s *Schedule) DistillTarget(t, t2 int, zt, z2, v []float32) {
	a, sg := s.SqrtAB[t], s.SqrtOneAB[t]
	a2, s2 := 1.0, 0.0
	if t2 >= 0 {
		a2, s2 = s.SqrtAB[t2], s.SqrtOneAB[t2]
	}
	r := s2 / sg
	den := a2 - r*a
	for k := range v {
		x := (float64(z2[k]) - r*float64(zt[k])) / den
		v[k] = float32((a*float64(zt[k]) - x) / sg)
	}
}

// DistillWeight is the weight of a student example at timestep t in a
// v-prediction loss: Salimans & Ho's (2022) "truncated SNR" weighting,
// max(‖x − x̂‖², ‖ε − ε̂‖²) per unit ‖v − v̂‖², that is max(σ_t², α_t²):
// near 1 everywhere, so that the noisiest step, which settles the image's
// layout, weighs as much as the last.
func (s *Schedule) DistillWeight(t int) float64 {
	return max(1-s.AlphaBar[t], s.AlphaBar[t])
}

// EpsFromV turns a v-prediction at timestep t into the noise samplers
// take, in place: ε = σ_t·x_t + α_t·v (x, v: [D]).
func (s *Schedule) EpsFromV(t int, x, v []float32) {
	a, sg := s.SqrtAB[t], s.SqrtOneAB[t]
	for k := range v {
		v[k] = float32(sg*float64(x[k]) + a*float64(v[k]))
	}
}
