package train

import (
	"math"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/models"
)

// LR schedules (checkpoint.TrainInfo.LRSchedule).
const (
	LRConstant = "constant"
	LRCosine   = "cosine"
)

// learningRate is the rate of optimisation step `step` (1-based) of a run
// of `steps` steps: base·step/warmup during the warm-up, then base
// (constant) or base·½(1 + cos(π·(step−warmup)/(steps−warmup))) (cosine,
// reaching 0 at the last step).
func learningRate(in checkpoint.TrainInfo, step int) float64 {
	if step <= in.LRWarmup {
		return in.LR * float64(step) / float64(in.LRWarmup)
	}
	if in.LRSchedule != LRCosine || in.Steps <= in.LRWarmup {
		return in.LR
	}
	f := math.Min(1, float64(step-in.LRWarmup)/float64(in.Steps-in.LRWarmup))
	return in.LR * 0.5 * (1 + math.Cos(math.Pi*f))
}

// emaDecay warms the EMA up: min(decay, (1+step)/(10+step)).
func emaDecay(decay float64, step int) float64 {
	return math.Min(decay, (1+float64(step))/(10+float64(step)))
}

func updateEMA(ck *checkpoint.Checkpoint, names []string, d float64) {
	for _, name := range names {
		w, e := ck.Params[name].Data, ck.EMA[name].Data
		for i := range e {
			e[i] = float32(d*float64(e[i]) + (1-d)*float64(w[i]))
		}
	}
}

// bnMomentum is the weight of the newest batch in running statistics
// (PyTorch's convention); the variance is stored unbiased, as PyTorch does.
const bnMomentum = 0.1

func updateStats(ck *checkpoint.Checkpoint, gr *graph) {
	for _, s := range gr.l.bn {
		rm, rv := ck.Stats[s.name+".running_mean"].Data, ck.Stats[s.name+".running_var"].Data
		m := float64(s.stats.count)
		for c := range rm {
			rm[c] = float32((1-bnMomentum)*float64(rm[c]) + bnMomentum*s.stats.mean[c])
			rv[c] = float32((1-bnMomentum)*float64(rv[c]) + bnMomentum*s.stats.varnc[c]*m/(m-1))
		}
	}
}

// clipGlobalNorm scales all gradients down so that their joint L2 norm is at
// most maxNorm (0: no clipping).
func clipGlobalNorm(grads [][]float32, maxNorm float64) {
	if maxNorm <= 0 {
		return
	}
	var ss float64
	for _, g := range grads {
		for _, v := range g {
			ss += float64(v) * float64(v)
		}
	}
	if n := math.Sqrt(ss); n > maxNorm {
		s := float32(maxNorm / n)
		for _, g := range grads {
			for i := range g {
				g[i] *= s
			}
		}
	}
}

// adam is Adam (Kingma & Ba) with its moments kept in the checkpoint.
type adam struct {
	lr   float64
	m, v map[string]models.Array
}

const (
	adamB1  = 0.9
	adamB2  = 0.999
	adamEps = 1e-8
)

func (a adam) step(name string, w, g []float32, t int) {
	m, v := a.m[name].Data, a.v[name].Data
	c1 := 1 - math.Pow(adamB1, float64(t))
	c2 := 1 - math.Pow(adamB2, float64(t))
	for i := range w {
		gi := float64(g[i])
		mi := adamB1*float64(m[i]) + (1-adamB1)*gi
		vi := adamB2*float64(v[i]) + (1-adamB2)*gi*gi
		m[i], v[i] = float32(mi), float32(vi)
		w[i] -= float32(a.lr * (mi / c1) / (math.Sqrt(vi/c2) + adamEps))
	}
}
