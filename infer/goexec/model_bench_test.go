package goexec

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkShipped times one call of the shipped MNIST denoiser at 2 and
// 128 rows (batch 1 and 64 with guidance) on 1 and 2 goroutines; the
// whole sampler's ratio to ONNX Runtime is condiff-bench -mode backends.
func BenchmarkShipped(b *testing.B) {
	mb, err := os.ReadFile("../../assets/pretrained/mnist-cbn.onnx")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{2, 128} {
		r := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, n*28*28)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		t, y := make([]int64, n), make([]int64, n)
		for i := range t {
			t[i], y[i] = 500, int64(i%11)
		}
		in := []Input{{Shape: []int{n, 1, 28, 28}, F: x}, {Shape: []int{n}, I: t}, {Shape: []int{n}, I: y}}
		for _, threads := range []int{1, 2} {
			m, err := Load(mb, threads)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("rows%d/threads%d", n, threads), func(b *testing.B) {
				for b.Loop() {
					if _, err := m.Run(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
