package goexec

// sgemm adds A [M K] × B [K N] to C [M N], all row-major and contiguous.
// Rows of C four at a time, so that each row of B loaded is used four
// times; the inner loop runs along a row (contiguous in B and C).
func sgemm(M, N, K int, a, b, c []float32) {
	i := 0
	for ; i+4 <= M; i += 4 {
		c0, c1, c2, c3 := c[i*N:(i+1)*N], c[(i+1)*N:(i+2)*N], c[(i+2)*N:(i+3)*N], c[(i+3)*N:(i+4)*N]
		a0, a1, a2, a3 := a[i*K:(i+1)*K], a[(i+1)*K:(i+2)*K], a[(i+2)*K:(i+3)*K], a[(i+3)*K:(i+4)*K]
		for k := 0; k < K; k++ {
			v0, v1, v2, v3 := a0[k], a1[k], a2[k], a3[k]
			row := b[k*N : (k+1)*N]
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
		ci := c[i*N : (i+1)*N]
		for k := 0; k < K; k++ {
			v := a[i*K+k]
			row := b[k*N : (k+1)*N]
			ci := ci[:len(row)]
			for j, bv := range row {
				ci[j] += v * bv
			}
		}
	}
}
