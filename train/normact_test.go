package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/condiff/condiff/models"
)

// TestNormActMatchesComposition: the fused norm–affine–SiLU op against the
// separate Normalize, ScaleShift and SiLU ops (each checked against finite
// differences by TestOpGradients): output, dx, dγ, dβ and batch norm's
// moments agree for batch and group norm with [C] and [N C] parameters.
// Tolerance 1e-4 relative to the largest value: the fused op folds x̂·γ+β
// into one float32 multiply–add per element (x·rγ + (β − m·rγ)) where the
// separate ops round x̂ first; each rounding is ~1e-7 relative, and the
// gradient sums run over 2·16 to 4·16 elements per set.
func TestNormActMatchesComposition(t *testing.T) {
	for _, kind := range []models.NormKind{models.BatchNorm, models.GroupNorm} {
		for _, perSample := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/perSample=%v", kind, perSample), func(t *testing.T) {
				r := rand.New(rand.NewPCG(4, 5))
				vshape := []int{6}
				if perSample {
					vshape = []int{3, 6}
				}
				w := map[string]models.Array{}
				for k, s := range map[string][]int{"x": {3, 6, 4, 4}, "g": vshape, "b": vshape} {
					a := models.NewArray(s...)
					for i := range a.Data {
						a.Data[i] = float32(r.NormFloat64())
						if k == "x" {
							a.Data[i] = 2 + 3*a.Data[i] // an offset and a scale to normalise away
						}
					}
					w[k] = a
				}
				R := models.NewArray(3, 6, 4, 4)
				for i := range R.Data {
					R.Data[i] = float32(r.NormFloat64())
				}
				run := func(fused bool) (out []float32, grads [][]float32, mean []float64) {
					g := G.NewGraph()
					l := newLowering(g, 3, true, w, nil)
					x, gm, bt := node(l.Param("x", w["x"].Shape, models.Zeros)), node(l.Param("g", vshape, models.Zeros)), node(l.Param("b", vshape, models.Zeros))
					var y *G.Node
					if fused {
						y = node(l.NormAct(x, gm, bt, "n", kind, 3))
					} else {
						y = node(l.SiLU(l.ScaleShift(referenceNormalize(l, x, "n", kind, 3), gm, bt)))
					}
					loss := must(G.Sum(must(G.HadamardProd(y, l.constant(R, "R")))))
					if _, err := G.Grad(loss, x, gm, bt); err != nil {
						t.Fatal(err)
					}
					vm := G.NewTapeMachine(g, G.BindDualValues(x, gm, bt))
					defer vm.Close()
					for i := 0; i < 2; i++ { // twice: the second run reuses every buffer
						vm.Reset()
						if err := vm.RunAll(); err != nil {
							t.Fatal(err)
						}
					}
					out = append(out, values(y)...)
					for _, n := range []*G.Node{x, gm, bt} {
						gv, _ := n.Grad()
						grads = append(grads, append([]float32(nil), gv.Data().([]float32)...))
					}
					if len(l.bn) > 0 {
						mean = append(mean, l.bn[0].stats.mean...)
					}
					return out, grads, mean
				}
				yf, gf, mf := run(true)
				yc, gc, mc := run(false)
				checkClose(t, "fused vs separate: output", yf, yc)
				for i, name := range []string{"dx", "dγ", "dβ"} {
					checkClose(t, "fused vs separate: "+name, gf[i], gc[i])
				}
				if len(mf) != len(mc) {
					t.Fatalf("batch moments: %d fused, %d separate", len(mf), len(mc))
				}
				for i := range mf {
					if math.Abs(mf[i]-mc[i]) > 1e-12 {
						t.Errorf("batch mean %d: %v fused, %v separate", i, mf[i], mc[i])
					}
				}
			})
		}
	}
}
