// Package kernel holds condiff's hot loops, one home for both trees:
// the single-precision GEMM (Sgemm) the Go backend's Conv, MatMul and Gemm
// run on, and the elementwise loops of training and sampling (fused
// scale-shift-SiLU and its backward, affine, fills, softmax rows). Each has
// a pure-Go loop and, where the CPU has AVX2+FMA, a Go-assembly kernel
// (*_amd64.s) chosen at run time. No cgo and nothing above it: training
// (train/, which uses cgo OpenBLAS and so cannot hold assembly itself) and
// the deployment backend (infer/goexec) both import it, and it imports
// neither.
package kernel

import "math"

// Expf is e^x in float32 (Cephes' expf: a degree-5 polynomial of the
// remainder after taking out powers of two; max relative error ~2e-7 over
// the range, checked against math.Exp by TestExpf). x is clamped to
// [-87, 88], where e^x stays a normal float32.
func Expf(x float32) float32 {
	x = min(max(x, -87), 88)
	n := float32(math.Floor(float64(x*1.44269504088896341 + 0.5)))
	r := x - n*0.693359375 + n*2.12194440e-4 // x − n·ln2, ln2 split for precision
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y := p*z + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// SoftmaxRow replaces row with softmax(scale·row), computed stably (the
// row's maximum taken out first) with Expf, the sum in float64. Training's
// attention and the Go backend's Softmax both use it.
func SoftmaxRow(row []float32, scale float32) {
	m := float32(math.Inf(-1))
	for _, x := range row {
		m = max(m, x)
	}
	var sum float64
	for j, x := range row {
		e := Expf(scale * (x - m))
		row[j] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for j := range row {
		row[j] *= inv
	}
}

// ScaleShiftSiLU computes, per element, a = x·scale + shift, s = sigmoid(a)
// and y = a·s (y = SiLU(a)), keeping s in sig unless sig is nil. On CPUs
// with AVX2 and FMA, eight lanes at a time (kernel_amd64.s: the same Expf,
// rounding k to nearest instead of half up; TestKernels bounds the
// difference); the tail and other CPUs take the scalar loop.
func ScaleShiftSiLU(x, y, sig []float32, scale, shift float32) {
	y = y[:len(x)]
	keep := sig != nil
	if keep {
		sig = sig[:len(x)]
	}
	i := 0
	if haveSIMD && len(x) >= 8 {
		var sp *float32
		if keep {
			sp = &sig[0]
		}
		if have512 && len(x) >= 16 {
			i = len(x) &^ 15
			scaleShiftSiLU512(&x[0], &y[0], sp, i, scale, shift)
		}
		if n8 := len(x) &^ 7; i < n8 {
			var spi *float32
			if keep {
				spi = &sig[i]
			}
			scaleShiftSiLUAVX2(&x[i], &y[i], spi, n8-i, scale, shift)
			i = n8
		}
	}
	for ; i < len(x); i++ {
		a := x[i]*scale + shift
		s := Sigmoid(a)
		if keep {
			sig[i] = s
		}
		y[i] = a * s
	}
}

// ScaleShift sets y = x·scale + shift (an affine norm's output without an
// activation).
func ScaleShift(x, y []float32, scale, shift float32) {
	y = y[:len(x)]
	i := 0
	if haveSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		scaleShiftAVX2(&x[0], &y[0], i, scale, shift)
	}
	for ; i < len(x); i++ {
		y[i] = x[i]*scale + shift
	}
}

// SumSquares is Σx and Σx², accumulated in float64 (so that a variance
// E[x²] − E[x]² made from them does not cancel for float32 inputs).
func SumSquares(x []float32) (sum, squares float64) {
	i := 0
	if haveSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		var s [8]float64
		sumSqAVX2(&x[0], i, &s)
		sum, squares = s[0]+s[1]+s[2]+s[3], s[4]+s[5]+s[6]+s[7]
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		sum, squares = sum+a, squares+a*a
	}
	return sum, squares
}

// Sigmoid is 1/(1 + e^−a) with Expf.
func Sigmoid(a float32) float32 { return 1 / (1 + Expf(-a)) }

// SiLUBackward is the backward of ScaleShiftSiLU followed by the sums a
// normalisation's backward needs: per element, with a = x·scale + shift and
// s = sigmoid(a) recomputed (cheaper than reading a kept copy),
// da = dy·s·(1 + a·(1−s)) into da; it returns Σda and Σda·x̂ with
// x̂ = x·rr − mr, accumulated in float64.
func SiLUBackward(x, dy, da []float32, scale, shift, rr, mr float32) (sumDa, sumDaX float64) {
	dy, da = dy[:len(x)], da[:len(x)]
	i := 0
	if haveSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		var lanes [8]float64
		siluBackwardAVX2(&x[0], &dy[0], &da[0], i, scale, shift, rr, mr, &lanes)
		sumDa = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
		sumDaX = (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
	}
	for ; i < len(x); i++ {
		e := x[i]
		a := e*scale + shift
		s := Sigmoid(a)
		d := dy[i] * s * (1 + a*(1-s))
		da[i] = d
		sumDa += float64(d)
		sumDaX += float64(d * (e*rr - mr))
	}
	return sumDa, sumDaX
}

// Affine sets dx = dx·v + x·u + w per element.
func Affine(dx, x []float32, v, u, w float32) {
	x = x[:len(dx)]
	i := 0
	if haveSIMD && len(dx) >= 8 {
		i = len(dx) &^ 7
		affineAVX2(&dx[0], &x[0], i, v, u, w)
	}
	for ; i < len(dx); i++ {
		dx[i] = dx[i]*v + x[i]*u + w
	}
}

// AddTo sets dst += src per element.
func AddTo(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	if haveSIMD && len(dst) >= 8 {
		i = len(dst) &^ 7
		addToAVX2(&dst[0], &src[0], i)
	}
	for ; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

// Fill sets every element of dst to v.
func Fill(dst []float32, v float32) {
	i := 0
	if haveSIMD && len(dst) >= 8 {
		i = len(dst) &^ 7
		fillAVX2(&dst[0], i, v)
	}
	for ; i < len(dst); i++ {
		dst[i] = v
	}
}
