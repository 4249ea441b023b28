package train

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// chanOp is a per-channel operation on x [N C H W] with a per-channel
// operand v: [C] (shared by the batch) or [N C] (a row per sample). It
// replaces gorgonia's broadcasts, which materialise the operand at x's full
// size (Repeat) on every run. Kinds:
//
//	chanAffine  (x, g, b) -> x·g + b
//	chanAdd     (x, v)    -> x + v
//	chanScale   (x, g)    -> x·g
//	chanSum     (dy)      -> Σ over H·W (and N when shared) of dy: v's shape
//	chanSumProd (dy, x)   -> Σ of dy·x, likewise
type chanOp struct {
	pureOp
	kind   int
	shared bool      // the operand is [C]
	out    []float32 // reused every step (see reuse)
}

const (
	chanAffine = iota
	chanAdd
	chanScale
	chanSum
	chanSumProd
)

var chanNames = []string{"affine", "add", "scale", "sum", "sumprod"}

func (op *chanOp) Arity() int { return []int{3, 2, 2, 1, 2}[op.kind] }

func (op *chanOp) vDims() int {
	if op.shared {
		return 1
	}
	return 2
}

func (op *chanOp) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	tv := G.TensorType{Dims: op.vDims(), Of: tensor.Float32}
	switch op.kind {
	case chanAffine:
		return hm.NewFnType(t4, tv, tv, t4)
	case chanAdd, chanScale:
		return hm.NewFnType(t4, tv, t4)
	case chanSum:
		return hm.NewFnType(t4, tv)
	}
	return hm.NewFnType(t4, t4, tv)
}

func (op *chanOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	switch op.kind {
	case chanSum, chanSumProd:
		if op.shared {
			return tensor.Shape{s[1]}, nil
		}
		return tensor.Shape{s[0], s[1]}, nil
	}
	return s.Clone(), nil
}

func (op *chanOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:chan.%s.%v", chanNames[op.kind], op.shared)
}
func (op *chanOp) Hashcode() uint32 { return hashOf(op) }
func (op *chanOp) String() string   { return "chan." + chanNames[op.kind] }

func (op *chanOp) Do(vals ...G.Value) (G.Value, error) {
	x, s := f32(vals[0])
	n, c, hw := s[0], s[1], s[2]*s[3]
	at := func(v []float32, i, ch int) float32 { // the operand for sample i, channel ch
		if op.shared {
			return v[ch]
		}
		return v[i*c+ch]
	}
	switch op.kind {
	case chanAffine, chanAdd, chanScale:
		y := overwrite(&op.out, len(x))
		var g, b []float32
		switch op.kind {
		case chanAffine:
			g, _ = f32(vals[1])
			b, _ = f32(vals[2])
		case chanAdd:
			b, _ = f32(vals[1])
		case chanScale:
			g, _ = f32(vals[1])
		}
		parallel(n*c, func(_, p int) {
			i, ch := p/c, p%c
			gv, bv := float32(1), float32(0)
			if g != nil {
				gv = at(g, i, ch)
			}
			if b != nil {
				bv = at(b, i, ch)
			}
			out := y[p*hw : (p+1)*hw]
			for k, e := range x[p*hw : (p+1)*hw] {
				out[k] = e*gv + bv
			}
		})
		return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(y)), nil
	}
	var other []float32
	if op.kind == chanSumProd {
		other, _ = f32(vals[1])
	}
	sums := make([]float32, n*c) // per (sample, channel)
	parallel(n*c, func(_, p int) {
		xs := x[p*hw : (p+1)*hw]
		if other == nil {
			sums[p] = sum4(xs, nil)
		} else {
			sums[p] = sum4(xs, other[p*hw:(p+1)*hw])
		}
	})
	if !op.shared {
		return tensor.New(tensor.WithShape(n, c), tensor.WithBacking(sums)), nil
	}
	out := make([]float32, c)
	for p, v := range sums {
		out[p%c] += v
	}
	return tensor.New(tensor.WithShape(c), tensor.WithBacking(out)), nil
}

// sum4 is Σ x (o nil) or Σ x·o over one plane, in four float32 partial
// sums (a plane is at most 1024 values here, 256 per partial: the rounding
// is about 1e-5 relative at worst, far inside the gradient tests' tolerance).
func sum4(x, o []float32) float32 {
	var a, b, c, d float32
	i := 0
	if o == nil {
		for ; i+4 <= len(x); i += 4 {
			a += x[i]
			b += x[i+1]
			c += x[i+2]
			d += x[i+3]
		}
		for ; i < len(x); i++ {
			a += x[i]
		}
		return (a + b) + (c + d)
	}
	o = o[:len(x)]
	for ; i+4 <= len(x); i += 4 {
		a += x[i] * o[i]
		b += x[i+1] * o[i+1]
		c += x[i+2] * o[i+2]
		d += x[i+3] * o[i+3]
	}
	for ; i < len(x); i++ {
		a += x[i] * o[i]
	}
	return (a + b) + (c + d)
}

