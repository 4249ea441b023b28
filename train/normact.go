package train

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/internal/kernel"
)

// normActOp is SiLU(x̂·γ + β) with x̂ the normalised x [N C H W] (batch
// norm's statistics per channel, group norm's per sample and group), γ and
// β [C] (shared by the batch) or [N C] (a row per sample, M_CBN): the
// norm–affine–SiLU sequence that opens every block, as one op with one
// backward. It reads x once per pass and writes only its output, where the
// three separate ops wrote and re-read two intermediate tensors of x's size
// in each direction; the backward recomputes the sigmoids (with the SIMD
// kernels of internal/kernel, cheaper than writing and reading them back).
//
// Each statistics set (a channel over the batch, or a sample's group of
// channels) is processed whole — moments, then its planes — while it is in
// cache; sets run in parallel.
type normActOp struct {
	pureOp
	name   string
	groups int        // 0: batch norm
	shared bool       // γ, β are [C]
	st     *normStats // batch norm in training: the moments, for the running averages

	sets    [][]int // planes of each statistics set (layout)
	setsFor [2]int  // the N, C they were built for

	// Kept by the forward for the backward of the same step.
	mean, rstd []float64 // per set
	keptX      []float32 // the x they belong to
	out        []float32

	// Backward buffers: dx, the per-plane sums Σda and Σda·x̂, and dγ, dβ
	// (handed to the graph by the two normActParamGrad ops).
	dx     []float32
	sa, sb []float64
	dg, db []float32
}

// layout returns the statistics sets of a [N C H W] shape, each as its
// list of planes (p = n·C + c), and the elements per set: a channel over
// the batch (batch norm), or a sample's group of channels (group norm).
// The lists are built once per shape.
func (op *normActOp) layout(s tensor.Shape) (sets [][]int, count int) {
	n, c, hw := s[0], s[1], s[2]*s[3]
	if op.groups == 0 {
		count = n * hw
	} else {
		count = c / op.groups * hw
	}
	if len(op.sets) > 0 && op.setsFor == [2]int{n, c} {
		return op.sets, count
	}
	op.sets, op.setsFor = nil, [2]int{n, c}
	if op.groups == 0 {
		for ch := 0; ch < c; ch++ {
			set := make([]int, n)
			for i := range set {
				set[i] = i*c + ch
			}
			op.sets = append(op.sets, set)
		}
		return op.sets, count
	}
	cpg := c / op.groups
	for i := 0; i < n; i++ {
		for g := 0; g < op.groups; g++ {
			set := make([]int, cpg)
			for k := range set {
				set[k] = i*c + g*cpg + k
			}
			op.sets = append(op.sets, set)
		}
	}
	return op.sets, count
}

// param returns the index of plane p's γ and β.
func (op *normActOp) param(p, c int) int {
	if op.shared {
		return p % c
	}
	return p
}

func (op *normActOp) Arity() int { return 3 }
func (op *normActOp) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	tv := G.TensorType{Dims: op.vDims(), Of: tensor.Float32}
	return hm.NewFnType(t4, tv, tv, t4)
}
func (op *normActOp) vDims() int {
	if op.shared {
		return 1
	}
	return 2
}
func (op *normActOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *normActOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:normact.%s.%d.%v", op.name, op.groups, op.shared)
}
func (op *normActOp) Hashcode() uint32 { return hashOf(op) }
func (op *normActOp) String() string   { return "normact." + op.name }

