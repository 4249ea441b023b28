package kernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestExpf: the float32 exponential of SiLU against math.Exp, over the range
// SiLU meets (and past its clamps), relative error below 5e-7.
func TestExpf(t *testing.T) {
	worst := 0.0
	for x := -90.0; x <= 90; x += 0.0137 {
		got := float64(Expf(float32(x)))
		want := math.Exp(float64(float32(min(max(x, -87), 88))))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	t.Logf("max relative error %.3g", worst)
	if worst > 5e-7 {
		t.Fatalf("max relative error %.3g", worst)
	}
}

// noSIMD runs f with the scalar loops only.
func noSIMD(f func()) {
	saved := haveSIMD
	haveSIMD = false
	defer func() { haveSIMD = saved }()
	f()
}

// input draws n values from 0 to past Expf's clamps.
func input(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(4) {
		case 0:
			x[i] = float32(r.NormFloat64())
		case 1:
			x[i] = float32(r.NormFloat64() * 30)
		case 2:
			x[i] = float32(r.Float64()*400 - 200)
		}
	}
	return x
}

// relErr is |got − want| relative to scale (scale ≥ |want| keeps
// cancellation near zero from inflating it).
func relErr(got, want, scale float64) float64 {
	return math.Abs(got-want) / max(scale, 1e-30)
}

// TestKernels: each SIMD kernel against its scalar loop on every length up
// to 40 (kernel plus tail), the scalar loops against float64 math; AddTo and
// Fill exactly. SIMD and
// scalar compute the same polynomial on the same a; they differ in rounding
// k (nearest vs half up), FMA's single rounding inside e^−a and the order
// of the float64 sums, so sigmoid agrees within 4e-7 absolute and SiLU,
// its gradient and the sums within 1e-6 relative (a few float32 ulps; a
// dropped term of the range reduction gives 1e-4).
// Each SIMD level this CPU has (AVX-512 where the kernel has one, AVX2) is
// checked against the scalar loops.
func TestKernels(t *testing.T) {
	if !haveSIMD {
		t.Log("no AVX2+FMA on this CPU: checking the scalar loops only")
		kernelsAgainstScalar(t)
	}
	for _, lv := range levels() {
		if lv.simd {
			t.Run(lv.String(), func(t *testing.T) { lv.use(func() { kernelsAgainstScalar(t) }) })
		}
	}
}

func kernelsAgainstScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	worst := map[string]float64{}
	note := func(k string, e float64) { worst[k] = max(worst[k], e) }
	for n := 0; n <= 40; n++ {
		for trial := 0; trial < 50; trial++ {
			x, dy := input(r, n), input(r, n)
			scale, shift := float32(r.NormFloat64()), float32(r.NormFloat64())
			rr, mr := float32(r.Float64()+0.5), float32(r.NormFloat64())
			v, u, w := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
			y, sig, y2 := make([]float32, n), make([]float32, n), make([]float32, n)
			ys, sigs := make([]float32, n), make([]float32, n)
			da, das := make([]float32, n), make([]float32, n)
			ScaleShiftSiLU(x, y, sig, scale, shift)
			ScaleShiftSiLU(x, y2, nil, scale, shift)
			sa, sb := SiLUBackward(x, dy, da, scale, shift, rr, mr)
			dx, dxs := slices.Clone(dy), slices.Clone(dy)
			Affine(dx, x, v, u, w)
			sum, sums := slices.Clone(dy), slices.Clone(dy)
			AddTo(sum, x)
			fill := make([]float32, n)
			Fill(fill, v)
			ss, sss := make([]float32, n), make([]float32, n)
			ScaleShift(x, ss, scale, shift)
			qs, qq := SumSquares(x)
			var sas, sbs, qss, qqs float64
			noSIMD(func() {
				qss, qqs = SumSquares(x)
				ScaleShiftSiLU(x, ys, sigs, scale, shift)
				sas, sbs = SiLUBackward(x, dy, das, scale, shift, rr, mr)
				Affine(dxs, x, v, u, w)
				AddTo(sums, x)
				ScaleShift(x, sss, scale, shift)
			})
			for i := range x {
				if sum[i] != sums[i] || sum[i] != dy[i]+x[i] || fill[i] != v {
					t.Fatalf("n=%d, element %d: AddTo %g (scalar %g, want %g), Fill %g (want %g)", n, i, sum[i], sums[i], dy[i]+x[i], fill[i], v)
				}
			}
			var absA, absB float64
			for i := range x {
				note("sigmoid", math.Abs(float64(sig[i]-sigs[i])))
				note("silu", relErr(float64(y[i]), float64(ys[i]), math.Abs(float64(ys[i]))))
				if y2[i] != y[i] {
					t.Fatalf("n=%d: SiLU without sig %g, with %g", n, y2[i], y[i])
				}
				note("grad", relErr(float64(da[i]), float64(das[i]), math.Abs(float64(dy[i]))))
				// FMA rounds x·scale + shift once, the scalar loop twice.
				note("scale-shift", relErr(float64(ss[i]), float64(sss[i]), math.Abs(float64(x[i]*scale))+math.Abs(float64(shift))))
				note("affine", relErr(float64(dx[i]), float64(dxs[i]), math.Abs(float64(dy[i]*v))+math.Abs(float64(x[i]*u))+math.Abs(float64(w))))
				absA += math.Abs(float64(das[i]))
				absB += math.Abs(float64(das[i] * (x[i]*rr - mr)))
				a := float64(x[i]*scale + shift)
				s := 1 / (1 + math.Exp(-a))
				note("scalar sigmoid vs float64", math.Abs(float64(sigs[i])-s))
				// relative to |dy|·(1+|a|), the size of the terms of 1 + a·(1−s)
				note("scalar grad vs float64", relErr(float64(das[i]), float64(dy[i])*s*(1+a*(1-s)), math.Abs(float64(dy[i]))*(1+math.Abs(a))))
			}
			// float64 sums of float32 values in another order: rounding
			// of float64 relative to Σ|x| and Σx².
			var absX, sq float64
			for _, v := range x {
				absX, sq = absX+math.Abs(float64(v)), sq+float64(v)*float64(v)
			}
			note("sum squares", relErr(qs, qss, absX))
			note("sum squares", relErr(qq, qqs, sq))
			note("sums", relErr(sa, sas, absA))
			note("sums", relErr(sb, sbs, absB))
		}
	}
	t.Logf("max errors: %v", worst)
	for k, e := range worst {
		if limit := map[bool]float64{true: 4e-7, false: 1e-6}[k == "sigmoid"]; e > limit {
			t.Errorf("%s: off by %.3g (limit %.3g)", k, e, limit)
		}
	}
}

func BenchmarkScaleShiftSiLU(b *testing.B) {
	x := make([]float32, 1024)
	for i := range x {
		x[i] = float32(i%37) - 18
	}
	y, sig := make([]float32, len(x)), make([]float32, len(x))
	for _, simd := range []bool{true, false} {
		name := map[bool]string{true: "simd", false: "scalar"}[simd]
		b.Run(name, func(b *testing.B) {
			saved := haveSIMD
			haveSIMD = haveSIMD && simd
			defer func() { haveSIMD = saved }()
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				ScaleShiftSiLU(x, y, sig, 0.7, 0.1)
			}
		})
	}
}
