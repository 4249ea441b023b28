package diffusion

import (
	"math"

	"github.com/condiff/condiff/internal/field"
)

// Sampler names a reverse-process update rule.
type Sampler string

// Samplers.
const (
	DDPM        Sampler = "ddpm"    // ancestral, all T steps
	DDIM        Sampler = "ddim"    // respaced, with stochasticity η
	DPMSolver2M Sampler = "dpm++2m" // DPM-Solver++(2M), data prediction, multistep
)

// Samplers lists every sampler, in the order help texts show them.
var Samplers = []Sampler{DDPM, DDIM, DPMSolver2M}

// ParseSampler checks a sampler name.
func ParseSampler(s string) (Sampler, error) {
	for _, v := range Samplers {
		if string(v) == s {
			return v, nil
		}
	}
	return "", field.Errorf("diffusion", "Sampler", s, "not ddpm, ddim or dpm++2m")
}

// Timesteps returns the model timesteps a sampler visits, descending. ddpm
// visits all T (steps must be 0 or T); ddim and dpm++2m visit steps of them,
// evenly spaced from T−1 down to 0.
func Timesteps(sampler Sampler, T, steps int) ([]int, error) {
	switch sampler {
	case DDPM:
		if steps != 0 && steps != T {
			return nil, field.Errorf("diffusion", "Steps", steps, "the ddpm sampler takes all %d steps; use ddim or dpm++2m for fewer", T)
		}
		ts := make([]int, T)
		for i := range ts {
			ts[i] = T - 1 - i
		}
		return ts, nil
	case DDIM, DPMSolver2M:
		if steps < 1 || steps > T {
			return nil, field.Errorf("diffusion", "Steps", steps, "out of 1..%d (the model's T)", T)
		}
		// t_i = round((T-1)·(steps-1-i)/(steps-1)).
		ts := make([]int, steps)
		for i := range ts {
			if steps == 1 {
				ts[i] = T - 1
				continue
			}
			ts[i] = int(math.Round(float64(T-1) * float64(steps-1-i) / float64(steps-1)))
		}
		return ts, nil
	}
	return nil, field.Errorf("diffusion", "Sampler", string(sampler), "not ddpm, ddim or dpm++2m")
}
