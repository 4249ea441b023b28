//go:build amd64

package kernel

import "golang.org/x/sys/cpu"

// haveSIMD: the kernels run their AVX2+FMA code (8 lanes) on this CPU.
var haveSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// have512: the GEMM runs its AVX-512 tiles (16 lanes, 4×32) on this CPU.
// A core with full-width AVX-512 (AMD Zen 5, Intel server cores) makes
// twice the multiply-adds per cycle with them; on one that splits them in
// two (Zen 4) they cost the same as the AVX2 tiles.
var have512 = haveSIMD && cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// The kernels of ScaleShiftSiLU, SiLUBackward, Affine, AddTo and Fill for the first
// n&^7 elements (kernel_amd64.s).

//go:noescape
func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32)

//go:noescape
func siluBackwardAVX2(x, dy, da *float32, n int, scale, shift, rr, mr float32, sums *[8]float64)

//go:noescape
func scaleShiftSiLU512(x, y, sig *float32, n int, scale, shift float32)

//go:noescape
func scaleShiftAVX2(x, y *float32, n int, scale, shift float32)

//go:noescape
func affineAVX2(dx, x *float32, n int, v, u, w float32)

//go:noescape
func addToAVX2(dst, src *float32, n int)

//go:noescape
func fillAVX2(dst *float32, n int, v float32)

//go:noescape
func sumSqAVX2(x *float32, n int, sums *[8]float64)

// sgemm4x16 adds a 4×16 tile of A×B to C (gemm_amd64.s).
//
//go:noescape
func sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

// sgemmInd4x16 is sgemm4x16 with B's rows at b + offs[kk] (gemm_amd64.s).
//
//go:noescape
func sgemmInd4x16(k int, a *float32, lda int, b *float32, offs *int, c *float32, ldc int)

// sgemm4x32 and sgemmInd4x32: the tiles at AVX-512 width (gemm_amd64.s).
//
//go:noescape
func sgemm4x32(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

//go:noescape
func sgemmInd4x32(k int, a *float32, lda int, b *float32, offs *int, c *float32, ldc int)
