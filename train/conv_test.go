package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// naiveConv is the definition: y[n,o,oy,ox] = b[o] + Σ w[o,c,ky,kx]·x[n,c,iy,ix]
// with iy = oy·stride − pad + ky (likewise ix), zero outside; and its
// gradients for an output gradient dy, in float64.
func naiveConv(g convGeom, x, w, b, dy []float32) (y, dx, dw, db []float64) {
	y = make([]float64, g.n*g.cout*g.ho*g.wo)
	dx, dw, db = make([]float64, len(x)), make([]float64, len(w)), make([]float64, g.cout)
	for n := 0; n < g.n; n++ {
		for o := 0; o < g.cout; o++ {
			for oy := 0; oy < g.ho; oy++ {
				for ox := 0; ox < g.wo; ox++ {
					yi := ((n*g.cout+o)*g.ho+oy)*g.wo + ox
					y[yi] = float64(b[o])
					db[o] += float64(dy[yi])
					for c := 0; c < g.cin; c++ {
						for ky := 0; ky < g.k; ky++ {
							for kx := 0; kx < g.k; kx++ {
								iy, ix := oy*g.stride-g.pad+ky, ox*g.stride-g.pad+kx
								if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w {
									continue
								}
								xi, wi := ((n*g.cin+c)*g.h+iy)*g.w+ix, ((o*g.cin+c)*g.k+ky)*g.k+kx
								y[yi] += float64(w[wi]) * float64(x[xi])
								dx[xi] += float64(w[wi]) * float64(dy[yi])
								dw[wi] += float64(x[xi]) * float64(dy[yi])
							}
						}
					}
				}
			}
		}
	}
	return y, dx, dw, db
}

// TestConvModes: the convolution op's output and its three gradients
// against the definition, for geometries that take each way to GEMMs
// (im2col, shifted rows, 1×1) with odd sizes, padding wider and narrower
// than the kernel's half, non-square images and more samples than workers.
// Float32 sums of at most 5·5·4 = 100 O(1) products round at ~1e-5 of
// their scale; 1e-4 relative to the largest value catches any misplaced
// term (which is O(1)).
func TestConvModes(t *testing.T) {
	cases := []struct{ n, cin, h, w, cout, k, stride, pad, mode int }{
		{3, 2, 5, 7, 3, 3, 1, 1, byRows},
		{2, 3, 6, 4, 2, 3, 1, 0, byRows},
		{2, 2, 5, 5, 3, 5, 1, 2, byRows},
		{2, 1, 4, 6, 2, 3, 1, 2, byRows},
		{2, 4, 3, 5, 2, 1, 1, 0, by1x1},
		{2, 2, 3, 3, 2, 1, 1, 1, byRows},
		{3, 2, 7, 6, 3, 3, 2, 1, byIm2col},
		{2, 3, 8, 8, 4, 3, 2, 0, byIm2col},
	}
	r := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for _, c := range cases {
		name := fmt.Sprintf("n%d_c%d_%dx%d_o%d_k%d_s%d_p%d", c.n, c.cin, c.h, c.w, c.cout, c.k, c.stride, c.pad)
		t.Run(name, func(t *testing.T) {
			xs, ws := []int{c.n, c.cin, c.h, c.w}, []int{c.cout, c.cin, c.k, c.k}
			g := newConvGeom(xs, ws, c.stride, c.pad)
			if g.mode() != c.mode {
				t.Fatalf("mode %d, want %d", g.mode(), c.mode)
			}
			x, w, b := fill(c.n*c.cin*c.h*c.w), fill(c.cout*c.cin*c.k*c.k), fill(c.cout)
			dy := fill(c.n * c.cout * g.ho * g.wo)
			wantY, wantDx, wantDw, wantDb := naiveConv(g, x, w, b, dy)
			st := &convState{geom: g}
			op := func(kind int, in ...[]float32) []float32 {
				shapes := map[int][]int{len(x): xs, len(w): ws, len(b): {c.cout}, len(dy): {c.n, c.cout, g.ho, g.wo}}
				vals := make([]G.Value, len(in))
				for i, v := range in {
					vals[i] = tensor.New(tensor.WithShape(shapes[len(v)]...), tensor.WithBacking(v))
				}
				out, err := (&convOp{stride: c.stride, pad: c.pad, st: st, kind: kind}).Do(vals...)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := f32(out)
				return append([]float32(nil), got...)
			}
			// Twice each: workspaces and cached gradients are reused.
			for round := 0; round < 2; round++ {
				checkClose(t, "y", op(0, x, w, b), wantY)
				checkClose(t, "dx", op(1, x, w, dy), wantDx)
				checkClose(t, "dw", op(2, x, w, dy), wantDw)
				checkClose(t, "db", op(3, dy), wantDb)
			}
		})
	}
}

// checkClose fails t unless got has want's length and differs from it by at
// most 1e-4 of want's largest magnitude.
func checkClose[W float32 | float64](t *testing.T, what string, got []float32, want []W) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale, worst := 0.0, 0.0
	for i := range want {
		scale = max(scale, math.Abs(float64(want[i])))
		worst = max(worst, math.Abs(float64(got[i])-float64(want[i])))
	}
	if worst > 1e-4*scale {
		t.Errorf("%s: off by %.3g (largest value %.3g)", what, worst, scale)
	}
}
