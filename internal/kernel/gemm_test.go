package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSgemm: the tiled kernel and the Go loops against a float64 triple
// loop, over shapes with and without remainders of the 4×16 tile.
func TestSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{4, 16, 1}, {1, 1, 1}, {5, 17, 3}, {16, 1024, 144}, {33, 70, 9}, {64, 64, 576}, {3, 40, 7}, {8, 16, 0}} {
		M, N, K := s[0], s[1], s[2]
		a, b, c := make([]float32, M*K), make([]float32, K*N), make([]float32, M*N)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		for i := range b {
			b[i] = float32(r.NormFloat64())
		}
		for i := range c {
			c[i] = float32(r.NormFloat64())
		}
		want := make([]float64, M*N)
		for i := 0; i < M; i++ {
			for j := 0; j < N; j++ {
				v := float64(c[i*N+j])
				for k := 0; k < K; k++ {
					v += float64(a[i*K+k]) * float64(b[k*N+j])
				}
				want[i*N+j] = v
			}
		}
		for _, simd := range []bool{true, false} {
			if simd && !haveSIMD {
				continue
			}
			saved := haveSIMD
			haveSIMD = simd
			got := append([]float32(nil), c...)
			Sgemm(M, N, K, a, K, b, N, got, N)
			haveSIMD = saved
			for i := range got {
				// float32 accumulation of K products of unit normals: error
				// grows like sqrt(K)·2^-24 of the terms' scale.
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*(1+math.Sqrt(float64(K))) {
					t.Fatalf("%v simd=%v: C[%d] = %g, want %g", s, simd, i, got[i], want[i])
				}
			}
		}
	}
}
