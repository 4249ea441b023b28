package eval

import "math"

// Stray components: the defect a small or under-trained denoiser shows
// first on line-art data (a detached blob or stray dots beside a digit).
// An image's bright pixels (channel mean above StrayLevel, images in
// [-1, 1]) are grouped into 8-connected components; the image has a stray
// component when a component other than the largest holds at least
// StrayMinPixels pixels. The same rule is applied to real images, which
// have some too (a broken stroke, a dot over a letter), so the rate is
// read against theirs.
const (
	StrayLevel     = 0.0 // the midpoint of [-1, 1]
	StrayMinPixels = 2
)

// HasStray reports whether the image x [C S S] in [-1, 1] has a stray
// component.
func HasStray(x []float32, c, size int) bool {
	n := size * size
	bright := make([]bool, n)
	for p := 0; p < n; p++ {
		var s float32
		for ch := 0; ch < c; ch++ {
			s += x[ch*n+p]
		}
		bright[p] = s/float32(c) > StrayLevel
	}
	// Flood fill each component, keeping the sizes.
	seen := make([]bool, n)
	var sizes []int
	stack := make([]int, 0, n)
	for p := 0; p < n; p++ {
		if !bright[p] || seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack[:0], p)
		count := 0
		for len(stack) > 0 {
			q := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			count++
			qy, qx := q/size, q%size
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					y, x := qy+dy, qx+dx
					if y < 0 || y >= size || x < 0 || x >= size {
						continue
					}
					if r := y*size + x; bright[r] && !seen[r] {
						seen[r] = true
						stack = append(stack, r)
					}
				}
			}
		}
		sizes = append(sizes, count)
	}
	largest := -1
	for i, s := range sizes {
		if largest < 0 || s > sizes[largest] {
			largest = i
		}
	}
	for i, s := range sizes {
		if i != largest && s >= StrayMinPixels {
			return true
		}
	}
	return false
}

// StrayRate is the share of the images x [N C S S] that have a stray
// component, with its binomial standard error.
func StrayRate(x []float32, c, size int) Interval {
	d := c * size * size
	n := len(x) / d
	if n == 0 {
		return Interval{Mean: Num(math.NaN()), SD: Num(math.NaN())}
	}
	k := 0
	for i := 0; i < n; i++ {
		if HasStray(x[i*d:(i+1)*d], c, size) {
			k++
		}
	}
	p := float64(k) / float64(n)
	return Interval{Mean: Num(p), SD: Num(math.Sqrt(p * (1 - p) / float64(n))), N: n}
}
