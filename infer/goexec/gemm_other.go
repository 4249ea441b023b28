//go:build !amd64

package goexec

var haveFMA = false

func sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	panic("goexec: no SIMD kernel on this architecture")
}
