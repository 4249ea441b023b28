package goexec

import (
	"fmt"
	"math"

	"github.com/condiff/condiff/internal/kernel"
)

func compileConv(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 3); err != nil {
		return nil, err
	}
	if _, err := a.oneOf("auto_pad", "NOTSET", "NOTSET"); err != nil {
		return nil, err
	}
	group, err := a.int("group", 1)
	if err != nil {
		return nil, err
	}
	if group != 1 {
		return nil, fmt.Errorf("attribute group = %d; the Go backend runs group 1", group)
	}
	kernelShape, _, err := a.ints("kernel_shape")
	if err != nil {
		return nil, err
	}
	pads, hasPads, err := a.ints("pads")
	if err != nil {
		return nil, err
	}
	strides, hasStrides, err := a.ints("strides")
	if err != nil {
		return nil, err
	}
	dil, hasDil, err := a.ints("dilations")
	if err != nil {
		return nil, err
	}
	if !hasPads {
		pads = []int{0, 0, 0, 0}
	}
	if !hasStrides {
		strides = []int{1, 1}
	}
	if hasDil && (len(dil) != 2 || dil[0] != 1 || dil[1] != 1) {
		return nil, fmt.Errorf("attribute dilations = %v; the Go backend runs dilation 1", dil)
	}
	if len(pads) != 4 || len(strides) != 2 || strides[0] < 1 || strides[1] < 1 || (kernelShape != nil && len(kernelShape) != 2) {
		return nil, fmt.Errorf("pads %v, strides %v, kernel_shape %v: the Go backend runs 2-D convolutions", pads, strides, kernelShape)
	}
	for _, p := range pads {
		if p < 0 || p > 64 {
			return nil, fmt.Errorf("pads %v out of 0..64", pads)
		}
	}
	c := conv{pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], sh: strides[0], sw: strides[1]}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "X", "W"); err != nil {
			return err
		}
		x, w := in[0], in[1]
		if len(x.shape) != 4 || len(w.shape) != 4 || x.shape[1] != w.shape[1] {
			return fmt.Errorf("X %v and W %v: want [N C H W] and [M C kH kW]", x.shape, w.shape)
		}
		if kernelShape != nil && (kernelShape[0] != w.shape[2] || kernelShape[1] != w.shape[3]) {
			return fmt.Errorf("kernel_shape %v, W %v", kernelShape, w.shape)
		}
		var bias []float32
		if len(in) > 2 && in[2] != nil {
			if in[2].dt != f32 || len(in[2].f) != w.shape[0] {
				return fmt.Errorf("B %v for %d output channels", in[2].shape, w.shape[0])
			}
			bias = in[2].f
		}
		return c.run(m, x, w, bias, out)
	}, a.check()
}

// conv is a 2-D convolution: per image, the input patches as columns
// (im2col, skipped for 1×1 stride 1 unpadded) and one matrix product
// W [M C·kH·kW] × cols [C·kH·kW oH·oW]; images in parallel.
type conv struct{ pt, pl, pb, pr, sh, sw int }