func (op *normActOp) Do(vals ...G.Value) (G.Value, error) {
	x, s := f32(vals[0])
	g, _ := f32(vals[1])
	b, _ := f32(vals[2])
	c, hw := s[1], s[2]*s[3]
	sets, count := op.layout(s)
	y := overwrite(&op.out, len(x))
	if len(op.mean) != len(sets) {
		op.mean, op.rstd = make([]float64, len(sets)), make([]float64, len(sets))
	}
	if op.st != nil && len(op.st.mean) != len(sets) {
		op.st.mean, op.st.varnc = make([]float64, len(sets)), make([]float64, len(sets))
	}
	op.keptX = x
	parallel(len(sets), func(_, set int) {
		var sum float64
		for _, p := range sets[set] {
			sum += sumPlane(x[p*hw : (p+1)*hw])
		}
		m := sum / float64(count)
		var sq float64
		for _, p := range sets[set] {
			sq += sqDevPlane(x[p*hw:(p+1)*hw], m)
		}
		v := sq / float64(count)
		r := 1 / math.Sqrt(v+normEps)
		op.mean[set], op.rstd[set] = m, r
		if op.st != nil {
			op.st.mean[set], op.st.varnc[set] = m, v
		}
		// a = x̂·γ + β = x·(rγ) + (β − m·rγ), in float32 per plane.
		for _, p := range sets[set] {
			k := op.param(p, c)
			scale := float32(r * float64(g[k]))
			shift := float32(float64(b[k]) - m*r*float64(g[k]))
			kernel.ScaleShiftSiLU(x[p*hw:(p+1)*hw], y[p*hw:(p+1)*hw], nil, scale, shift)
		}
	})
	if op.st != nil {
		op.st.count = count
	}
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(y)), nil
}

func (op *normActOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *normActOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&normActGrad{f: op}, inputs[0], inputs[1], inputs[2], grad)
	if err != nil {
		return nil, err
	}
	dg, err := G.ApplyOp(&normActParamGrad{f: op, beta: false}, dx)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&normActParamGrad{f: op, beta: true}, dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dg, db}, nil
}

// backward computes dx, dγ and dβ from (x, γ, β, dy). With da = dy·SiLU'(a)
// per element, per plane A = Σda and B = Σda·x̂; dβ and dγ are A and B
// (summed over the batch when shared); the normalisation's backward is
// dx = r·(da·γ − mean(da·γ) − x̂·mean(da·γ·x̂)) per set, whose means are
// Σγ·A/count and Σγ·B/count over the set's planes.
func (op *normActOp) backward(x, g, b, dy []float32, s tensor.Shape) {
	n, c, hw := s[0], s[1], s[2]*s[3]
	sets, count := op.layout(s)
	dx := overwrite(&op.dx, len(x))
	if len(op.sa) != n*c {
		op.sa, op.sb = make([]float64, n*c), make([]float64, n*c)
	}
	kept := len(op.keptX) == len(x) && len(x) > 0 && &op.keptX[0] == &x[0] && len(op.mean) == len(sets)
	if !kept { // a backward without its forward (not in training): recompute
		op.Do(tensor.New(tensor.WithShape(s...), tensor.WithBacking(x)),
			tensor.New(tensor.WithShape(len(g)), tensor.WithBacking(g)),
			tensor.New(tensor.WithShape(len(b)), tensor.WithBacking(b)))
	}
	parallel(len(sets), func(_, set int) {
		m, r := op.mean[set], op.rstd[set]
		var mdy, mdyx float64
		for _, p := range sets[set] {
			k := op.param(p, c)
			gk := float64(g[k])
			scale := float32(r * gk)
			shift := float32(float64(b[k]) - m*r*gk)
			mr := float32(m * r)
			rr := float32(r)
			sa, sb := kernel.SiLUBackward(x[p*hw:(p+1)*hw], dy[p*hw:(p+1)*hw], dx[p*hw:(p+1)*hw], scale, shift, rr, mr)
			op.sa[p], op.sb[p] = sa, sb
			mdy += gk * sa
			mdyx += gk * sb
		}
		mdy /= float64(count)
		mdyx /= float64(count)
		for _, p := range sets[set] {
			gk := float64(g[op.param(p, c)])
			// dx = r·γ·da − r·mdy − r·(x−m)·r·mdyx, as x·u + da·v + w.
			v := float32(r * gk)
			u := float32(-r * r * mdyx)
			w := float32(-r*mdy + m*r*r*mdyx)
			kernel.Affine(dx[p*hw:(p+1)*hw], x[p*hw:(p+1)*hw], v, u, w)
		}
	})
	vn := c
	if !op.shared {
		vn = n * c
	}
	dg, db := overwrite(&op.dg, vn), overwrite(&op.db, vn)
	if op.shared {
		for k := 0; k < c; k++ {
			var a, bb float64
			for i := 0; i < n; i++ {
				a += op.sa[i*c+k]
				bb += op.sb[i*c+k]
			}
			db[k], dg[k] = float32(a), float32(bb)
		}
	} else {
		for p := range vn {
			db[p], dg[p] = float32(op.sa[p]), float32(op.sb[p])
		}
	}
}

