package goexec

// The operators on the GEMM (internal/kernel.Sgemm): Conv (im2col), MatMul
// and Gemm, and the model's blocked, stoppable GEMM they share.

import (
	"fmt"

	"github.com/condiff/condiff/internal/kernel"
)

// gemmRows is the rows of a block of an [M K]×[K N] product: whole 4-row
// tiles (so blocks compute exactly what one sgemm call does) of at most
// StopBlock multiply-adds, or one tile.
func gemmRows(N, K int) int { return max(4, StopBlock/max(N*K, 1)) &^ 3 }

// gemmBlocks is sgemm over rows [blk·rows, …) of blocks [lo, hi), looking
// at Stop between blocks.
func (m *Model) gemmBlocks(lo, hi, rows, M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for blk := lo; blk < hi && !m.stopped(); blk++ {
		i0, i1 := blk*rows, min(M, (blk+1)*rows)
		kernel.Sgemm(i1-i0, N, K, a[i0*lda:], lda, b, ldb, c[i0*ldc:], ldc)
	}
}

// gemm is sgemm over the model's goroutines, in blocks of gemmRows rows.
func (m *Model) gemm(M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rows := gemmRows(N, K)
	m.parallel((M+rows-1)/rows, 1, func(lo, hi int) { m.gemmBlocks(lo, hi, rows, M, N, K, a, lda, b, ldb, c, ldc) })
}

// gemmHere is gemm on the calling goroutine: for kernels that already
// split their work over the model's goroutines (Conv, by image).
func (m *Model) gemmHere(M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rows := gemmRows(N, K)
	m.gemmBlocks(0, (M+rows-1)/rows, rows, M, N, K, a, lda, b, ldb, c, ldc)
}

// compileConv is ONNX Conv in 2-D: float32 X [N C H W], W [M C kH kW] and an
// optional bias, any strides and explicit pads up to 64, auto_pad NOTSET;
// group ≠ 1 and dilations ≠ 1 are refused. It runs as im2col and one GEMM
// per image (conv.run).
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

// scratchAtLeast gives each of the first workers scratch buffers at least
// need values long, counted against the model's memory bound.
func (m *Model) scratchAtLeast(workers, need int, what string) error {
	for k := 0; k < workers; k++ {
		if cap(m.scratch[k]) < need {
			m.mem.held -= int64(cap(m.scratch[k])) * 4
			m.scratch[k] = nil
			if err := m.mem.reserve(int64(need) * 4); err != nil {
				return fmt.Errorf("%s scratch: %w", what, err)
			}
			m.scratch[k] = make([]float32, need)
		}
	}
	return nil
}

