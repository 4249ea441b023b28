package goexec

// sgemm adds A [M K] × B [K N] to C [M N], all row-major and contiguous.
// With AVX2+FMA, tiles of 4 rows × 16 columns run in the assembly kernel
// (sgemm4x16); the rest, and other CPUs, take sgemmGo.
func sgemm(M, N, K int, a, b, c []float32) {
	if !haveFMA || K == 0 || M < 4 || N < 16 {
		sgemmGo(M, N, K, 0, N, a, b, c)
		return
	}
	m4, n16 := M&^3, N&^15
	for i := 0; i < m4; i += 4 {
		for j := 0; j < n16; j += 16 {
			sgemm4x16(K, &a[i*K], K, &b[j], N, &c[i*N+j], N)
		}
	}
	if n16 < N {
		sgemmGo(m4, N, K, n16, N, a, b, c)
	}
	if m4 < M {
		sgemmGo(M-m4, N, K, 0, N, a[m4*K:], b, c[m4*N:])
	}
}

// sgemmGo adds columns [j0, j1) of A [M K] × B [K N] to C [M N]: rows of C
// four at a time, so that each row of B loaded is used four times; the
// inner loop runs along a row (contiguous in B and C).
func sgemmGo(M, N, K, j0, j1 int, a, b, c []float32) {
	i := 0
	for ; i+4 <= M; i += 4 {
		c0, c1, c2, c3 := c[i*N+j0:i*N+j1], c[(i+1)*N+j0:(i+1)*N+j1], c[(i+2)*N+j0:(i+2)*N+j1], c[(i+3)*N+j0:(i+3)*N+j1]
		a0, a1, a2, a3 := a[i*K:(i+1)*K], a[(i+1)*K:(i+2)*K], a[(i+2)*K:(i+3)*K], a[(i+3)*K:(i+4)*K]
		for k := 0; k < K; k++ {
			v0, v1, v2, v3 := a0[k], a1[k], a2[k], a3[k]
			row := b[k*N+j0 : k*N+j1]
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
		ci := c[i*N+j0 : i*N+j1]
		for k := 0; k < K; k++ {
			v := a[i*K+k]
			row := b[k*N+j0 : k*N+j1]
			ci := ci[:len(row)]
			for j, bv := range row {
				ci[j] += v * bv
			}
		}
	}
}
