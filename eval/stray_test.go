package eval

import (
	"math"
	"testing"
)

// img draws the listed bright pixels (row, column) on a dark size×size
// image in [-1, 1].
func img(size int, bright ...[2]int) []float32 {
	x := make([]float32, size*size)
	for i := range x {
		x[i] = -1
	}
	for _, p := range bright {
		x[p[0]*size+p[1]] = 1
	}
	return x
}

func TestHasStray(t *testing.T) {
	stroke := [][2]int{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {4, 5}} // diagonal: one 8-connected component
	cases := []struct {
		name  string
		extra [][2]int
		want  bool
	}{
		{"one stroke", nil, false},
		{"a single stray pixel (below StrayMinPixels)", [][2]int{{7, 0}}, false},
		{"a detached blob of two", [][2]int{{7, 0}, {7, 1}}, true},
		{"a diagonal neighbour is attached", [][2]int{{5, 6}, {6, 7}}, false},
		{"two separate pixels are not one component", [][2]int{{7, 0}, {7, 2}}, false},
	}
	for _, c := range cases {
		if got := HasStray(img(8, append(append([][2]int{}, stroke...), c.extra...)...), 1, 8); got != c.want {
			t.Errorf("%s: HasStray = %v, want %v", c.name, got, c.want)
		}
	}
	// Channels are averaged: a pixel bright in one of three channels only
	// (mean −1/3) is dark.
	rgb := append(append(img(8, stroke...), img(8, stroke...)...), img(8, append(append([][2]int{}, stroke...), [2]int{7, 0}, [2]int{7, 1})...)...)
	if HasStray(rgb, 3, 8) {
		t.Error("a blob bright in one channel of three counted as bright")
	}
	// The largest component is the object whichever comes first.
	if !HasStray(img(8, [2]int{0, 0}, [2]int{0, 1}, [2]int{5, 5}, [2]int{5, 6}, [2]int{6, 5}, [2]int{6, 6}), 1, 8) {
		t.Error("a blob before the object in scan order not found")
	}
}

func TestStrayRate(t *testing.T) {
	clean, stray := img(8, [2]int{1, 1}), img(8, [2]int{1, 1}, [2]int{1, 2}, [2]int{6, 6}, [2]int{6, 7})
	var x []float32
	for i := 0; i < 4; i++ {
		x = append(x, clean...)
	}
	x = append(x, stray...)
	r := StrayRate(x, 1, 8)
	if r.N != 5 || math.Abs(float64(r.Mean)-0.2) > 1e-12 || math.Abs(float64(r.SD)-math.Sqrt(0.2*0.8/5)) > 1e-12 {
		t.Errorf("StrayRate = %+v, want 0.2 ± %.4f over 5", r, math.Sqrt(0.2*0.8/5))
	}
	if r := StrayRate(nil, 1, 8); !math.IsNaN(float64(r.Mean)) {
		t.Errorf("StrayRate of no images = %v, want NaN", r.Mean)
	}
}