func (c conv) run(m *Model, x, w *tensor, bias []float32, out *tensor) error {
	n, ci, h, wd := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	co, kh, kw := w.shape[0], w.shape[2], w.shape[3]
	oh := (h+c.pt+c.pb-kh)/c.sh + 1
	ow := (wd+c.pl+c.pr-kw)/c.sw + 1
	if oh < 1 || ow < 1 {
		return fmt.Errorf("a %d×%d kernel does not fit a padded %d×%d input", kh, kw, h, wd)
	}
	if err := out.resize(f32, n, co, oh, ow); err != nil {
		return err
	}
	K, P := ci*kh*kw, oh*ow
	direct := kh == 1 && kw == 1 && c.sh == 1 && c.sw == 1 && c.pt+c.pl+c.pb+c.pr == 0
	// The columns of a block of output rows at a time, about 256 KB, so
	// that they stay in the cache while the product reads them.
	rowsPer := max(1, min(oh, (1<<16)/max(K*ow, 1)))
	workers := min(m.threads, n)
	if !direct {
		for k := 0; k < workers; k++ {
			if cap(m.scratch[k]) < K*rowsPer*ow {
				m.mem.held -= int64(cap(m.scratch[k])) * 4
				m.scratch[k] = nil
				if err := m.mem.reserve(int64(K*rowsPer*ow) * 4); err != nil {
					return fmt.Errorf("im2col scratch: %w", err)
				}
				m.scratch[k] = make([]float32, K*rowsPer*ow)
			}
		}
	}
	m.workers(workers, func(k int) {
		for img := k; img < n && !m.stopped(); img += workers {
			src := x.f[img*ci*h*wd : (img+1)*ci*h*wd]
			dst := out.f[img*co*P : (img+1)*co*P]
			for o := 0; o < co; o++ {
				b := float32(0)
				if bias != nil {
					b = bias[o]
				}
				kernel.Fill(dst[o*P:(o+1)*P], b)
			}
			if direct {
				m.gemmHere(co, P, K, w.f, K, src, P, dst, P)
				continue
			}
			for y0 := 0; y0 < oh && !m.stopped(); y0 += rowsPer {
				y1 := min(oh, y0+rowsPer)
				cols := m.scratch[k][:K*(y1-y0)*ow]
				c.im2col(src, ci, h, wd, kh, kw, y0, y1, ow, cols)
				m.gemmHere(co, (y1-y0)*ow, K, w.f, K, cols, (y1-y0)*ow, dst[y0*ow:], P)
			}
		}
	})
	return nil
}

// im2col writes the patches of output rows [y0, y1) of one image [C H W]
// as rows (c, i, j) of columns (y − y0, x):
// cols[(c·kH + i)·kW + j][(y − y0)·oW + x] = x[c][y·sh + i − pt][x·sw + j − pl]
// (0 outside).
func (c conv) im2col(src []float32, ci, h, w, kh, kw, y0, y1, ow int, cols []float32) {
	P := (y1 - y0) * ow
	if c.sh == 1 && c.sw == 1 && ow == w && c.pl < w && kw-1-c.pl < w {
		c.im2colSame(src, ci, h, w, kh, kw, y0, y1, cols)
		return
	}
	for ch := 0; ch < ci; ch++ {
		plane := src[ch*h*w : (ch+1)*h*w]
		for i := 0; i < kh; i++ {
			for j := 0; j < kw; j++ {
				row := cols[((ch*kh+i)*kw+j)*P : ((ch*kh+i)*kw+j+1)*P]
				for y := y0; y < y1; y++ {
					sy := y*c.sh + i - c.pt
					r := row[(y-y0)*ow : (y-y0+1)*ow]
					if sy < 0 || sy >= h {
						clear(r)
						continue
					}
					line := plane[sy*w : (sy+1)*w]
					if c.sw == 1 {
						// x − pl + j in range for x in [x0, x1)
						x0, x1 := max(0, c.pl-j), min(ow, w+c.pl-j)
						clear(r[:max(x0, 0)])
						if x1 > x0 {
							copy(r[x0:x1], line[x0-c.pl+j:x1-c.pl+j])
						}
						if x1 < ow {
							clear(r[max(x1, 0):])
						}
						continue
					}
					for x := 0; x < ow; x++ {
						sx := x*c.sw + j - c.pl
						if sx < 0 || sx >= w {
							r[x] = 0
						} else {
							r[x] = line[sx]
						}
					}
				}
			}
		}
	}
}