// fillBias starts each of the co rows of n values of dst at its bias (0
// without one).
func fillBias(dst, bias []float32, co, n int) {
	for o := 0; o < co; o++ {
		b := float32(0)
		if bias != nil {
			b = bias[o]
		}
		kernel.Fill(dst[o*n:(o+1)*n], b)
	}
}

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
	if !direct && c.sh == 1 && c.sw == 1 && paddedConv {
		return c.runPadded(m, x, w, bias, out, oh, ow)
	}
	// The columns of a block of output rows at a time, about 256 KB, so
	// that they stay in the cache while the product reads them.
	rowsPer := max(1, min(oh, (1<<16)/max(K*ow, 1)))
	workers := min(m.threads, n)
	if !direct {
		if err := m.scratchAtLeast(workers, K*rowsPer*ow, "im2col"); err != nil {
			return err
		}
	}
	m.workers(workers, func(k int) {
		for img := k; img < n && !m.stopped(); img += workers {
			src := x.f[img*ci*h*wd : (img+1)*ci*h*wd]
			dst := out.f[img*co*P : (img+1)*co*P]
			fillBias(dst, bias, co, P)
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

// paddedConv chooses runPadded for stride-1 convolutions (false: im2col,
// as the strided ones; BenchmarkConv times both).
var paddedConv = true

// runPadded is a stride-1 convolution without im2col: each image is
// copied once into a zero-padded plane per channel (Hp × Wp, Hp = H + pt +
// pb, Wp = W + pl + pr, plus kW values so that the last taps stay inside),
// and one gathered-row GEMM (kernel.SgemmIndirect) reads tap (i, j) of
// channel c as the padded plane shifted by i·Wp + j. The product is made
// on rows of Wp columns (the kW − 1 extra columns of each are discarded on
// the way out, with the bias added), in blocks of output rows.
func (c conv) runPadded(m *Model, x, w *tensor, bias []float32, out *tensor, oh, ow int) error {
	n, ci, h, wd := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	co, kh, kw := w.shape[0], w.shape[2], w.shape[3]
	wp, hp := wd+c.pl+c.pr, h+c.pt+c.pb
	plane := hp*wp + kw
	K, P := ci*kh*kw, oh*ow
	if cap(m.offs) < K {
		m.offs = make([]int, K)
	}
	offs := m.offs[:K]
	for cc := 0; cc < ci; cc++ {
		for i := 0; i < kh; i++ {
			for j := 0; j < kw; j++ {
				offs[(cc*kh+i)*kw+j] = cc*plane + i*wp + j
			}
		}
	}
	// Output rows per block: the block's product, co × rows·Wp, about
	// 256 KB.
	// The product of a block is made on whole 16-column tiles (the
	// columns past its last row are read from the padding, computed and
	// dropped) so that none of it falls to the kernel's scalar edge: a 7×7
	// plane (Wp = 9, 63 columns) would otherwise put a quarter of its
	// columns there. The input gets 16 values of slack for those reads.
	rowsPer := max(1, min(oh, (1<<16)/max(co*wp, 1)))
	const slack = 16
	padLen := ci*plane + slack
	need := padLen + co*roundUp16(rowsPer*wp)
	workers := min(m.threads, n)
	if err := m.scratchAtLeast(workers, need, "padded input"); err != nil {
		return err
	}
	m.workers(workers, func(k int) {
		pad, prod := m.scratch[k][:padLen], m.scratch[k][padLen:need]
		for img := k; img < n && !m.stopped(); img += workers {
			src := x.f[img*ci*h*wd : (img+1)*ci*h*wd]
			dst := out.f[img*co*P : (img+1)*co*P]
			clear(pad)
			for cc := 0; cc < ci; cc++ {
				for y := 0; y < h; y++ {
					copy(pad[cc*plane+(y+c.pt)*wp+c.pl:], src[(cc*h+y)*wd:(cc*h+y+1)*wd])
				}
			}
			for y0 := 0; y0 < oh && !m.stopped(); y0 += rowsPer {
				y1 := min(oh, y0+rowsPer)
				N := roundUp16((y1 - y0) * wp)
				pr := prod[:co*N]
				fillBias(pr, bias, co, N) // the product starts at the bias
				// Blocks of output channels of at most StopBlock
				// multiply-adds, Stop looked at between them.
				rows := gemmRows(N, K)
				for o0 := 0; o0 < co && !m.stopped(); o0 += rows {
					o1 := min(co, o0+rows)
					kernel.SgemmIndirect(o1-o0, N, K, w.f[o0*K:], K, pad[y0*wp:], offs, pr[o0*N:], N)
				}
				for o := 0; o < co; o++ {
					for y := y0; y < y1; y++ {
						copy(dst[o*P+y*ow:o*P+(y+1)*ow], pr[o*N+(y-y0)*wp:])
					}
				}
			}
		}
	})
	return nil
}

// roundUp16 is n rounded up to a multiple of 16.
func roundUp16(n int) int { return (n + 15) &^ 15 }

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

// compileMatMul is ONNX MatMul of float32 [M K]·[K N] or a batch
// [B M K]·[B K N] (attention); other ranks and broadcasting are refused.
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

// compileGemm is ONNX Gemm: alpha·op(A)·op(B) + beta·C for float32 2-D A
// and B (transA, transB) and a C that broadcasts to [M N] (the linear
// layers).
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
