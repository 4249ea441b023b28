//go:build !amd64

package kernel

var haveSIMD, have512 = false, false

// No SIMD kernels here: haveSIMD is false, so these are never called.

func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32) { panic("kernel: no SIMD") }

func siluBackwardAVX2(x, dy, da *float32, n int, scale, shift, rr, mr float32, sums *[8]float64) {
	panic("kernel: no SIMD")
}

func scaleShiftSiLU512(x, y, sig *float32, n int, scale, shift float32) { panic("kernel: no SIMD") }

func scaleShiftAVX2(x, y *float32, n int, scale, shift float32) { panic("kernel: no SIMD") }

func affineAVX2(dx, x *float32, n int, v, u, w float32) { panic("kernel: no SIMD") }

func addToAVX2(dst, src *float32, n int) { panic("kernel: no SIMD") }

func fillAVX2(dst *float32, n int, v float32) { panic("kernel: no SIMD") }

func sumSqAVX2(x *float32, n int, sums *[8]float64) { panic("kernel: no SIMD") }

func sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	panic("kernel: no SIMD")
}

func sgemmInd4x16(k int, a *float32, lda int, b *float32, offs *int, c *float32, ldc int) {
	panic("kernel: no SIMD")
}

func sgemm4x32(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	panic("kernel: no SIMD")
}

func sgemmInd4x32(k int, a *float32, lda int, b *float32, offs *int, c *float32, ldc int) {
	panic("kernel: no SIMD")
}