// im2colSame is im2col for a stride-1 convolution whose output is as wide
// as its input (padding pl + pr = kW − 1): along the rows of a block, tap
// (i, j)'s row of columns is the input plane shifted by (i − pt)·W + j − pl,
// so it is one contiguous copy, then zeros where the shift wrapped around a
// row's end and where the rows fall outside the image.
func (c conv) im2colSame(src []float32, ci, h, w, kh, kw, y0, y1 int, cols []float32) {
	P := (y1 - y0) * w
	for ch := 0; ch < ci; ch++ {
		plane := src[ch*h*w : (ch+1)*h*w]
		for i := 0; i < kh; i++ {
			ya, yb := max(y0, c.pt-i), min(y1, h+c.pt-i) // rows whose source row is in the image
			for j := 0; j < kw; j++ {
				row := cols[((ch*kh+i)*kw+j)*P : ((ch*kh+i)*kw+j+1)*P]
				if yb <= ya {
					clear(row)
					continue
				}
				dx := j - c.pl
				d0, n := (ya-y0)*w, (yb-ya)*w
				s0 := (ya+i-c.pt)*w + dx
				lo, hi := max(0, -s0), min(n, len(plane)-s0)
				clear(row[:d0+lo])
				copy(row[d0+lo:d0+hi], plane[s0+lo:s0+hi])
				clear(row[d0+hi:])
				// The columns the shift carried across a row's end.
				for y := ya; y < yb; y++ {
					r := row[(y-y0)*w : (y-y0+1)*w]
					if dx < 0 {
						clear(r[:-dx])
					} else if dx > 0 {
						clear(r[w-dx:])
					}
				}
			}
		}
	}
}

func compileMatMul(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 2); err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "A", "B"); err != nil {
			return err
		}
		x, y := in[0], in[1]
		r := len(x.shape)
		switch {
		case r == 2 && len(y.shape) == 2 && x.shape[1] == y.shape[0]:
			M, K, N := x.shape[0], x.shape[1], y.shape[1]
			if err := out.resize(f32, M, N); err != nil {
				return err
			}
			clear(out.f)
			m.gemm(M, N, K, x.f, K, y.f, N, out.f, N)
		case r == 3 && len(y.shape) == 3 && x.shape[0] == y.shape[0] && x.shape[2] == y.shape[1]:
			// A batch of products [B M K]·[B K N] (attention).
			B, M, K, N := x.shape[0], x.shape[1], x.shape[2], y.shape[2]
			if err := out.resize(f32, B, M, N); err != nil {
				return err
			}
			clear(out.f)
			for b := 0; b < B && !m.stopped(); b++ {
				m.gemm(M, N, K, x.f[b*M*K:], K, y.f[b*K*N:], N, out.f[b*M*N:], N)
			}
		default:
			return fmt.Errorf("A %v and B %v: the Go backend multiplies [M K] by [K N], or [B M K] by [B K N]", x.shape, y.shape)
		}
		return nil
	}, a.check()
}

// compileTranspose permutes the axes of a float32 tensor of rank ≤ 4.
func compileTranspose(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	perm, ok, err := a.ints("perm")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("attribute perm: missing; the Go backend needs it")
	}
	if len(perm) > 4 {
		return nil, fmt.Errorf("attribute perm %v: the Go backend transposes up to 4 axes", perm)
	}
	seen := make([]bool, len(perm))
	for _, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("attribute perm %v is not a permutation", perm)
		}
		seen[p] = true
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "data"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) != len(perm) {
			return fmt.Errorf("data %v has rank %d, perm %v has %d", x.shape, len(x.shape), perm, len(perm))
		}
		// Pad to rank 4 at the front: shape d, strides of the input.
		r := len(perm)
		d, st := [4]int{1, 1, 1, 1}, [4]int{}
		stride := 1
		in4 := [4]int{}
		for i := r - 1; i >= 0; i-- {
			in4[i] = stride
			stride *= x.shape[i]
		}
		shape := make([]int, r)
		for i, p := range perm {
			shape[i] = x.shape[p]
			d[4-r+i], st[4-r+i] = x.shape[p], in4[p]
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		o := 0
		for i0 := 0; i0 < d[0]; i0++ {
			for i1 := 0; i1 < d[1]; i1++ {
				for i2 := 0; i2 < d[2]; i2++ {
					base := i0*st[0] + i1*st[1] + i2*st[2]
					for i3 := 0; i3 < d[3]; i3++ {
						out.f[o] = x.f[base+i3*st[3]]
						o++
					}
				}
			}
		}
		return nil
	}, a.check()
}

