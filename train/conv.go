package train

import (
	"fmt"
	"hash"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/internal/kernel"
)

// convGeom is the geometry of a 2-D convolution: x [N Cin H W], w [Cout Cin
// K K], y [N Cout Ho Wo], equal stride and padding on both axes.
type convGeom struct {
	n, cin, h, w, cout, k, stride, pad, ho, wo int
}

func newConvGeom(x, w tensor.Shape, stride, pad int) convGeom {
	g := convGeom{n: x[0], cin: x[1], h: x[2], w: x[3], cout: w[0], k: w[2], stride: stride, pad: pad}
	g.ho = (g.h+2*pad-g.k)/stride + 1
	g.wo = (g.w+2*pad-g.k)/stride + 1
	return g
}

// rows of a sample's im2col matrix [Cin·K·K, Ho·Wo].
func (g convGeom) rows() int { return g.cin * g.k * g.k }

// How a convolution becomes GEMMs, per sample.
const (
	// byIm2col (stride > 1): one GEMM with the im2col matrix [Cin·K·K, Ho·Wo].
	byIm2col = iota
	// byRows (stride 1, all but by1x1): only the K column shifts are copied, into
	// [Cin·K, Hp·Wo] with Hp = H + 2·pad padded rows; the K row shifts are
	// offsets of ky·Wo into it, so K GEMMs with Cin·K rows each replace one
	// with Cin·K·K, and the copy (and its gradient's scatter) is K times
	// smaller.
	byRows
	// by1x1 (1×1, stride 1, no padding): x itself is the GEMM's matrix.
	by1x1
)

func (g convGeom) mode() int {
	switch {
	case g.k == 1 && g.stride == 1 && g.pad == 0:
		return by1x1
	case g.stride == 1:
		return byRows
	}
	return byIm2col
}

// hp is the padded height of byRows's matrix; its rows are Hp·Wo long.
func (g convGeom) hp() int { return g.h + 2*g.pad }

// colSize is the per-worker workspace of the mode: the im2col matrix, the
// shifted rows, or nothing.
func (g convGeom) colSize() int {
	switch g.mode() {
	case byRows:
		return g.cin * g.k * g.hp() * g.wo
	case by1x1:
		return 0
	}
	return g.rows() * g.ho * g.wo
}

// workers is how many goroutines split a batch: one per CPU, each calling
// a single-threaded BLAS (one threading model: goroutines, not BLAS threads).
func workers(n int) int { return max(1, min(n, runtime.NumCPU())) }

// parallel runs f(worker, i) for i in 0..n-1 on workers(n) goroutines;
// worker indexes a per-goroutine workspace.
func parallel(n int, f func(worker, i int)) {
	nw := workers(n)
	var wg sync.WaitGroup
	for w := 0; w < nw; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += nw {
				f(w, i)
			}
		}(w)
	}
	wg.Wait()
}

// inside is, for stride 1 and kernel column kx, the output columns
// [lo, hi) whose input column ox − pad + kx lies inside the image.
func (g convGeom) inside(kx int) (lo, hi int) {
	return max(0, g.pad-kx), min(g.wo, g.w+g.pad-kx)
}

