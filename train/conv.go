package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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

// rows and cols of the im2col matrix: [Cin·K·K, N·Ho·Wo], sample n's output
// pixels in columns n·Ho·Wo …, so one GEMM covers the batch.
func (g convGeom) rows() int { return g.cin * g.k * g.k }
func (g convGeom) cols() int { return g.n * g.ho * g.wo }

// parallel runs f(i) for i in 0..n-1 on up to NumCPU goroutines.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.NumCPU())
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f(i)
			}
		}(w)
	}
	wg.Wait()
}

// im2col fills col [rows, cols] from x.
func (g convGeom) im2col(x, col []float32) {
	hw, cols := g.ho*g.wo, g.cols()
	parallel(g.n, func(n int) {
		for c := 0; c < g.cin; c++ {
			plane := x[(n*g.cin+c)*g.h*g.w : (n*g.cin+c+1)*g.h*g.w]
			for ky := 0; ky < g.k; ky++ {
				for kx := 0; kx < g.k; kx++ {
					row := col[((c*g.k+ky)*g.k+kx)*cols+n*hw:]
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
	})
}

// col2im accumulates col [rows, cols] back into dx (zeroed by the caller).
func (g convGeom) col2im(col, dx []float32) {
	hw, cols := g.ho*g.wo, g.cols()
	parallel(g.n, func(n int) {
		for c := 0; c < g.cin; c++ {
			plane := dx[(n*g.cin+c)*g.h*g.w : (n*g.cin+c+1)*g.h*g.w]
			for ky := 0; ky < g.k; ky++ {
				for kx := 0; kx < g.k; kx++ {
					row := col[((c*g.k+ky)*g.k+kx)*cols+n*hw:]
					for oy := 0; oy < g.ho; oy++ {
						iy := oy*g.stride - g.pad + ky
						if iy < 0 || iy >= g.h {
							continue
						}
						dst := plane[iy*g.w : (iy+1)*g.w]
						in := row[oy*g.wo : (oy+1)*g.wo]
						for ox, v := range in {
							if ix := ox*g.stride - g.pad + kx; ix >= 0 && ix < g.w {
								dst[ix] += v
							}
						}
					}
				}
			}
		}
	})
}

// toRows copies y [N Cout Ho·Wo] into [Cout, N·Ho·Wo] layout, and fromRows
// back.
func (g convGeom) toRows(y, r []float32) {
	hw := g.ho * g.wo
	for n := 0; n < g.n; n++ {
		for c := 0; c < g.cout; c++ {
			copy(r[c*g.cols()+n*hw:c*g.cols()+(n+1)*hw], y[(n*g.cout+c)*hw:(n*g.cout+c+1)*hw])
		}
	}
}

func (g convGeom) fromRows(r, y []float32) {
	hw := g.ho * g.wo
	for n := 0; n < g.n; n++ {
		for c := 0; c < g.cout; c++ {
			copy(y[(n*g.cout+c)*hw:(n*g.cout+c+1)*hw], r[c*g.cols()+n*hw:c*g.cols()+(n+1)*hw])
		}
	}
}

// sgemm is C = alpha·op(A)·op(B) + beta·C, row-major, on the BLAS gorgonia
// uses (OpenBLAS through netlib, or gonum's pure Go).
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
// forward's im2col matrix, reused by the weight gradient of the same step.
type convState struct {
	geom convGeom
	col  []float32
}

// convOp is y = conv(x, w) + b in one op: im2col over the whole batch, one
// GEMM, no transposes (gorgonia's Conv2d transposes its output and its
// broadcast bias add copies the bias to full size).
type convOp struct {
	stride, pad int
	st          *convState
	kind        int // 0 forward (x, w, b); 1 dx (x, w, dy); 2 dw (x, dy); 3 db (dy)
}

func (op *convOp) Arity() int { return []int{3, 3, 2, 1}[op.kind] }
func (op *convOp) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	t1 := G.TensorType{Dims: 1, Of: tensor.Float32}
	switch op.kind {
	case 0:
		return hm.NewFnType(t4, t4, t1, t4)
	case 1:
		return hm.NewFnType(t4, t4, t4, t4)
	case 2:
		return hm.NewFnType(t4, t4, t4)
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
func (op *convOp) ReturnsPtr() bool     { return false }
func (op *convOp) CallsExtern() bool    { return false }
func (op *convOp) OverwritesInput() int { return -1 }
func (op *convOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:conv%d(%d,%d,%p)", op.kind, op.stride, op.pad, op.st)
}
func (op *convOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *convOp) String() string { return fmt.Sprintf("Conv%d(s%d,p%d)", op.kind, op.stride, op.pad) }

func f32(v G.Value) ([]float32, tensor.Shape) {
	t := v.(tensor.Tensor)
	return t.Data().([]float32), t.Shape()
}

func (op *convOp) Do(vals ...G.Value) (G.Value, error) {
	g := op.st.geom
	rows, cols, hw := g.rows(), g.cols(), g.ho*g.wo
	switch op.kind {
	case 0:
		x, _ := f32(vals[0])
		w, _ := f32(vals[1])
		b, _ := f32(vals[2])
		if len(op.st.col) != rows*cols {
			op.st.col = make([]float32, rows*cols)
		}
		g.im2col(x, op.st.col)
		r := make([]float32, g.cout*cols)
		for c := 0; c < g.cout; c++ { // start from the bias, then add W·col
			row := r[c*cols : (c+1)*cols]
			for i := range row {
				row[i] = b[c]
			}
		}
		sgemm(false, false, g.cout, cols, rows, w, rows, op.st.col, cols, 1, r, cols)
		y := make([]float32, g.n*g.cout*hw)
		g.fromRows(r, y)
		return tensor.New(tensor.WithShape(g.n, g.cout, g.ho, g.wo), tensor.WithBacking(y)), nil
	case 1: // dx = col2im(Wᵀ·dY)
		w, _ := f32(vals[1])
		dy, _ := f32(vals[2])
		r := make([]float32, g.cout*cols)
		g.toRows(dy, r)
		dcol := make([]float32, rows*cols)
		sgemm(true, false, rows, cols, g.cout, w, rows, r, cols, 0, dcol, cols)
		dx := make([]float32, g.n*g.cin*g.h*g.w)
		g.col2im(dcol, dx)
		return tensor.New(tensor.WithShape(g.n, g.cin, g.h, g.w), tensor.WithBacking(dx)), nil
	case 2: // dW = dY·colᵀ, col from this step's forward
		x, _ := f32(vals[0])
		dy, _ := f32(vals[1])
		if len(op.st.col) != rows*cols {
			op.st.col = make([]float32, rows*cols)
			g.im2col(x, op.st.col)
		}
		r := make([]float32, g.cout*cols)
		g.toRows(dy, r)
		dw := make([]float32, g.cout*rows)
		sgemm(false, true, g.cout, rows, cols, r, cols, op.st.col, cols, 0, dw, rows)
		return tensor.New(tensor.WithShape(g.cout, g.cin, g.k, g.k), tensor.WithBacking(dw)), nil
	}
	dy, _ := f32(vals[0]) // db = Σ dY over samples and pixels
	db := make([]float32, g.cout)
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
	dx, err := G.ApplyOp(&convOp{op.stride, op.pad, op.st, 1}, x, w, grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&convOp{op.stride, op.pad, op.st, 2}, x, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&convOp{op.stride, op.pad, op.st, 3}, grad)
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
