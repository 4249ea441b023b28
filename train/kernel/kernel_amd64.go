//go:build amd64

package kernel

import "golang.org/x/sys/cpu"

// haveSIMD: the kernels run their AVX2+FMA code (8 lanes) on this CPU.
var haveSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The kernels of ScaleShiftSiLU, SiLUBackward, Affine, AddTo and Fill for the first
// n&^7 elements (kernel_amd64.s).

//go:noescape
func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32)

//go:noescape
func siluBackwardAVX2(x, dy, da *float32, n int, scale, shift, rr, mr float32, sums *[8]float64)

//go:noescape
func affineAVX2(dx, x *float32, n int, v, u, w float32)

//go:noescape
func addToAVX2(dst, src *float32, n int)

//go:noescape
func fillAVX2(dst *float32, n int, v float32)