// im2col fills col [rows, Ho·Wo] from one sample x [Cin H W]: sized to stay
// in cache, written once, read by the GEMM right after (byIm2col: strided
// convolutions; stride 1 takes byRows).
func (g convGeom) im2col(x, col []float32) {
	hw := g.ho * g.wo
	for c := 0; c < g.cin; c++ {
		plane := x[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := 0; ky < g.k; ky++ {
			for kx := 0; kx < g.k; kx++ {
				row := col[((c*g.k+ky)*g.k+kx)*hw:]
				for oy := 0; oy < g.ho; oy++ {
					iy := oy*g.stride - g.pad + ky
					out := row[oy*g.wo : (oy+1)*g.wo]
					if iy < 0 || iy >= g.h {
						clear(out)
						continue
					}
					src := plane[iy*g.w : (iy+1)*g.w]
					for ox := range out {
						ix := ox*g.stride - g.pad + kx
						if ix < 0 || ix >= g.w {
							out[ox] = 0
						} else {
							out[ox] = src[ix]
						}
					}
				}
			}
		}
	}
}

// col2im accumulates col [rows, Ho·Wo] into one sample's dx [Cin H W]
// (zeroed by the caller).
func (g convGeom) col2im(col, dx []float32) {
	hw := g.ho * g.wo
	for c := 0; c < g.cin; c++ {
		plane := dx[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := 0; ky < g.k; ky++ {
			for kx := 0; kx < g.k; kx++ {
				row := col[((c*g.k+ky)*g.k+kx)*hw:]
				for oy := 0; oy < g.ho; oy++ {
					iy := oy*g.stride - g.pad + ky
					if iy < 0 || iy >= g.h {
						continue
					}
					dst := plane[iy*g.w : (iy+1)*g.w]
					for ox, v := range row[oy*g.wo : (oy+1)*g.wo] {
						if ix := ox*g.stride - g.pad + kx; ix >= 0 && ix < g.w {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}

// im2rows fills byRows's matrix [Cin·K, Hp·Wo] from one sample x [Cin H W]:
// row (c, kx), padded row iy', column ox holds x[c, iy'−pad, ox−pad+kx]
// (zero outside the image).
func (g convGeom) im2rows(x, col []float32) {
	hp := g.hp()
	for c := 0; c < g.cin; c++ {
		plane := x[c*g.h*g.w : (c+1)*g.h*g.w]
		for kx := 0; kx < g.k; kx++ {
			row := col[(c*g.k+kx)*hp*g.wo : (c*g.k+kx+1)*hp*g.wo]
			lo, hi := g.inside(kx)
			for iy := -g.pad; iy < g.h+g.pad; iy++ {
				out := row[(iy+g.pad)*g.wo : (iy+g.pad+1)*g.wo]
				if iy < 0 || iy >= g.h || hi <= lo {
					clear(out)
					continue
				}
				clear(out[:lo])
				copy(out[lo:hi], plane[iy*g.w+lo-g.pad+kx:iy*g.w+hi-g.pad+kx])
				clear(out[hi:])
			}
		}
	}
}

// rows2im sets one sample's dx [Cin H W] from the gradient of byRows's
// matrix: each element of x gathers its K column shifts.
func (g convGeom) rows2im(col, dx []float32) {
	hp := g.hp()
	for c := 0; c < g.cin; c++ {
		for iy := 0; iy < g.h; iy++ {
			dst := dx[(c*g.h+iy)*g.w : (c*g.h+iy+1)*g.w]
			clear(dst)
			for kx := 0; kx < g.k; kx++ {
				lo, hi := g.inside(kx)
				if hi <= lo {
					continue
				}
				src := col[((c*g.k+kx)*hp+iy+g.pad)*g.wo:]
				kernel.AddTo(dst[lo-g.pad+kx:hi-g.pad+kx], src[lo:hi])
			}
		}
	}
}

// sgemm is C = op(A)·op(B) + beta·C (alpha is 1), row-major, on the BLAS
// gorgonia uses (OpenBLAS through netlib, or gonum's pure Go).
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	G.WhichBLAS().Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// convState is shared by a convolution's forward and gradient ops: the
// per-worker workspaces (reused every step, never reallocated) and the
// backward pass's results, computed once per step for both dx and dW.
type convState struct {
	geom convGeom
	col  [][]float32 // per worker: the mode's matrix (colSize)
	dcol [][]float32 // per worker: its gradient
	dw   [][]float32 // per worker: partial dW, [Cout, rows] (byRows: [K Cout Cin·K])
	wk   []float32   // byRows: w as [K Cout Cin·K], one matrix per ky
	// fwd counts forward runs; bwd is the forward run the cached dx, dW
	// belong to.
	fwd, bwd int
	dx       tensor.Tensor
	dW       tensor.Tensor
	// Output buffers, reused every step (see reuse).
	y, dxBuf, dWBuf, db []float32
}

func (st *convState) workspaces() {
	g := st.geom
	if st.dw != nil {
		return
	}
	for w := 0; w < workers(g.n); w++ {
		st.col = append(st.col, make([]float32, g.colSize()))
		st.dcol = append(st.dcol, make([]float32, g.colSize()))
		st.dw = append(st.dw, make([]float32, g.cout*g.rows()))
	}
}

// kyMajor calls f(i, j) for each weight, i its index in w [Cout Cin K K]
// and j in byRows's layout [K Cout Cin·K] (one GEMM matrix per ky).
func (g convGeom) kyMajor(f func(i, j int)) {
	for co := 0; co < g.cout; co++ {
		for c := 0; c < g.cin; c++ {
			for ky := 0; ky < g.k; ky++ {
				for kx := 0; kx < g.k; kx++ {
					f(((co*g.cin+c)*g.k+ky)*g.k+kx, ((ky*g.cout+co)*g.cin+c)*g.k+kx)
				}
			}
		}
	}
}

// splitKy sets st.wk, w in byRows's layout.
func (st *convState) splitKy(w []float32) {
	wk := overwrite(&st.wk, len(w))
	st.geom.kyMajor(func(i, j int) { wk[j] = w[i] })
}

// forward computes y_n = b + W·x_n for one sample into yn [Cout, Ho·Wo]
// (NCHW is already GEMM layout), with worker wk's workspace.
func (st *convState) forward(wk int, xn, w, b, yn []float32) {
	g := st.geom
	hw := g.ho * g.wo
	for c := 0; c < g.cout; c++ {
		kernel.Fill(yn[c*hw:(c+1)*hw], b[c])
	}
	col := st.col[wk]
	switch g.mode() {
	case by1x1:
		sgemm(false, false, g.cout, hw, g.cin, w, g.cin, xn, hw, 1, yn, hw)
	case byRows:
		g.im2rows(xn, col)
		kr, ld := g.cin*g.k, g.hp()*g.wo
		for ky := 0; ky < g.k; ky++ {
			sgemm(false, false, g.cout, hw, kr, st.wk[ky*g.cout*kr:], kr, col[ky*g.wo:], ld, 1, yn, hw)
		}
	default:
		g.im2col(xn, col)
		sgemm(false, false, g.cout, hw, g.rows(), w, g.rows(), col, hw, 1, yn, hw)
	}
}

// backwardSample adds sample n's dY_n·X_nᵀ to worker wk's partial dW and
// sets its dx_n = Wᵀ·dY_n (scattered back through the mode's matrix).
func (st *convState) backwardSample(wk int, xn, w, dyn, dxn []float32) {
	g := st.geom
	hw := g.ho * g.wo
	col, dcol, dw := st.col[wk], st.dcol[wk], st.dw[wk]
	switch g.mode() {
	case by1x1:
		sgemm(false, true, g.cout, g.cin, hw, dyn, hw, xn, hw, 1, dw, g.cin)
		sgemm(true, false, g.cin, hw, g.cout, w, g.cin, dyn, hw, 0, dxn, hw)
	case byRows:
		g.im2rows(xn, col)
		kr, ld := g.cin*g.k, g.hp()*g.wo
		for ky := 0; ky < g.k; ky++ {
			sgemm(false, true, g.cout, kr, hw, dyn, hw, col[ky*g.wo:], ld, 1, dw[ky*g.cout*kr:], kr)
		}
		// The ky = 0 GEMM overwrites padded rows [0, Ho) of each matrix row;
		// the others add to rows [ky, ky+Ho), so rows [Ho, Hp) start at zero.
		for r := 0; r < kr; r++ {
			clear(dcol[r*ld+hw : (r+1)*ld])
		}
		for ky := 0; ky < g.k; ky++ {
			sgemm(true, false, kr, hw, g.cout, st.wk[ky*g.cout*kr:], kr, dyn, hw, float32(min(ky, 1)), dcol[ky*g.wo:], ld)
		}
		g.rows2im(dcol, dxn)
	default:
		g.im2col(xn, col)
		sgemm(false, true, g.cout, g.rows(), hw, dyn, hw, col, hw, 1, dw, g.rows())
		sgemm(true, false, g.rows(), hw, g.cout, w, g.rows(), dyn, hw, 0, dcol, hw)
		clear(dxn) // col2im accumulates
		g.col2im(dcol, dxn)
	}
}

// backward computes dx and dW = Σ_n dY_n·X_nᵀ in one pass over the samples
// (the im2col or shifted-rows matrix recomputed per sample: cheaper than
// keeping the whole batch's), once per forward run.
func (st *convState) backward(x, w, dy []float32) {
	if st.bwd == st.fwd && st.dx != nil {
		return
	}
	g := st.geom
	st.workspaces()
	if g.mode() == byRows {
		st.splitKy(w)
	}
	xs, ys := g.cin*g.h*g.w, g.cout*g.ho*g.wo
	dx := overwrite(&st.dxBuf, g.n*xs) // each sample's part is written by its worker
	for _, p := range st.dw {
		clear(p)
	}
	parallel(g.n, func(wk, n int) {
		st.backwardSample(wk, x[n*xs:(n+1)*xs], w, dy[n*ys:(n+1)*ys], dx[n*xs:(n+1)*xs])
	})
	dW := reuse(&st.dWBuf, g.cout*g.rows())
	for _, p := range st.dw {
		if g.mode() == byRows {
			g.kyMajor(func(i, j int) { dW[i] += p[j] })
			continue
		}
		for i, v := range p {
			dW[i] += v
		}
	}
	st.dx = tensor.New(tensor.WithShape(g.n, g.cin, g.h, g.w), tensor.WithBacking(dx))
	st.dW = tensor.New(tensor.WithShape(g.cout, g.cin, g.k, g.k), tensor.WithBacking(dW))
	st.bwd = st.fwd
}

// convOp is y = conv(x, w) + b in one op: GEMMs per sample (see
// convGeom.mode) straight into NCHW, no transposes (gorgonia's Conv2d
// transposes its output and its broadcast bias add copies the bias to full
// size).
type convOp struct {
	pureOp
	stride, pad int
	st          *convState
	kind        int // 0 forward (x, w, b); 1 dx (x, w, dy); 2 dw (x, w, dy); 3 db (dy)
}

func (op *convOp) Arity() int { return []int{3, 3, 3, 1}[op.kind] }
func (op *convOp) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	t1 := G.TensorType{Dims: 1, Of: tensor.Float32}
	switch op.kind {
	case 0:
		return hm.NewFnType(t4, t4, t1, t4)
	case 1:
		return hm.NewFnType(t4, t4, t4, t4)
	case 2:
		return hm.NewFnType(t4, t4, t4, t4)
	}
	return hm.NewFnType(t4, t1)
}

// InferShape: forward [N Cout Ho Wo]; dx like x; dw like w (from the state);
// db [Cout].
func (op *convOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	switch op.kind {
	case 0:
		g := newConvGeom(in[0].(tensor.Shape), in[1].(tensor.Shape), op.stride, op.pad)
		return tensor.Shape{g.n, g.cout, g.ho, g.wo}, nil
	case 1:
		return in[0].(tensor.Shape).Clone(), nil
	case 2:
		g := op.st.geom
		return tensor.Shape{g.cout, g.cin, g.k, g.k}, nil
	}
	return tensor.Shape{in[0].(tensor.Shape)[1]}, nil
}
func (op *convOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:conv%d(%d,%d,%p)", op.kind, op.stride, op.pad, op.st)
}
func (op *convOp) Hashcode() uint32 { return hashOf(op) }
func (op *convOp) String() string   { return fmt.Sprintf("Conv%d(s%d,p%d)", op.kind, op.stride, op.pad) }

func f32(v G.Value) ([]float32, tensor.Shape) {
	t := v.(tensor.Tensor)
	return t.Data().([]float32), t.Shape()
}

func (op *convOp) Do(vals ...G.Value) (G.Value, error) {
	st := op.st
	g := st.geom
	hw := g.ho * g.wo
	switch op.kind {
	case 0: // y_n = b + W·x_n per sample (see convGeom.mode), straight into NCHW
		x, _ := f32(vals[0])
		w, _ := f32(vals[1])
		b, _ := f32(vals[2])
		st.workspaces()
		if g.mode() == byRows {
			st.splitKy(w)
		}
		st.fwd++
		xs, ys := g.cin*g.h*g.w, g.cout*hw
		y := overwrite(&st.y, g.n*ys)
		parallel(g.n, func(wk, n int) { st.forward(wk, x[n*xs:(n+1)*xs], w, b, y[n*ys:(n+1)*ys]) })
		return tensor.New(tensor.WithShape(g.n, g.cout, g.ho, g.wo), tensor.WithBacking(y)), nil
	case 1: // dx (x, w, dy)
		x, _ := f32(vals[0])
		w, _ := f32(vals[1])
		dy, _ := f32(vals[2])
		st.backward(x, w, dy)
		return st.dx, nil
	case 2: // dW (x, w, dy)
		x, _ := f32(vals[0])
		w, _ := f32(vals[1])
		dy, _ := f32(vals[2])
		st.backward(x, w, dy)
		return st.dW, nil
	}
	dy, _ := f32(vals[0]) // db = Σ dY over samples and pixels
	db := reuse(&st.db, g.cout)
	for n := 0; n < g.n; n++ {
		for c := 0; c < g.cout; c++ {
			s := float32(0)
			for _, v := range dy[(n*g.cout+c)*hw : (n*g.cout+c+1)*hw] {
				s += v
			}
			db[c] += s
		}
	}
	return tensor.New(tensor.WithShape(g.cout), tensor.WithBacking(db)), nil
}

func (op *convOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	dx, err := G.ApplyOp(&convOp{stride: op.stride, pad: op.pad, st: op.st, kind: 1}, x, w, grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&convOp{stride: op.stride, pad: op.pad, st: op.st, kind: 2}, x, w, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&convOp{stride: op.stride, pad: op.pad, st: op.st, kind: 3}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// conv applies a convolution with bias as one op.
func conv2d(x, w, b *G.Node, stride, pad int) (*G.Node, error) {
	st := &convState{geom: newConvGeom(x.Shape(), w.Shape(), stride, pad)}
	return G.ApplyOp(&convOp{stride: stride, pad: pad, st: st}, x, w, b)
}