// compileSoftmax is softmax over the last axis (opset 13's default; the
// only axis the Go backend supports).
func compileSoftmax(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	axis, err := a.int("axis", -1)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "input"); err != nil {
			return err
		}
		x := in[0]
		r := len(x.shape)
		if r == 0 || (axis != -1 && axis != r-1) {
			return fmt.Errorf("axis %d of a rank-%d input: the Go backend takes softmax over the last axis", axis, r)
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		n := x.shape[r-1]
		if n == 0 {
			return nil
		}
		copy(out.f, x.f)
		for o := 0; o < len(out.f); o += n {
			kernel.SoftmaxRow(out.f[o:o+n], 1)
		}
		return nil
	}, a.check()
}

func compileGemm(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 3); err != nil {
		return nil, err
	}
	alpha, err := a.float("alpha", 1)
	if err != nil {
		return nil, err
	}
	beta, err := a.float("beta", 1)
	if err != nil {
		return nil, err
	}
	ta, err := a.int("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := a.int("transB", 0)
	if err != nil {
		return nil, err
	}
	var at, bt []float32
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "A", "B"); err != nil {
			return err
		}
		x, y := in[0], in[1]
		if len(x.shape) != 2 || len(y.shape) != 2 {
			return fmt.Errorf("A %v and B %v are not matrices", x.shape, y.shape)
		}
		M, K := x.shape[0], x.shape[1]
		xa := x.f
		if ta != 0 {
			M, K = K, M
			at = transpose(x.f, x.shape[0], x.shape[1], at)
			xa = at
		}
		K2, N := y.shape[0], y.shape[1]
		yb := y.f
		if tb != 0 {
			K2, N = N, K2
			bt = transpose(y.f, y.shape[0], y.shape[1], bt)
			yb = bt
		}
		if K != K2 {
			return fmt.Errorf("A %v and B %v (transA %d, transB %d) do not multiply", x.shape, y.shape, ta, tb)
		}
		if err := out.resize(f32, M, N); err != nil {
			return err
		}
		clear(out.f)
		if len(in) > 2 && in[2] != nil && beta != 0 {
			cv := in[2]
			if cv.dt != f32 {
				return fmt.Errorf("C is %s", cv.dt)
			}
			sh, err := broadcastShape([]int{M, N}, cv.shape)
			if err != nil || sh[0] != M || sh[1] != N {
				return fmt.Errorf("C %v does not broadcast to [%d %d]", cv.shape, M, N)
			}
			st := bstrides(cv.shape, 2, nil)
			for i := 0; i < M; i++ {
				for j := 0; j < N; j++ {
					out.f[i*N+j] = beta * cv.f[i*st[0]+j*st[1]]
				}
			}
		}
		if alpha != 1 {
			xa = scaled(xa, alpha)
		}
		m.gemm(M, N, K, xa, K, yb, N, out.f, N)
		return nil
	}, a.check()
}

func scaled(x []float32, s float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = v * s
	}
	return out
}

func transpose(x []float32, r, c int, buf []float32) []float32 {
	if cap(buf) < r*c {
		buf = make([]float32, r*c)
	}
	buf = buf[:r*c]
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			buf[j*r+i] = x[i*c+j]
		}
	}
	return buf
}

func compileInstanceNorm(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 3, 3); err != nil {
		return nil, err
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "input", "scale", "B"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 3 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		n, ch := x.shape[0], x.shape[1]
		if len(in[1].f) != ch || len(in[2].f) != ch {
			return fmt.Errorf("scale %v and B %v for %d channels", in[1].shape, in[2].shape, ch)
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		planes(m, x, out, n*ch, func(k int, src []float32) (float32, float32) {
			c := k % ch
			mean, vr := meanVar(src)
			r := 1 / math.Sqrt(vr+float64(eps))
			g, b := float64(in[1].f[c])*r, float64(in[2].f[c])
			return float32(g), float32(b - mean*g)
		})
		return nil
	}, a.check()
}

