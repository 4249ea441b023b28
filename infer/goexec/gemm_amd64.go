//go:build amd64

package goexec

import "golang.org/x/sys/cpu"

// haveFMA: sgemm runs its AVX2+FMA tile kernel (gemm_amd64.s) on this CPU.
var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)
