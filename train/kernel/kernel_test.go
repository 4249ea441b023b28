package kernel

import (
	"math"
	"math/rand/v2"
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

// scalar runs ScaleShiftSiLU without its SIMD kernel.
func scalar(x, y, sig []float32, scale, shift float32) {
	saved := haveSIMD
	haveSIMD = false
	defer func() { haveSIMD = saved }()
	ScaleShiftSiLU(x, y, sig, scale, shift)
}

// TestScaleShiftSiLU: the SIMD kernel against the scalar loop (itself
// checked against float64 math), on every length up to 40 (kernel plus
// tail) and inputs from 0 to past the clamps. Both compute the same
// polynomial and the same a; they differ in rounding k (nearest vs half up)
// and in FMA's single rounding inside e^−a, so sigmoid agrees within 4e-7
// absolute and SiLU within 4e-7 relative (a few ulps).
func TestScaleShiftSiLU(t *testing.T) {
	if !haveSIMD {
		t.Log("no AVX2+FMA on this CPU: checking the scalar loop only")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var worstS, worstY, worstRef float64
	for n := 0; n <= 40; n++ {
		for trial := 0; trial < 50; trial++ {
			x := make([]float32, n)
			for i := range x {
				switch r.IntN(4) {
				case 0:
					x[i] = float32(r.NormFloat64())
				case 1:
					x[i] = float32(r.NormFloat64() * 30)
				case 2:
					x[i] = float32(r.Float64()*400 - 200) // past the clamps
				default:
					x[i] = 0
				}
			}
			scale, shift := float32(r.NormFloat64()), float32(r.NormFloat64())
			y, sig := make([]float32, n), make([]float32, n)
			ys, sigs := make([]float32, n), make([]float32, n)
			ScaleShiftSiLU(x, y, sig, scale, shift)
			scalar(x, ys, sigs, scale, shift)
			for i := range x {
				worstS = max(worstS, math.Abs(float64(sig[i]-sigs[i])))
				if d := math.Abs(float64(y[i] - ys[i])); d > 0 {
					worstY = max(worstY, d/max(math.Abs(float64(ys[i])), 1e-30))
				}
				a := float64(x[i]*scale + shift)
				ref := 1 / (1 + math.Exp(-a))
				worstRef = max(worstRef, math.Abs(float64(sigs[i])-ref))
			}
		}
	}
	t.Logf("SIMD vs scalar: sigmoid %.3g abs, SiLU %.3g rel; scalar vs float64: %.3g", worstS, worstY, worstRef)
	if worstS > 4e-7 || worstY > 4e-7 || worstRef > 4e-7 {
		t.Fatalf("sigmoid off by %.3g (SIMD) / %.3g (scalar vs float64); SiLU by %.3g rel", worstS, worstRef, worstY)
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
