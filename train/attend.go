package train

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/internal/kernel"
	"github.com/condiff/condiff/models"
)

// attnState is shared by an attention's forward op and its three gradient
// ops: the softmax weights of the last forward (kept for the backward), the
// per-worker workspaces, and the backward's results, computed once per
// step for dq, dk and dv (as convState does for a convolution).
type attnState struct {
	p     []float32   // [N L L]: softmax weights of the last forward
	ws    [][]float32 // per worker: dP, then dS ([L L])
	fwd   int         // forward runs
	bwd   int         // the forward run the cached gradients belong to
	grads [3]tensor.Tensor
	gbuf  [3][]float32
	y     []float32
	shape tensor.Shape // [N C H W] of the last forward
}

// dims is the last forward's batch N, channels C and positions L = H·W,
// and the logits' scale 1/√C.
func (st *attnState) dims() (n, c, l int, scale float32) {
	s := st.shape
	return s[0], s[1], s[2] * s[3], float32(1 / math.Sqrt(float64(s[1])))
}

// attendOp is models.Ops.Attend: out[n,:,i] = Σ_j softmax_j(q·k/√C)·v[n,:,j]
// over the H·W positions, each image one [C L] matrix per input.
type attendOp struct {
	pureOp
	st *attnState
}

func (op *attendOp) Arity() int { return 3 }
func (op *attendOp) Type() hm.Type {
	t := G.TensorType{Dims: 4, Of: tensor.Float32}
	return hm.NewFnType(t, t, t, t)
}
func (op *attendOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	for _, o := range in[1:] {
		if !s.Eq(o.(tensor.Shape)) {
			return nil, fmt.Errorf("attend: q %v and k, v %v differ", s, o)
		}
	}
	return s.Clone(), nil
}
func (op *attendOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:attend:%p", op.st) }
func (op *attendOp) Hashcode() uint32      { return hashOf(op) }
func (op *attendOp) String() string        { return "attend" }

func (op *attendOp) Do(vals ...G.Value) (G.Value, error) {
	st := op.st
	s := vals[0].(tensor.Tensor).Shape()
	q, k, v := vals[0].(tensor.Tensor).Data().([]float32), vals[1].(tensor.Tensor).Data().([]float32), vals[2].(tensor.Tensor).Data().([]float32)
	st.shape = s.Clone()
	n, c, l, scale := st.dims()
	p := overwrite(&st.p, n*l*l)
	y := overwrite(&st.y, n*c*l)
	parallel(n, func(_, i int) {
		qi, ki, vi := q[i*c*l:(i+1)*c*l], k[i*c*l:(i+1)*c*l], v[i*c*l:(i+1)*c*l]
		pi := p[i*l*l : (i+1)*l*l]
		sgemm(true, false, l, l, c, qi, l, ki, l, 0, pi, l) // S = qᵀk
		for r := 0; r < l; r++ {
			kernel.SoftmaxRow(pi[r*l:(r+1)*l], scale)
		}
		sgemm(false, true, c, l, l, vi, l, pi, l, 0, y[i*c*l:(i+1)*c*l], l) // O = v·Pᵀ
	})
	st.fwd++
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(y)), nil
}

func (op *attendOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *attendOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	var out G.Nodes
	for which := 0; which < 3; which++ {
		d, err := G.ApplyOp(&attendGradOp{st: op.st, which: which}, inputs[0], inputs[1], inputs[2], grad)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// attendGradOp gives one of dq, dk, dv (which: 0, 1, 2) from (q, k, v, dO);
// the first of the three to run in a step computes all three.
type attendGradOp struct {
	pureOp
	st    *attnState
	which int
}

func (op *attendGradOp) Arity() int { return 4 }
func (op *attendGradOp) Type() hm.Type {
	t := G.TensorType{Dims: 4, Of: tensor.Float32}
	return hm.NewFnType(t, t, t, t, t)
}
func (op *attendGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *attendGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:grad.attend.%d:%p", op.which, op.st)
}
func (op *attendGradOp) Hashcode() uint32 { return hashOf(op) }
func (op *attendGradOp) String() string   { return fmt.Sprintf("grad.attend.%d", op.which) }

func (op *attendGradOp) Do(vals ...G.Value) (G.Value, error) {
	st := op.st
	if st.bwd != st.fwd {
		st.backward(vals[0].(tensor.Tensor).Data().([]float32), vals[1].(tensor.Tensor).Data().([]float32),
			vals[2].(tensor.Tensor).Data().([]float32), vals[3].(tensor.Tensor).Data().([]float32))
		st.bwd = st.fwd
	}
	return st.grads[op.which], nil
}

// backward computes dq, dk, dv from dO and the kept softmax weights P:
// dV = dO·P, dP = dOᵀ·v, dS = P⊙(dP − rowsum(P⊙dP))·scale, dq = k·dSᵀ,
// dk = q·dS.
func (st *attnState) backward(q, k, v, dy []float32) {
	n, c, l, scale := st.dims()
	dq, dk, dv := overwrite(&st.gbuf[0], n*c*l), overwrite(&st.gbuf[1], n*c*l), overwrite(&st.gbuf[2], n*c*l)
	nw := workers(n)
	if len(st.ws) != nw || len(st.ws[0]) != l*l {
		st.ws = make([][]float32, nw)
		for w := range st.ws {
			st.ws[w] = make([]float32, l*l)
		}
	}
	parallel(n, func(w, i int) {
		off := i * c * l
		qi, ki, vi, dyi := q[off:off+c*l], k[off:off+c*l], v[off:off+c*l], dy[off:off+c*l]
		pi, ds := st.p[i*l*l:(i+1)*l*l], st.ws[w]
		sgemm(false, false, c, l, l, dyi, l, pi, l, 0, dv[off:off+c*l], l) // dV = dO·P
		sgemm(true, false, l, l, c, dyi, l, vi, l, 0, ds, l)               // dP = dOᵀ·v
		for r := 0; r < l; r++ {
			pr, dr := pi[r*l:(r+1)*l], ds[r*l:(r+1)*l]
			var dot float32
			for j, x := range pr {
				dot += x * dr[j]
			}
			for j, x := range pr {
				dr[j] = x * (dr[j] - dot) * scale
			}
		}
		sgemm(false, true, c, l, l, ki, l, ds, l, 0, dq[off:off+c*l], l)  // dq = k·dSᵀ
		sgemm(false, false, c, l, l, qi, l, ds, l, 0, dk[off:off+c*l], l) // dk = q·dS
	})
	for j, b := range [][]float32{dq, dk, dv} {
		st.grads[j] = tensor.New(tensor.WithShape(st.shape.Clone()...), tensor.WithBacking(b))
	}
}

func (l *lowering) Attend(q, k, v models.T) models.T {
	return must(G.ApplyOp(&attendOp{st: &attnState{}}, node(q), node(k), node(v)))
}
