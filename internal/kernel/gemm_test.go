package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

func normals(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// product is C + A·B in float64, row k of B at b[off(k):].
func product(M, N, K int, a, b, c []float32, off func(k int) int) []float64 {
	want := make([]float64, M*N)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			v := float64(c[i*N+j])
			for k := 0; k < K; k++ {
				v += float64(a[i*K+k]) * float64(b[off(k)+j])
			}
			want[i*N+j] = v
		}
	}
	return want
}

// atEveryLevel runs gemm on a copy of c with each kernel level this CPU
// has and compares it with want. float32 accumulation of K products of
// unit normals: the error grows like sqrt(K)·2^-24 of the terms' scale.
func atEveryLevel(t *testing.T, shape [3]int, c []float32, want []float64, gemm func(got []float32)) {
	t.Helper()
	for _, lv := range levels() {
		got := append([]float32(nil), c...)
		lv.use(func() { gemm(got) })
		for i := range got {
			if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*(1+math.Sqrt(float64(shape[2]))) {
				t.Fatalf("%v %v: C[%d] = %g, want %g", shape, lv, i, got[i], want[i])
			}
		}
	}
}

// TestSgemm: the tiled kernels and the Go loops against a float64 triple
// loop, over shapes with and without remainders of the 4×16 and 4×32
// tiles.
func TestSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{4, 16, 1}, {1, 1, 1}, {5, 17, 3}, {6, 50, 5}, {8, 96, 33}, {16, 1024, 144}, {33, 70, 9}, {64, 64, 576}, {3, 40, 7}, {8, 16, 0}, {12, 49, 64}} {
		M, N, K := s[0], s[1], s[2]
		a, b, c := normals(r, M*K), normals(r, K*N), normals(r, M*N)
		want := product(M, N, K, a, b, c, func(k int) int { return k * N })
		atEveryLevel(t, s, c, want, func(got []float32) { Sgemm(M, N, K, a, K, b, N, got, N) })
	}
}

// TestSgemmIndirect: the gathered-row GEMM against a float64 triple loop
// over rows at scattered, overlapping offsets (as a convolution's taps
// overlap), with and without remainders of the tiles and of their 4 rows
// (padded to a tile); an offset whose row runs past b panics before the
// kernel reads it.
func TestSgemmIndirect(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{4, 16, 1}, {1, 1, 1}, {5, 17, 3}, {6, 50, 5}, {8, 96, 33}, {16, 1088, 144}, {33, 70, 9}, {3, 40, 7}, {8, 16, 0}, {12, 63, 64}} {
		M, N, K := s[0], s[1], s[2]
		b := normals(r, N+3*K+40)
		offs := make([]int, K)
		for k := range offs {
			offs[k] = r.IntN(len(b) - N + 1)
		}
		a, c := normals(r, M*max(K, 1)), normals(r, M*N)
		want := product(M, N, K, a, b, c, func(k int) int { return offs[k] })
		atEveryLevel(t, s, c, want, func(got []float32) { SgemmIndirect(M, N, K, a, max(K, 1), b, offs, got, N) })
	}
	defer func() {
		if recover() == nil {
			t.Error("an offset past the end of b did not panic")
		}
	}()
	b := make([]float32, 40)
	SgemmIndirect(4, 16, 1, make([]float32, 4), 1, b, []int{30}, make([]float32, 64), 16)
}

// level is a choice of kernels: AVX-512, AVX2 or pure Go.
type level struct{ simd, wide bool }

func (l level) String() string {
	return map[level]string{{true, true}: "avx512", {true, false}: "avx2", {false, false}: "go"}[l]
}

// use runs f with only this level's kernels enabled.
func (l level) use(f func()) {
	s, w := haveSIMD, have512
	haveSIMD, have512 = l.simd, l.wide
	defer func() { haveSIMD, have512 = s, w }()
	f()
}

// levels are the kernel levels this CPU can run, widest first.
func levels() []level {
	var out []level
	if have512 {
		out = append(out, level{true, true})
	}
	if haveSIMD {
		out = append(out, level{true, false})
	}
	return append(out, level{false, false})
}