// normActGrad is normActOp's backward: it returns dx and leaves dγ and dβ
// in the forward op for the two normActParamGrad ops that follow it.
type normActGrad struct {
	pureOp
	f *normActOp
}

func (op *normActGrad) Arity() int { return 4 }
func (op *normActGrad) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	tv := G.TensorType{Dims: op.f.vDims(), Of: tensor.Float32}
	return hm.NewFnType(t4, tv, tv, t4, t4)
}
func (op *normActGrad) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *normActGrad) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:grad.normact.%s.%d.%v", op.f.name, op.f.groups, op.f.shared)
}
func (op *normActGrad) Hashcode() uint32 { return hashOf(op) }
func (op *normActGrad) String() string   { return "grad.normact." + op.f.name }
func (op *normActGrad) Do(vals ...G.Value) (G.Value, error) {
	x, s := f32(vals[0])
	g, _ := f32(vals[1])
	b, _ := f32(vals[2])
	dy, _ := f32(vals[3])
	op.f.backward(x, g, b, dy, s)
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(op.f.dx)), nil
}

// normActParamGrad hands on dγ (or dβ) computed by the normActGrad whose
// output is its input: the dependency orders it after that backward.
type normActParamGrad struct {
	pureOp
	f    *normActOp
	beta bool
}

func (op *normActParamGrad) Arity() int { return 1 }
func (op *normActParamGrad) Type() hm.Type {
	t4 := G.TensorType{Dims: 4, Of: tensor.Float32}
	tv := G.TensorType{Dims: op.f.vDims(), Of: tensor.Float32}
	return hm.NewFnType(t4, tv)
}
func (op *normActParamGrad) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.shape(in[0].(tensor.Shape)), nil
}

// shape is γ's (and β's) shape for an x of shape s: [C] or [N C].
func (op *normActParamGrad) shape(s tensor.Shape) tensor.Shape {
	if op.f.shared {
		return tensor.Shape{s[1]}
	}
	return tensor.Shape{s[0], s[1]}
}
func (op *normActParamGrad) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "condiff:grad.normact.%s.%d.%v.%v", op.f.name, op.f.groups, op.f.shared, op.beta)
}
func (op *normActParamGrad) Hashcode() uint32 { return hashOf(op) }
func (op *normActParamGrad) String() string {
	if op.beta {
		return "grad.normact.beta." + op.f.name
	}
	return "grad.normact.gamma." + op.f.name
}
func (op *normActParamGrad) Do(vals ...G.Value) (G.Value, error) {
	_, s := f32(vals[0])
	v := op.f.dg
	if op.beta {
		v = op.f.db
	}
	return tensor.New(tensor.WithShape(op.shape(s)...), tensor.WithBacking(v)), nil
}

// sumPlane is Σx in float64 with four independent partial sums (one chain
// of dependent additions would wait on each add's latency).
func sumPlane(x []float32) float64 {
	var a, b, c, d float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a += float64(x[i])
		b += float64(x[i+1])
		c += float64(x[i+2])
		d += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		a += float64(x[i])
	}
	return (a + b) + (c + d)
}

// sqDevPlane is Σ(x − m)² in float64, four partial sums likewise.
func sqDevPlane(x []float32, m float64) float64 {
	var a, b, c, d float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		e0, e1, e2, e3 := float64(x[i])-m, float64(x[i+1])-m, float64(x[i+2])-m, float64(x[i+3])-m
		a += e0 * e0
		b += e1 * e1
		c += e2 * e2
		d += e3 * e3
	}
	for ; i < len(x); i++ {
		e := float64(x[i]) - m
		a += e * e
	}
	return (a + b) + (c + d)
}
