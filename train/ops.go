package train

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/internal/kernel"
)

// pureOp gives a custom gorgonia op the answers every op here shares: it
// returns a fresh value, calls nothing outside Go, and overwrites no input.
type pureOp struct{}

func (pureOp) ReturnsPtr() bool     { return false }
func (pureOp) CallsExtern() bool    { return false }
func (pureOp) OverwritesInput() int { return -1 }

// hashOf is a gorgonia op's Hashcode: FNV-1a of what its WriteHash writes.
func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// unaryOp is a gorgonia op on one float32 tensor with a hand-written
// forward and backward, for operations that gorgonia lacks, gets wrong, or
// runs slowly: normalisation, SiLU, nearest upsampling.
type unaryOp struct {
	pureOp
	name  string
	dims  int
	shape func(in tensor.Shape) tensor.Shape        // output shape (nil: same)
	fwd   func(x, y []float32, s tensor.Shape)      // y = f(x), every element written (y holds the last step's values)
	bwd   func(x, dy, dx []float32, s tensor.Shape) // dx = dL/dx given dy = dL/dy, every element written
	out   []float32                                 // the output buffer, reused every step
}

// reuse returns buf if it holds n values, else a new buffer of n; it is
// zeroed. An op instance is one node of one graph and runs once per step,
// so its output buffer can serve every step: fresh multi-megabyte buffers
// each step cost more in page faults than the arithmetic.
func reuse(buf *[]float32, n int) []float32 {
	b := overwrite(buf, n)
	clear(b)
	return b
}

// overwrite is reuse without the zeroing, for outputs written in full.
func overwrite(buf *[]float32, n int) []float32 {
	if len(*buf) != n {
		*buf = make([]float32, n)
	}
	return *buf
}

func (op *unaryOp) outShape(s tensor.Shape) tensor.Shape {
	if op.shape == nil {
		return s.Clone()
	}
	return op.shape(s)
}

func (op *unaryOp) Arity() int { return 1 }
func (op *unaryOp) Type() hm.Type {
	t := G.TensorType{Dims: op.dims, Of: tensor.Float32}
	return hm.NewFnType(t, t)
}
func (op *unaryOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.outShape(in[0].(tensor.Shape)), nil
}
func (op *unaryOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:%s", op.name) }
func (op *unaryOp) Hashcode() uint32      { return hashOf(op) }
func (op *unaryOp) String() string        { return op.name }

func (op *unaryOp) Do(vals ...G.Value) (G.Value, error) {
	x := vals[0].(tensor.Tensor)
	s := op.outShape(x.Shape())
	out := overwrite(&op.out, s.TotalSize())
	op.fwd(x.Data().([]float32), out, x.Shape())
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(out)), nil
}

func (op *unaryOp) DiffWRT(int) []bool { return []bool{true} }

func (op *unaryOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&unaryGradOp{fwd: op}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// unaryGradOp computes a unaryOp's input gradient from (x, dy).
type unaryGradOp struct {
	pureOp
	fwd *unaryOp
	out []float32 // reused every step
}

func (op *unaryGradOp) Arity() int { return 2 }
func (op *unaryGradOp) Type() hm.Type {
	t := G.TensorType{Dims: op.fwd.dims, Of: tensor.Float32}
	return hm.NewFnType(t, t, t)
}
func (op *unaryGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *unaryGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:grad.%s", op.fwd.name) }
func (op *unaryGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *unaryGradOp) String() string        { return "grad." + op.fwd.name }

func (op *unaryGradOp) Do(vals ...G.Value) (G.Value, error) {
	x, dy := vals[0].(tensor.Tensor), vals[1].(tensor.Tensor)
	dx := overwrite(&op.out, x.Shape().TotalSize())
	op.fwd.bwd(x.Data().([]float32), dy.Data().([]float32), dx, x.Shape())
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(dx)), nil
}

// chunks runs f over [0, n) cut into one contiguous range per CPU (inline
// when n is small enough that goroutines would cost more than they save).
func chunks(n int, f func(lo, hi int)) {
	if n < 1<<14 {
		f(0, n)
		return
	}
	nw := workers(n)
	parallel(nw, func(_, w int) { f(w*n/nw, (w+1)*n/nw) })
}

// siluOp is x·sigmoid(x) in one pass; d/dx = s·(1 + x·(1−s)). The forward
// keeps s = sigmoid(x) for the backward of the same step, which then needs
// no exponential.
func siluOp(dims int) *unaryOp {
	var keep []float32 // sigmoid(x) of the last forward
	var kept []float32 // the x it belongs to
	return &unaryOp{name: "silu", dims: dims,
		fwd: func(x, y []float32, _ tensor.Shape) {
			if len(keep) != len(x) {
				keep = make([]float32, len(x))
			}
			chunks(len(x), func(lo, hi int) { kernel.ScaleShiftSiLU(x[lo:hi], y[lo:hi], keep[lo:hi], 1, 0) })
			kept = x
		},
		bwd: func(x, dy, dx []float32, _ tensor.Shape) {
			// The kept sigmoids are used only for the very x they came from.
			reuse := len(kept) == len(x) && len(x) > 0 && &kept[0] == &x[0]
			chunks(len(x), func(lo, hi int) {
				for i, v := range x[lo:hi] {
					var s float32
					if reuse {
						s = keep[lo+i]
					} else {
						s = kernel.Sigmoid(v)
					}
					dx[lo+i] = dy[lo+i] * s * (1 + v*(1-s))
				}
			})
		}}
}

// upsampleOp doubles H and W of [N C H W] by nearest neighbour; the
// backward sums each 2×2 block of the output gradient.
func upsampleOp() *unaryOp {
	return &unaryOp{name: "upsample2x", dims: 4,
		shape: func(s tensor.Shape) tensor.Shape { return tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]} },
		fwd: func(x, y []float32, s tensor.Shape) {
			h, w := s[2], s[3]
			for p := 0; p < s[0]*s[1]; p++ {
				in, out := x[p*h*w:(p+1)*h*w], y[p*4*h*w:(p+1)*4*h*w]
				for i := 0; i < 2*h; i++ {
					row := in[(i/2)*w : (i/2+1)*w]
					o := out[i*2*w : (i+1)*2*w]
					for j, v := range row {
						o[2*j], o[2*j+1] = v, v
					}
				}
			}
		},
		bwd: func(_, dy, dx []float32, s tensor.Shape) {
			clear(dx) // accumulated below
			h, w := s[2], s[3]
			for p := 0; p < s[0]*s[1]; p++ {
				g, d := dy[p*4*h*w:(p+1)*4*h*w], dx[p*h*w:(p+1)*h*w]
				for i := 0; i < 2*h; i++ {
					for j := 0; j < 2*w; j++ {
						d[(i/2)*w+j/2] += g[i*2*w+j]
					}
				}
			}
		}}
}

// normStats holds the statistics a normOp computed in its last forward pass
// (batch norm's running averages are updated from them after a step).
type normStats struct {
	mean, varnc []float64 // per statistics set; variance biased
	count       int       // elements per set
}
