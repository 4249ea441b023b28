//go:build !amd64

package kernel

var haveSIMD = false

func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32) {
	panic("kernel: no SIMD kernel on this architecture")
}
