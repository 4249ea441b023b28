package kernel

import (
	"fmt"
	"sync"
)

// Sgemm adds A [M K] × B [K N] to C [M N], row-major with leading
// dimensions lda, ldb, ldc (elements between rows). With AVX2+FMA, tiles
// of 4 rows × 16 columns run in the assembly kernel (sgemm4x16), or 4 × 32
// with AVX-512 (sgemm4x32); the rest,
// and other CPUs, take sgemmGo. The Go backend's Conv, MatMul and Gemm run
// on it.
func Sgemm(M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if !haveSIMD || K == 0 || M < 4 || N < 16 {
		sgemmGo(M, K, 0, N, a, lda, b, ldb, c, ldc)
		return
	}
	m4, n16, n32 := M&^3, N&^15, 0
	if have512 {
		n32 = N &^ 31
	}
	for i := 0; i < m4; i += 4 {
		for j := 0; j < n32; j += 32 {
			sgemm4x32(K, &a[i*lda], lda, &b[j], ldb, &c[i*ldc+j], ldc)
		}
		for j := n32; j < n16; j += 16 {
			sgemm4x16(K, &a[i*lda], lda, &b[j], ldb, &c[i*ldc+j], ldc)
		}
	}
	if n16 < N {
		sgemmEdge(m4, N-n16, K, a, lda, b[n16:], ldb, c[n16:], ldc)
	}
	if m4 < M {
		sgemmGo(M-m4, K, 0, N, a[m4*lda:], lda, b, ldb, c[m4*ldc:], ldc)
	}
}

// sgemmEdge is Sgemm on the last r < 16 columns of M (a multiple of 4)
// rows: B's and C's columns are copied into 16-column tiles padded with
// zeros and run in the SIMD kernel (a 7×7 image's 49 columns would
// otherwise put a third of the product in Go loops).
func sgemmEdge(M, r, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	buf := scratch.Get().(*[]float32)
	if cap(*buf) < 16*(K+M) {
		*buf = make([]float32, 16*(K+M))
	}
	b16, c16 := (*buf)[:16*K], (*buf)[16*K:16*(K+M)]
	clear(b16)
	for k := 0; k < K; k++ {
		copy(b16[k*16:k*16+r], b[k*ldb:k*ldb+r])
	}
	for i := 0; i < M; i++ {
		copy(c16[i*16:i*16+r], c[i*ldc:i*ldc+r])
	}
	for i := 0; i < M; i += 4 {
		sgemm4x16(K, &a[i*lda], lda, &b16[0], 16, &c16[i*16], 16)
	}
	for i := 0; i < M; i++ {
		copy(c[i*ldc:i*ldc+r], c16[i*16:i*16+r])
	}
	scratch.Put(buf)
}

// sgemmGo adds columns [j0, j1) of A [M K] × B [K ·] to C [M ·]: rows of
// C four at a time, so that each row of B loaded is used four times; the
// inner loop runs along a row (contiguous in B and C).
func sgemmGo(M, K, j0, j1 int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	i := 0
	for ; i+4 <= M; i += 4 {
		c0, c1, c2, c3 := c[i*ldc+j0:i*ldc+j1], c[(i+1)*ldc+j0:(i+1)*ldc+j1], c[(i+2)*ldc+j0:(i+2)*ldc+j1], c[(i+3)*ldc+j0:(i+3)*ldc+j1]
		a0, a1, a2, a3 := a[i*lda:i*lda+K], a[(i+1)*lda:(i+1)*lda+K], a[(i+2)*lda:(i+2)*lda+K], a[(i+3)*lda:(i+3)*lda+K]
		for k := 0; k < K; k++ {
			v0, v1, v2, v3 := a0[k], a1[k], a2[k], a3[k]
			row := b[k*ldb+j0 : k*ldb+j1]
			c0, c1, c2, c3 := c0[:len(row)], c1[:len(row)], c2[:len(row)], c3[:len(row)]
			for j, bv := range row {
				c0[j] += v0 * bv
				c1[j] += v1 * bv
				c2[j] += v2 * bv
				c3[j] += v3 * bv
			}
		}
	}
	for ; i < M; i++ {
		ci := c[i*ldc+j0 : i*ldc+j1]
		for k := 0; k < K; k++ {
			v := a[i*lda+k]
			row := b[k*ldb+j0 : k*ldb+j1]
			ci := ci[:len(row)]
			for j, bv := range row {
				ci[j] += v * bv
			}
		}
	}
}

