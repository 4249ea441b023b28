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

// unaryOp is a gorgonia op on one float32 tensor with a hand-written
// forward and backward, for operations that gorgonia lacks, gets wrong, or
// runs slowly: normalisation, SiLU, nearest upsampling.
type unaryOp struct {
	name  string
	dims  int
	shape func(in tensor.Shape) tensor.Shape        // output shape (nil: same)
	fwd   func(x, y []float32, s tensor.Shape)      // y = f(x); y is zeroed
	bwd   func(x, dy, dx []float32, s tensor.Shape) // dx = dL/dx given dy = dL/dy; dx is zeroed
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
func (op *unaryOp) ReturnsPtr() bool      { return false }
func (op *unaryOp) CallsExtern() bool     { return false }
func (op *unaryOp) OverwritesInput() int  { return -1 }
func (op *unaryOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:%s", op.name) }
func (op *unaryOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *unaryOp) String() string { return op.name }

func (op *unaryOp) Do(vals ...G.Value) (G.Value, error) {
	x := vals[0].(tensor.Tensor)
	s := op.outShape(x.Shape())
	out := make([]float32, s.TotalSize())
	op.fwd(x.Data().([]float32), out, x.Shape())
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(out)), nil
}

func (op *unaryOp) DiffWRT(int) []bool { return []bool{true} }

func (op *unaryOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&unaryGradOp{op}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// unaryGradOp computes a unaryOp's input gradient from (x, dy).
type unaryGradOp struct{ fwd *unaryOp }

func (op *unaryGradOp) Arity() int { return 2 }
func (op *unaryGradOp) Type() hm.Type {
	t := G.TensorType{Dims: op.fwd.dims, Of: tensor.Float32}
	return hm.NewFnType(t, t, t)
}
func (op *unaryGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *unaryGradOp) ReturnsPtr() bool      { return false }
func (op *unaryGradOp) CallsExtern() bool     { return false }
func (op *unaryGradOp) OverwritesInput() int  { return -1 }
func (op *unaryGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "condiff:grad.%s", op.fwd.name) }
func (op *unaryGradOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *unaryGradOp) String() string { return "grad." + op.fwd.name }

func (op *unaryGradOp) Do(vals ...G.Value) (G.Value, error) {
	x, dy := vals[0].(tensor.Tensor), vals[1].(tensor.Tensor)
	dx := make([]float32, x.Shape().TotalSize())
	op.fwd.bwd(x.Data().([]float32), dy.Data().([]float32), dx, x.Shape())
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(dx)), nil
}

// siluOp is x·sigmoid(x) in one pass; d/dx = s·(1 + x·(1−s)).
func siluOp(dims int) *unaryOp {
	sig := func(v float32) float32 { return float32(1 / (1 + math.Exp(-float64(v)))) }
	return &unaryOp{name: "silu", dims: dims,
		fwd: func(x, y []float32, _ tensor.Shape) {
			for i, v := range x {
				y[i] = v * sig(v)
			}
		},
		bwd: func(x, dy, dx []float32, _ tensor.Shape) {
			for i, v := range x {
				s := sig(v)
				dx[i] = dy[i] * s * (1 + v*(1-s))
			}
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

// normOp normalises x [N C H W] without affine, over sets of elements that
// share statistics: per channel over (N, H, W) for batch norm (groups 0),
// per sample and group of channels over (C/G, H, W) for group norm. The same
// computation composed of gorgonia's reductions and broadcasts got a wrong
// gradient (v0.9.18), hence the hand-written backward:
// dx = r·(dy − mean(dy) − x̂·mean(dy·x̂)) per set, r = 1/sqrt(var+eps).
func normOp(name string, groups int, st *normStats) *unaryOp {
	// sets calls f(s, idx) for every statistics set s, idx visiting its elements.
	sets := func(shape tensor.Shape, f func(s int, idx func(func(i int)))) {
		n, c, hw := shape[0], shape[1], shape[2]*shape[3]
		if groups == 0 {
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
		per := c / groups * hw
		for s := 0; s < n*groups; s++ {
			f(s, func(visit func(i int)) {
				for k := s * per; k < (s+1)*per; k++ {
					visit(k)
				}
			})
		}
	}
	// moments returns mean, biased variance and count of one set.
	moments := func(x []float32, idx func(func(int))) (m, v float64, cnt int) {
		var sum, sq float64
		idx(func(i int) { sum += float64(x[i]); cnt++ })
		m = sum / float64(cnt)
		idx(func(i int) { d := float64(x[i]) - m; sq += d * d })
		return m, sq / float64(cnt), cnt
	}
	return &unaryOp{name: "norm." + name, dims: 4,
		fwd: func(x, y []float32, shape tensor.Shape) {
			k := shape[1]
			if groups > 0 {
				k = shape[0] * groups
			}
			if st != nil && len(st.mean) != k {
				st.mean, st.varnc = make([]float64, k), make([]float64, k)
			}
			sets(shape, func(s int, idx func(func(int))) {
				m, v, cnt := moments(x, idx)
				r := 1 / math.Sqrt(v+normEps)
				idx(func(i int) { y[i] = float32((float64(x[i]) - m) * r) })
				if st != nil {
					st.mean[s], st.varnc[s], st.count = m, v, cnt
				}
			})
		},
		bwd: func(x, dy, dx []float32, shape tensor.Shape) {
			sets(shape, func(s int, idx func(func(int))) {
				m, v, cnt := moments(x, idx)
				r := 1 / math.Sqrt(v+normEps)
				var mdy, mdyx float64
				idx(func(i int) {
					mdy += float64(dy[i])
					mdyx += float64(dy[i]) * (float64(x[i]) - m) * r
				})
				mdy /= float64(cnt)
				mdyx /= float64(cnt)
				idx(func(i int) {
					xh := (float64(x[i]) - m) * r
					dx[i] = float32(r * (float64(dy[i]) - mdy - xh*mdyx))
				})
			})
		}}
}
