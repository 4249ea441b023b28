package diffusion

import "math"

// DPMSolver2M is DPM-Solver++(2M) (Lu et al. 2022): a multistep solver of
// the diffusion ODE in data prediction, second order from its second step,
// first order on the first and on the last (to the clean image).
var DPMSolver2M Sampler = dpmSolver2M{}

func init() { Register(DPMSolver2M) }

type dpmSolver2M struct{}

func (dpmSolver2M) Name() string { return "dpm++2m" }
func (dpmSolver2M) Doc() string {
	return "DPM-Solver++(2M) (Lu et al.), deterministic, second order"
}
func (dpmSolver2M) TakesEta() bool                        { return false }
func (dpmSolver2M) Timesteps(T, steps int) ([]int, error) { return UniformTimesteps(T, steps) }
func (dpmSolver2M) NewRow(c Chain) Row {
	return &dpmRow{Chain: c, prevX0: make([]float32, c.Values)}
}

// dpmRow carries the previous step's x̂₀: the multistep memory.
type dpmRow struct {
	Chain
	prevX0 []float32
}

func (r *dpmRow) Step(i int, x, eps, x0 []float32, z Noise) {
	ts := r.Timesteps
	if n := next(ts, i); n < 0 {
		copy(x, x0) // α=1, σ=0: the first-order step lands on x̂₀
	} else {
		hPrev := 0.0 // 0: first order
		if i > 0 {
			hPrev = r.Schedule.lambda(ts[i]) - r.Schedule.lambda(ts[i-1])
		}
		DPMSolver2MStep(r.Schedule, ts[i], n, hPrev, x, x0, r.prevX0)
	}
	copy(r.prevX0, x0)
}

// DPMSolver2MStep is one DPM-Solver++(2M) step from s=t to next, with
// h = λ_next − λ_s, r = h_prev/h, D = x0 + (x0 − x0_prev)/(2r) and
// x' = (σ_next/σ_s)·x − α_next·(e^{−h} − 1)·D. hPrev = 0 (the first step)
// takes the first-order step, D = x0.
func DPMSolver2MStep(sch *Schedule, t, next int, hPrev float64, x, x0, prevX0 []float32) {
	h := sch.lambda(next) - sch.lambda(t)
	ratio := sch.SqrtOneAB[next] / sch.SqrtOneAB[t]
	phi := sch.SqrtAB[next] * (math.Exp(-h) - 1) // α_next·(e^{−h} − 1)
	second := hPrev > 0
	r := hPrev / h
	for k := range x {
		d := float64(x0[k])
		if second {
			d += (float64(x0[k]) - float64(prevX0[k])) / (2 * r)
		}
		x[k] = float32(ratio*float64(x[k]) - phi*d)
	}
}
