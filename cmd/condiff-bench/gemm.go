package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"

	"github.com/condiff/condiff/internal/kernel"
	"github.com/condiff/condiff/train"
)

// benchGemm times C += A·B (float32, row-major, no transposes) on one
// thread with condiff's kernel (internal/kernel.Sgemm: AVX-512 or AVX2
// tiles) and with the BLAS training runs on (OpenBLAS, single-threaded as
// training sets it), on the shapes of sampling's convolutions (the Go
// backend's GEMMs at 32, 16 and 8 pixels) and of training's forward
// convolutions (batch images of the shipped recipe's widths), and reports
// GFLOPS and the ratio. Training also multiplies by transposes (the weight
// and input gradients), which the kernel does not do.
func benchGemm() (any, error) {
	shapes := []struct {
		use     string
		M, N, K int
	}{
		{"sample 32px base16", 16, 32 * 34, 9 * 16},
		{"sample 16px base32", 32, 16 * 18, 9 * 32},
		{"sample 8px base32", 32, 8 * 10, 9 * 32},
		{"sample 32px base32", 32, 32 * 34, 9 * 32},
		{"sample 16px base64", 64, 16 * 18, 9 * 64},
		{"train 32px base16", 16, 1024, 9 * 16},
		{"train 16px base32", 32, 256, 9 * 32},
		{"train 8px base32", 32, 64, 9 * 32},
		{"train 32px base32", 32, 1024, 9 * 32},
	}
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	// timed runs f for at least 300 ms and returns GFLOPS of a product.
	timed := func(flops float64, f func()) float64 {
		f() // warm
		n, start := 0, time.Now()
		for time.Since(start) < 300*time.Millisecond {
			f()
			n++
		}
		return flops * float64(n) / time.Since(start).Seconds() / 1e9
	}
	bl := G.WhichBLAS()
	var rows []map[string]any
	for _, s := range shapes {
		a, b, c := fill(s.M*s.K), fill(s.K*s.N), fill(s.M*s.N)
		flops := 2 * float64(s.M) * float64(s.N) * float64(s.K)
		k := timed(flops, func() { kernel.Sgemm(s.M, s.N, s.K, a, s.K, b, s.N, c, s.N) })
		o := timed(flops, func() { bl.Sgemm(blas.NoTrans, blas.NoTrans, s.M, s.N, s.K, 1, a, s.K, b, s.N, 1, c, s.N) })
		rows = append(rows, map[string]any{"shape": fmt.Sprintf("%s: M %d N %d K %d", s.use, s.M, s.N, s.K),
			"kernel_gflops": k, train.BLAS + "_gflops": o, "kernel_vs_blas": k / o,
			train.BLAS + "_max_error": blasError(bl, s.M, s.N, s.K, fill)})
	}
	return map[string]any{"threads": 1, "blas": train.BLAS, "blas_core": train.BLASCore(), "products": rows}, nil
}

// blasError is the BLAS's largest error on an [M K]·[K N] product in each
// of the four transpose combinations training uses, against a float64
// loop, relative to Σ|a·b| of the entry: about 1e-7 (float32 rounding)
// when its kernels are right for this CPU. A kernel choice that computes
// wrong results (OPENBLAS_CORETYPE on some CPUs) shows here as errors near
// 1.
func blasError(bl blasSgemm, M, N, K int, fill func(int) []float32) float64 {
	worst := 0.0
	for _, ta := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tb := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			a, b := fill(M*K), fill(K*N)
			lda, ldb := K, N
			at := func(i, k int) float64 { return float64(a[i*K+k]) }
			if ta == blas.Trans { // a holds Aᵀ [K M]
				lda, at = M, func(i, k int) float64 { return float64(a[k*M+i]) }
			}
			bt := func(k, j int) float64 { return float64(b[k*N+j]) }
			if tb == blas.Trans { // b holds Bᵀ [N K]
				ldb, bt = K, func(k, j int) float64 { return float64(b[j*K+k]) }
			}
			c := make([]float32, M*N)
			bl.Sgemm(ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N)
			for i := 0; i < M; i++ {
				for j := 0; j < N; j++ {
					var v, mag float64
					for k := 0; k < K; k++ {
						p := at(i, k) * bt(k, j)
						v, mag = v+p, mag+math.Abs(p)
					}
					worst = max(worst, math.Abs(float64(c[i*N+j])-v)/max(mag, 1e-30))
				}
			}
		}
	}
	return worst
}

// blasSgemm is the BLAS call blasError checks.
type blasSgemm interface {
	Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}
