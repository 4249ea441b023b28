//go:build amd64

package kernel

import "golang.org/x/sys/cpu"

// haveSIMD: ScaleShiftSiLU runs its AVX2+FMA kernel (8 lanes) on this CPU.
var haveSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// scaleShiftSiLUAVX2 is ScaleShiftSiLU's kernel for the first n&^7
// elements (silu_amd64.s).
//
//go:noescape
func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32)
