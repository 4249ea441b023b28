// Package kernel holds training's elementwise hot loops, with SIMD kernels
// in Go assembly where the CPU has them (train uses cgo, and a cgo package
// cannot hold Go assembly).
package kernel

import "math"

// Expf is e^x in float32 (Cephes' expf: a degree-5 polynomial of the
// remainder after taking out powers of two; max relative error ~2e-7 over
// the range, checked against math.Exp by TestExpf). x is clamped to
// [-87, 88], where e^x stays a normal float32.
func Expf(x float32) float32 {
	x = min(max(x, -87), 88)
	n := float32(math.Floor(float64(x*1.44269504088896341 + 0.5)))
	r := x - n*0.693359375 + n*2.12194440e-4 // x − n·ln2, ln2 split for precision
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y := p*z + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// ScaleShiftSiLU computes, per element, a = x·scale + shift, sig =
// sigmoid(a) and y = a·sig (y = SiLU(a)); sig is kept for the backward. On
// CPUs with AVX2 and FMA, eight lanes at a time (silu_amd64.s: the same
// Expf, rounding k to nearest instead of half up; TestScaleShiftSiLU bounds
// the difference); the tail and other CPUs take the scalar loop.
func ScaleShiftSiLU(x, y, sig []float32, scale, shift float32) {
	y, sig = y[:len(x)], sig[:len(x)]
	i := 0
	if haveSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		scaleShiftSiLUAVX2(&x[0], &y[0], &sig[0], i, scale, shift)
	}
	for ; i < len(x); i++ {
		a := x[i]*scale + shift
		s := 1 / (1 + Expf(-a))
		sig[i] = s
		y[i] = a * s
	}
}