func compileBatchNorm(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 5, 5); err != nil {
		return nil, err
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	if _, err := a.float("momentum", 0.9); err != nil {
		return nil, err
	}
	if tm, err := a.int("training_mode", 0); err != nil || tm != 0 {
		return nil, fmt.Errorf("training_mode %d: the Go backend runs inference (%v)", tm, err)
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "X", "scale", "B", "mean", "var"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 2 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		n, ch := x.shape[0], x.shape[1]
		for k := 1; k < 5; k++ {
			if len(in[k].f) != ch {
				return fmt.Errorf("input %d has %d values for %d channels", k, len(in[k].f), ch)
			}
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		planes(m, x, out, n*ch, func(k int, _ []float32) (float32, float32) {
			c := k % ch
			r := float64(in[1].f[c]) / math.Sqrt(float64(in[4].f[c])+float64(eps))
			return float32(r), float32(float64(in[2].f[c]) - float64(in[3].f[c])*r)
		})
		return nil
	}, a.check()
}

func compileResize(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 4); err != nil {
		return nil, err
	}
	if _, err := a.oneOf("mode", "nearest", "nearest"); err != nil {
		return nil, err
	}
	ctm, err := a.oneOf("coordinate_transformation_mode", "half_pixel", "asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners")
	if err != nil {
		return nil, err
	}
	nm, err := a.oneOf("nearest_mode", "round_prefer_floor", "floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
	if err != nil {
		return nil, err
	}
	if v, err := a.float("cubic_coeff_a", -0.75); err != nil || v != -0.75 {
		return nil, fmt.Errorf("cubic_coeff_a %g (%v)", v, err)
	}
	if v, err := a.int("exclude_outside", 0); err != nil || v != 0 {
		return nil, fmt.Errorf("exclude_outside %d (%v)", v, err)
	}
	if v, err := a.int("antialias", 0); err != nil || v != 0 {
		return nil, fmt.Errorf("antialias %d (%v)", v, err)
	}
	if _, err := a.float("extrapolation_value", 0); err != nil {
		return nil, err
	}
	if _, ok, _ := a.ints("axes"); ok {
		return nil, fmt.Errorf("attribute axes is not supported by the Go backend")
	}
	if v, err := a.oneOf("keep_aspect_ratio_policy", "stretch", "stretch"); err != nil {
		return nil, fmt.Errorf("keep_aspect_ratio_policy %q: %v", v, err)
	}
	var maps [][]int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, f32, "X"); err != nil {
			return err
		}
		x := in[0]
		r := len(x.shape)
		shape := make([]int, r)
		scales := make([]float64, r)
		switch {
		case len(in) > 3 && in[3] != nil && len(in[3].i) > 0:
			if in[3].dt != i64 || len(in[3].i) != r {
				return fmt.Errorf("sizes %v for rank %d", in[3].shape, r)
			}
			for d := range shape {
				shape[d] = int(in[3].i[d])
				if shape[d] < 1 || shape[d] > MaxElements {
					return fmt.Errorf("sizes %v", in[3].i)
				}
				scales[d] = float64(shape[d]) / float64(x.shape[d])
			}
		case len(in) > 2 && in[2] != nil && len(in[2].f) > 0:
			if in[2].dt != f32 || len(in[2].f) != r {
				return fmt.Errorf("scales %v for rank %d", in[2].shape, r)
			}
			for d := range shape {
				scales[d] = float64(in[2].f[d])
				if !(scales[d] > 0) || scales[d]*float64(x.shape[d]) > MaxElements {
					return fmt.Errorf("scales %v", in[2].f)
				}
				shape[d] = int(math.Floor(float64(x.shape[d]) * scales[d]))
			}
		default:
			return fmt.Errorf("neither scales nor sizes given")
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		if out.size() == 0 {
			return nil // nothing to read: no index maps either
		}
		if x.size() == 0 {
			return fmt.Errorf("X %v is empty and the output %v is not: nothing to take its values from", x.shape, shape)
		}
		// Per axis, the source index of each output index.
		for len(maps) < r {
			maps = append(maps, nil)
		}
		for d := 0; d < r; d++ {
			mp := grow(maps[d], shape[d])
			for i := range mp {
				mp[i] = nearest(i, x.shape[d], shape[d], scales[d], ctm, nm)
			}
			maps[d] = mp
		}
		if r == 4 { // [N C H W]: whole output rows from one input row
			xs := x.shape
			for n := 0; n < shape[0]; n++ {
				for ch := 0; ch < shape[1]; ch++ {
					plane := x.f[((maps[0][n]*xs[1])+maps[1][ch])*xs[2]*xs[3]:]
					for y := 0; y < shape[2]; y++ {
						line := plane[maps[2][y]*xs[3]:]
						o := out.f[((n*shape[1]+ch)*shape[2]+y)*shape[3]:][:shape[3]]
						for xx, sx := range maps[3] {
							o[xx] = line[sx]
						}
					}
				}
			}
			return nil
		}
		idx := make([]int, r)
		src := make([]int, r)
		stride := make([]int, r)
		s := 1
		for d := r - 1; d >= 0; d-- {
			stride[d] = s
			s *= x.shape[d]
		}
		for o := range out.f {
			rem := o
			for d := r - 1; d >= 0; d-- {
				idx[d] = rem % shape[d]
				rem /= shape[d]
				src[d] = maps[d][idx[d]]
			}
			off := 0
			for d := range src {
				off += src[d] * stride[d]
			}
			out.f[o] = x.f[off]
		}
		return nil
	}, a.check()
}

