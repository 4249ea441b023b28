package diffusion

import (
	"math"

	"github.com/condiff/condiff/internal/field"
)

// DDPM is Ho et al.'s ancestral sampler: all T steps, each drawing from the
// posterior q(x_{t-1} | x_t, x̂₀).
var DDPM Sampler = ddpm{}

func init() { Register(DDPM) }

type ddpm struct{}

func (ddpm) Name() string   { return "ddpm" }
func (ddpm) Doc() string    { return "Ho et al.'s ancestral sampler, all T steps" }
func (ddpm) TakesEta() bool { return false }

// Timesteps visits all T, from T−1 down to 0; steps must be 0 or T.
func (ddpm) Timesteps(T, steps int) ([]int, error) {
	if steps != 0 && steps != T {
		return nil, field.Errorf("diffusion", "Steps", steps, "the ddpm sampler takes all %d steps; the others take fewer", T)
	}
	ts := make([]int, T)
	for i := range ts {
		ts[i] = T - 1 - i
	}
	return ts, nil
}

func (ddpm) NewRow(c Chain) Row { return ddpmRow{c} }

type ddpmRow struct{ Chain }

func (r ddpmRow) Step(i int, x, eps, x0 []float32, z Noise) {
	DDPMStep(r.Schedule, r.Timesteps[i], x, x0, z)
}

// DDPMStep is Ho et al.'s ancestral step from t to t-1 with the posterior
// q(x_{t-1} | x_t, x0): mean c1·x0 + c2·x_t, variance β̃_t; no noise at t=0.
func DDPMStep(sch *Schedule, t int, x, x0 []float32, z Noise) {
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
			v += sigma * z.NormFloat64()
		}
		x[k] = float32(v)
	}
}