// SgemmIndirect adds A [M K] × B to C [M N], where row k of B is
// b[offs[k] : offs[k]+N]: the rows of B are gathered from anywhere in b,
// each read where it lies. A convolution of stride 1 runs on it straight
// from its zero-padded input (row (c, i, j) of B is the input shifted by
// tap (i, j)), without copying each tap's columns out (im2col). offs[k] +
// N must lie within b: it is checked once per call, before the SIMD
// kernel, which does not check.
func SgemmIndirect(M, N, K int, a []float32, lda int, b []float32, offs []int, c []float32, ldc int) {
	if M == 0 || N == 0 || K == 0 {
		return
	}
	offs = offs[:K]
	for _, o := range offs {
		if o < 0 || o+N > len(b) {
			panic(fmt.Sprintf("kernel: SgemmIndirect: row at %d of %d values does not hold %d", o, len(b), N))
		}
	}
	_ = a[(M-1)*lda+K-1]
	_ = c[(M-1)*ldc+N-1]
	if !haveSIMD || N < 16 {
		sgemmIndGo(M, K, 0, N, a, lda, b, offs, c, ldc)
		return
	}
	m4 := M &^ 3
	indTiles(m4, N, K, a, lda, b, offs, c, ldc)
	if m4 < M {
		// The last one to three rows (a model's output convolution has
		// one or three channels) through a 4-row tile padded with zero
		// rows, so that they run in the SIMD kernel too.
		r := M - m4
		buf := scratch.Get().(*[]float32)
		if cap(*buf) < 4*(K+N) {
			*buf = make([]float32, 4*(K+N))
		}
		a4, c4 := (*buf)[:4*K], (*buf)[4*K:4*(K+N)]
		clear(a4)
		clear(c4)
		for i := 0; i < r; i++ {
			copy(a4[i*K:(i+1)*K], a[(m4+i)*lda:])
			copy(c4[i*N:(i+1)*N], c[(m4+i)*ldc:])
		}
		indTiles(4, N, K, a4, K, b, offs, c4, N)
		for i := 0; i < r; i++ {
			copy(c[(m4+i)*ldc:(m4+i)*ldc+N], c4[i*N:(i+1)*N])
		}
		scratch.Put(buf)
	}
}

// scratch holds SgemmIndirect's padded tiles between calls (no allocation
// per call once it has one).
var scratch = sync.Pool{New: func() any { return new([]float32) }}

// indTiles is SgemmIndirect for M a multiple of 4 on the SIMD kernels:
// 4×32 tiles (AVX-512), then 4×16, then the last columns in Go.
func indTiles(M, N, K int, a []float32, lda int, b []float32, offs []int, c []float32, ldc int) {
	n16, n32 := N&^15, 0
	if have512 {
		n32 = N &^ 31
	}
	for i := 0; i < M; i += 4 {
		for j := 0; j < n32; j += 32 {
			sgemmInd4x32(K, &a[i*lda], lda, &b[j], &offs[0], &c[i*ldc+j], ldc)
		}
		for j := n32; j < n16; j += 16 {
			sgemmInd4x16(K, &a[i*lda], lda, &b[j], &offs[0], &c[i*ldc+j], ldc)
		}
	}
	if n16 < N {
		sgemmIndGo(M, K, n16, N, a, lda, b, offs, c, ldc)
	}
}

// sgemmIndGo adds columns [j0, j1) of A × B (rows at offs) to C, as
// sgemmGo does for a strided B.
func sgemmIndGo(M, K, j0, j1 int, a []float32, lda int, b []float32, offs []int, c []float32, ldc int) {
	for i := 0; i < M; i++ {
		ci := c[i*ldc+j0 : i*ldc+j1]
		for k := 0; k < K; k++ {
			v := a[i*lda+k]
			row := b[offs[k]+j0 : offs[k]+j1]
			ci := ci[:len(row)]
			for j, bv := range row {
				ci[j] += v * bv
			}
		}
	}
}