func (op *chanOp) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for i := range d {
		d[i] = op.kind <= chanAdd // only the forward kinds are differentiated
	}
	return d
}

func (op *chanOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	sum := &chanOp{kind: chanSum, shared: op.shared}
	switch op.kind {
	case chanAdd: // dx = dy, dv = Σ dy
		dv, err := G.ApplyOp(sum, grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{grad, dv}, nil
	case chanAffine: // dx = dy·g, dg = Σ dy·x, db = Σ dy
		dx, err := G.ApplyOp(&chanOp{kind: chanScale, shared: op.shared}, grad, inputs[1])
		if err != nil {
			return nil, err
		}
		dg, err := G.ApplyOp(&chanOp{kind: chanSumProd, shared: op.shared}, grad, inputs[0])
		if err != nil {
			return nil, err
		}
		db, err := G.ApplyOp(sum, grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{dx, dg, db}, nil
	}
	return nil, fmt.Errorf("train: %s is not differentiable", op)
}

// catOp joins a [N C1 H W] and b [N C2 H W] along channels (kind 0), or
// takes the channels [from, from+c) of its input (kind 1: the gradient's
// split), with one block copy per sample. gorgonia's Concat and the Slice
// ops of its gradient copy element by element through iterators.
type catOp struct {
	pureOp
	split   bool
	from, c int       // split: the channel range taken
	out     []float32 // reused every step (see reuse)
}

func (op *catOp) Arity() int {
	if op.split {
		return 1
	}
	return 2
}
func (op *catOp) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	if op.split {
		return hm.NewFnType(t4, t4)
	}
	return hm.NewFnType(t4, t4, t4)
}
func (op *catOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a := in[0].(tensor.Shape)
	if op.split {
		return tensor.Shape{a[0], op.c, a[2], a[3]}, nil
	}
	b := in[1].(tensor.Shape)
	return tensor.Shape{a[0], a[1] + b[1], a[2], a[3]}, nil
}
func (op *catOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:cat.%v.%d.%d", op.split, op.from, op.c)
}
func (op *catOp) Hashcode() uint32 { return hashOf(op) }
func (op *catOp) String() string {
	if op.split {
		return fmt.Sprintf("split[%d:%d]", op.from, op.from+op.c)
	}
	return "concat"
}

func (op *catOp) Do(vals ...G.Value) (G.Value, error) {
	a, s := f32(vals[0])
	n, hw := s[0], s[2]*s[3]
	if op.split {
		y := overwrite(&op.out, n*op.c*hw)
		for i := 0; i < n; i++ {
			copy(y[i*op.c*hw:(i+1)*op.c*hw], a[(i*s[1]+op.from)*hw:(i*s[1]+op.from+op.c)*hw])
		}
		return tensor.New(tensor.WithShape(n, op.c, s[2], s[3]), tensor.WithBacking(y)), nil
	}
	b, sb := f32(vals[1])
	ca, cb := s[1], sb[1]
	y := overwrite(&op.out, n*(ca+cb)*hw)
	for i := 0; i < n; i++ {
		base := i * (ca + cb) * hw
		copy(y[base:base+ca*hw], a[i*ca*hw:(i+1)*ca*hw])
		copy(y[base+ca*hw:base+(ca+cb)*hw], b[i*cb*hw:(i+1)*cb*hw])
	}
	return tensor.New(tensor.WithShape(n, ca+cb, s[2], s[3]), tensor.WithBacking(y)), nil
}

func (op *catOp) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for i := range d {
		d[i] = !op.split
	}
	return d
}

func (op *catOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	ca, cb := inputs[0].Shape()[1], inputs[1].Shape()[1]
	da, err := G.ApplyOp(&catOp{split: true, from: 0, c: ca}, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&catOp{split: true, from: ca, c: cb}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{da, db}, nil
}

// addOp is a + b for two tensors of one shape, into a buffer reused every
// step, on every CPU (gorgonia's Add clones a into a fresh tensor first).
type addOp struct {
	pureOp
	dims int
	out  []float32
}

func (op *addOp) Arity() int { return 2 }
func (op *addOp) Type() hm.Type {
	t := G.TensorType{Dims: op.dims, Of: tensor.Float32}
	return hm.NewFnType(t, t, t)
}
func (op *addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b := in[0].(tensor.Shape), in[1].(tensor.Shape)
	if !a.Eq(b) {
		return nil, fmt.Errorf("train: add of shapes %v and %v", a, b)
	}
	return a.Clone(), nil
}
func (op *addOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:add%d", op.dims) }
func (op *addOp) Hashcode() uint32      { return hashOf(op) }
func (op *addOp) String() string        { return "add" }
func (op *addOp) Do(vals ...G.Value) (G.Value, error) {
	a, s := f32(vals[0])
	b, _ := f32(vals[1])
	y := overwrite(&op.out, len(a))
	chunks(len(a), func(lo, hi int) {
		bs, ys := b[lo:hi], y[lo:hi]
		for i, v := range a[lo:hi] {
			ys[i] = v + bs[i]
		}
	})
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(y)), nil
}
func (op *addOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op *addOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
