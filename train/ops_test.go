package train

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/models"
)

// TestOpGradients checks each lowered operation's gradient (with respect to
// its input) against central finite differences of Sum(op(x)·R), R random.
// Tolerance 2e-3: float32 sums of ~100 O(1) terms round at ~1e-5, over 2h =
// 2e-2 that is ~1e-3 at most; a wrong backward errs by 1e-2 or more.
func TestOpGradients(t *testing.T) {
	ops := map[string]func(l *lowering, x *G.Node) *G.Node{
		"silu": func(l *lowering, x *G.Node) *G.Node { return node(l.SiLU(x)) },
		"conv": func(l *lowering, x *G.Node) *G.Node {
			return node(l.Conv(x, l.Param("w", []int{5, 3, 3, 3}, models.Zeros), l.Param("b", []int{5}, models.Zeros), 1, 1))
		},
		"conv2": func(l *lowering, x *G.Node) *G.Node {
			return node(l.Conv(x, l.Param("w", []int{5, 3, 3, 3}, models.Zeros), l.Param("b", []int{5}, models.Zeros), 2, 1))
		},
		"concat":   func(l *lowering, x *G.Node) *G.Node { return node(l.Concat(x, node(l.SiLU(x)))) },
		"upsample": func(l *lowering, x *G.Node) *G.Node { return node(l.Upsample(x)) },
		"bnorm":    func(l *lowering, x *G.Node) *G.Node { return node(referenceNormalize(l, x, "n", models.BatchNorm, 1)) },
		"gnorm":    func(l *lowering, x *G.Node) *G.Node { return node(referenceNormalize(l, x, "n", models.GroupNorm, 3)) },
		"scaleC": func(l *lowering, x *G.Node) *G.Node {
			return node(l.ScaleShift(x, l.Param("g", []int{3}, models.Zeros), l.Param("bb", []int{3}, models.Zeros)))
		},
		"scaleN": func(l *lowering, x *G.Node) *G.Node {
			return node(l.ScaleShift(x, l.Param("v", []int{2, 3}, models.Zeros), l.Param("v2", []int{2, 3}, models.Zeros)))
		},
		"addch": func(l *lowering, x *G.Node) *G.Node {
			return node(l.AddChannels(x, l.Param("v", []int{2, 3}, models.Zeros)))
		},
		"add":   func(l *lowering, x *G.Node) *G.Node { return node(l.Add(x, node(l.SiLU(x)))) },
		"gmean": func(l *lowering, x *G.Node) *G.Node { return node(l.GlobalMean(x)) },
		// Attention, with x as each of q, k and v in turn.
		"attendQ": func(l *lowering, x *G.Node) *G.Node {
			return node(l.Attend(x, l.Param("a", []int{2, 3, 4, 4}, models.Zeros), l.Param("c", []int{2, 3, 4, 4}, models.Zeros)))
		},
		"attendK": func(l *lowering, x *G.Node) *G.Node {
			return node(l.Attend(l.Param("a", []int{2, 3, 4, 4}, models.Zeros), x, l.Param("c", []int{2, 3, 4, 4}, models.Zeros)))
		},
		"attendV": func(l *lowering, x *G.Node) *G.Node {
			return node(l.Attend(l.Param("a", []int{2, 3, 4, 4}, models.Zeros), l.Param("c", []int{2, 3, 4, 4}, models.Zeros), x))
		},
	}
	for name, op := range ops {
		r := rand.New(rand.NewPCG(1, 2))
		w := map[string]models.Array{}
		for k, s := range map[string][]int{"x": {2, 3, 4, 4}, "w": {5, 3, 3, 3}, "b": {5}, "g": {3}, "v": {2, 3}, "v2": {2, 3}, "bb": {3}, "a": {2, 3, 4, 4}, "c": {2, 3, 4, 4}} {
			a := models.NewArray(s...)
			for i := range a.Data {
				a.Data[i] = float32(r.NormFloat64())
			}
			w[k] = a
		}
		g := G.NewGraph()
		l := newLowering(g, 2, true, w, nil)
		x := node(l.Param("x", []int{2, 3, 4, 4}, models.Zeros))
		y := op(l, x)
		R := models.NewArray(y.Shape()...)
		for i := range R.Data {
			R.Data[i] = float32(r.NormFloat64())
		}
		loss := must(G.Sum(must(G.HadamardProd(y, l.constant(R, "R")))))
		_ = tensor.Float32
		if _, err := G.Grad(loss, x); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(x))
		run := func() float64 {
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			return scalar(loss)
		}
		run()
		gv, _ := x.Grad()
		ga := append([]float32(nil), gv.Data().([]float32)...)
		d := values(x)
		worst := 0.0
		for _, i := range []int{0, 5, 17, 40, 77} {
			o := d[i]
			d[i] = o + 1e-2
			lp := run()
			d[i] = o - 1e-2
			lm := run()
			d[i] = o
			fd := (lp - lm) / 2e-2
			worst = math.Max(worst, math.Abs(fd-float64(ga[i])))
		}
		t.Logf("%-9s worst |analytic-fd| %.3g", name, worst)
		if worst > 2e-3 {
			t.Errorf("%s: gradient off by %.3g", name, worst)
		}
	}
}
