package train

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/models"
)

// The unfused normalisation: the reference the fused norm–SiLU op
// (normActOp) is checked against, in tests only.

// referenceNormalize normalises x without affine as its own op, for group
// norm, or batch norm with batch statistics (kept in the lowering's
// running statistics like the fused op's).
func referenceNormalize(l *lowering, x models.T, name string, kind models.NormKind, groups int) models.T {
	xn := node(x)
	name = l.prefix + name
	if kind == models.GroupNorm {
		return must(G.ApplyOp(normOp(name, groups, nil), xn))
	}
	if !l.training {
		panic(fmt.Sprintf("referenceNormalize %q: batch norm at inference is the folded foldedBatchNorm", name))
	}
	st := &normStats{}
	l.bn = append(l.bn, bnStat{name: name, stats: st})
	return must(G.ApplyOp(normOp(name, 0, st), xn))
}

// normOp normalises x [N C H W] without affine, over sets of elements that
// share statistics: per channel over (N, H, W) for batch norm (groups 0),
// per sample and group of channels over (C/G, H, W) for group norm. The same
// computation composed of gorgonia's reductions and broadcasts got a wrong
// gradient (v0.9.18), hence the hand-written backward:
// dx = r·(dy − mean(dy) − x̂·mean(dy·x̂)) per set, r = 1/sqrt(var+eps).
func normOp(name string, groups int, st *normStats) *unaryOp {
	// runs returns the number of statistics sets of a shape and, for set s,
	// its elements as equal-length contiguous runs: start of run r, and the
	// run length. Batch norm: a set per channel, one run per sample (H·W);
	// group norm: a set per sample and group, one run of C/G·H·W.
	runs := func(shape tensor.Shape) (sets, perSet, runLen int, start func(s, r int) int) {
		n, c, hw := shape[0], shape[1], shape[2]*shape[3]
		if groups == 0 {
			return c, n, hw, func(s, r int) int { return (r*c + s) * hw }
		}
		per := c / groups * hw
		return n * groups, 1, per, func(s, _ int) int { return s * per }
	}
	// moments returns the mean and biased variance of set s.
	moments := func(x []float32, s, perSet, runLen int, start func(s, r int) int) (m, v float64) {
		var sum float64
		for r := 0; r < perSet; r++ {
			for _, e := range x[start(s, r) : start(s, r)+runLen] {
				sum += float64(e)
			}
		}
		cnt := float64(perSet * runLen)
		m = sum / cnt
		var sq float64
		for r := 0; r < perSet; r++ {
			for _, e := range x[start(s, r) : start(s, r)+runLen] {
				d := float64(e) - m
				sq += d * d
			}
		}
		return m, sq / cnt
	}
	// The forward keeps each set's moments for the backward of the same
	// step (for the very x they came from), which then skips two passes.
	var keptM, keptV []float64
	var keptX []float32
	return &unaryOp{name: "norm." + name, dims: 4,
		fwd: func(x, y []float32, shape tensor.Shape) {
			sets, perSet, runLen, start := runs(shape)
			if st != nil && len(st.mean) != sets {
				st.mean, st.varnc = make([]float64, sets), make([]float64, sets)
			}
			if len(keptM) != sets {
				keptM, keptV = make([]float64, sets), make([]float64, sets)
			}
			keptX = x
			parallel(sets, func(_, s int) { // sets are independent
				m, v := moments(x, s, perSet, runLen, start)
				keptM[s], keptV[s] = m, v
				r := 1 / math.Sqrt(v+normEps)
				for k := 0; k < perSet; k++ {
					o := start(s, k)
					for i, e := range x[o : o+runLen] {
						y[o+i] = float32((float64(e) - m) * r)
					}
				}
				if st != nil {
					st.mean[s], st.varnc[s] = m, v
				}
			})
			if st != nil {
				st.count = perSet * runLen
			}
		},
		bwd: func(x, dy, dx []float32, shape tensor.Shape) {
			sets, perSet, runLen, start := runs(shape)
			cnt := float64(perSet * runLen)
			kept := len(keptM) == sets && len(keptX) == len(x) && len(x) > 0 && &keptX[0] == &x[0]
			parallel(sets, func(_, s int) {
				var m, v float64
				if kept {
					m, v = keptM[s], keptV[s]
				} else {
					m, v = moments(x, s, perSet, runLen, start)
				}
				r := 1 / math.Sqrt(v+normEps)
				var mdy, mdyx float64
				for k := 0; k < perSet; k++ {
					o := start(s, k)
					for i, e := range x[o : o+runLen] {
						g := float64(dy[o+i])
						mdy += g
						mdyx += g * (float64(e) - m) * r
					}
				}
				mdy /= cnt
				mdyx /= cnt
				for k := 0; k < perSet; k++ {
					o := start(s, k)
					for i, e := range x[o : o+runLen] {
						xh := (float64(e) - m) * r
						dx[o+i] = float32(r * (float64(dy[o+i]) - mdy - xh*mdyx))
					}
				}
			})
		}}
}