// nearest is the input index Resize (mode nearest) reads for output index
// i along an axis of in → out elements at this scale.
func nearest(i, in, out int, scale float64, ctm, nm string) int {
	var x float64
	switch ctm {
	case "asymmetric":
		x = float64(i) / scale
	case "half_pixel":
		x = (float64(i)+0.5)/scale - 0.5
	case "pytorch_half_pixel":
		if out > 1 {
			x = (float64(i)+0.5)/scale - 0.5
		}
	case "align_corners":
		if out > 1 {
			x = float64(i) * float64(in-1) / float64(out-1)
		}
	}
	var k float64
	switch nm {
	case "floor":
		k = math.Floor(x)
	case "ceil":
		k = math.Ceil(x)
	case "round_prefer_floor":
		k = math.Ceil(x - 0.5)
	case "round_prefer_ceil":
		k = math.Floor(x + 0.5)
	}
	return min(max(int(k), 0), in-1)
}

// meanVar is the mean and the (biased) variance of x, in one pass with
// four float64 accumulators of Σx and Σx² (float32 inputs leave float64's
// E[x²] − E[x]² far from cancelling).
func meanVar(x []float32) (mean, variance float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0, s1, s2, s3 = s0+a, s1+b, s2+c, s3+d
		q0, q1, q2, q3 = q0+a*a, q1+b*b, q2+c*c, q3+d*d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0, q0 = s0+a, q0+a*a
	}
	n := float64(len(x))
	mean = (s0 + s1 + s2 + s3) / n
	return mean, max(0, (q0+q1+q2+q3)/n-mean*mean)
}

// planes sets each of the p planes of x (the values of one image and
// channel) to x·scale + shift with the plane's affine, in parallel.
func planes(m *Model, x, out *tensor, p int, affine func(k int, plane []float32) (scale, shift float32)) {
	l := x.size() / max(p, 1)
	m.parallel(p, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			src, dst := x.f[k*l:(k+1)*l], out.f[k*l:(k+1)*l]
			sc, sh := affine(k, src)
			for i, v := range src {
				dst[i] = v*sc + sh
			}
		}
	})
}
