package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// normOp normalises x [N C H W] without affine, over sets of elements that
// share statistics: per channel over (N, H, W) for batch norm, per sample
// and group of channels over (C/G, H, W) for group norm. It is one gorgonia
// op with a hand-written backward because the same computation composed of
// gorgonia's reductions and broadcasts got a wrong gradient (v0.9.18).
//
// The statistics of the last forward pass stay in the op (batch norm's
// running averages are updated from them after a training step).
type normOp struct {
	name   string
	groups int // 0: batch norm
	mean   []float64
	varnc  []float64 // biased variance
	count  int       // elements per statistics set
}

// sets calls f(s, idx) for every statistics set s with the flat indices of
// its elements, in a fixed order.
func (op *normOp) sets(shape tensor.Shape, f func(s int, idx func(func(i int)))) {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	if op.groups == 0 {
		for ch := 0; ch < c; ch++ {
			f(ch, func(visit func(i int)) {
				for b := 0; b < n; b++ {
					base := (b*c + ch) * hw
					for k := 0; k < hw; k++ {
						visit(base + k)
					}
				}
			})
		}
		return
	}
	per := c / op.groups * hw
	for s := 0; s < n*op.groups; s++ {
		f(s, func(visit func(i int)) {
			for k := s * per; k < (s+1)*per; k++ {
				visit(k)
			}
		})
	}
}

func (op *normOp) numSets(shape tensor.Shape) int {
	if op.groups == 0 {
		return shape[1]
	}
	return shape[0] * op.groups
}

func (op *normOp) Arity() int { return 1 }
func (op *normOp) Type() hm.Type {
	t := G.TensorType{Dims: 4, Of: tensor.Float32}
	return hm.NewFnType(t, t)
}
func (op *normOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *normOp) ReturnsPtr() bool     { return false }
func (op *normOp) CallsExtern() bool    { return false }
func (op *normOp) OverwritesInput() int { return -1 }
func (op *normOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff.norm(%s,%d)", op.name, op.groups)
}
func (op *normOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *normOp) String() string { return fmt.Sprintf("Norm(%s)", op.name) }

func (op *normOp) Do(vals ...G.Value) (G.Value, error) {
	x := vals[0].(tensor.Tensor)
	shape := x.Shape()
	xd := x.Data().([]float32)
	out := make([]float32, len(xd))
	k := op.numSets(shape)
	if len(op.mean) != k {
		op.mean, op.varnc = make([]float64, k), make([]float64, k)
	}
	op.sets(shape, func(s int, idx func(func(int))) {
		var sum, sq float64
		cnt := 0
		idx(func(i int) { sum += float64(xd[i]); cnt++ })
		m := sum / float64(cnt)
		idx(func(i int) { d := float64(xd[i]) - m; sq += d * d })
		v := sq / float64(cnt)
		r := 1 / math.Sqrt(v+normEps)
		idx(func(i int) { out[i] = float32((float64(xd[i]) - m) * r) })
		op.mean[s], op.varnc[s], op.count = m, v, cnt
	})
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(out)), nil
}

func (op *normOp) DiffWRT(int) []bool { return []bool{true} }

func (op *normOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&normGradOp{op}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// normGradOp is the backward of normOp: with x̂ the normalised input and
// r = 1/sqrt(var+eps), dx = r·(dy − mean(dy) − x̂·mean(dy·x̂)) per set.
type normGradOp struct{ fwd *normOp }

func (op *normGradOp) Arity() int { return 2 }
func (op *normGradOp) Type() hm.Type {
	t := G.TensorType{Dims: 4, Of: tensor.Float32}
	return hm.NewFnType(t, t, t)
}
func (op *normGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *normGradOp) ReturnsPtr() bool     { return false }
func (op *normGradOp) CallsExtern() bool    { return false }
func (op *normGradOp) OverwritesInput() int { return -1 }
func (op *normGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff.normgrad(%s,%d)", op.fwd.name, op.fwd.groups)
}
func (op *normGradOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *normGradOp) String() string { return fmt.Sprintf("NormGrad(%s)", op.fwd.name) }

func (op *normGradOp) Do(vals ...G.Value) (G.Value, error) {
	x, dy := vals[0].(tensor.Tensor), vals[1].(tensor.Tensor)
	shape := x.Shape()
	xd, gd := x.Data().([]float32), dy.Data().([]float32)
	out := make([]float32, len(xd))
	op.fwd.sets(shape, func(s int, idx func(func(int))) {
		var sum float64
		cnt := 0
		idx(func(i int) { sum += float64(xd[i]); cnt++ })
		m := sum / float64(cnt)
		var sq float64
		idx(func(i int) { d := float64(xd[i]) - m; sq += d * d })
		r := 1 / math.Sqrt(sq/float64(cnt)+normEps)
		var mdy, mdyx float64
		idx(func(i int) {
			xh := (float64(xd[i]) - m) * r
			mdy += float64(gd[i])
			mdyx += float64(gd[i]) * xh
		})
		mdy /= float64(cnt)
		mdyx /= float64(cnt)
		idx(func(i int) {
			xh := (float64(xd[i]) - m) * r
			out[i] = float32(r * (float64(gd[i]) - mdy - xh*mdyx))
		})
	})
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(out)), nil
}
