// Package graphs lowers condiff's networks (models/) to ONNX graphs: the same
// definition that train/ lowers to gorgonia, written out as ONNX operators
// with the weights as initializers under their parameter names. The model
// is written through internal/onnxwire, which registers no protobuf
// messages (see its package comment: onnx-go, linked into the same
// binaries, registers the ONNX names).
package graphs

import (
	"fmt"
	"math"
	"slices"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/internal/onnxwire"
	"github.com/condiff/condiff/models"
)

// Opset is the ONNX operator set the graphs use; IRVersion matches it.
const (
	Opset     = 17
	IRVersion = 8
)

// value is an ONNX value: its name and its shape, with -1 for the batch.
type value struct {
	name  string
	shape []int
}

// builder is the ONNX backend of models.Ops.
type builder struct {
	g       *onnxwire.Graph
	weights map[string]models.Array
	stats   map[string]models.Array
	T       int // timesteps covered by the time-embedding table
	used    map[string]bool
	n       int // counter for generated names
}

func v(x models.T) value { return x.(value) }

func (b *builder) fresh(op string) string {
	b.n++
	return fmt.Sprintf("%s_%d", op, b.n)
}

func attrInts(name string, v ...int) onnxwire.Attr {
	a := onnxwire.Attr{Name: name, Type: onnxwire.AttrInts}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

func attrInt(name string, v int) onnxwire.Attr {
	return onnxwire.Attr{Name: name, Type: onnxwire.AttrInt, I: int64(v)}
}

func attrFloat(name string, v float32) onnxwire.Attr {
	return onnxwire.Attr{Name: name, Type: onnxwire.AttrFloat, F: v}
}

func attrString(name, v string) onnxwire.Attr {
	return onnxwire.Attr{Name: name, Type: onnxwire.AttrString, S: v}
}

// node appends an operator and returns its output value.
func (b *builder) node(op string, shape []int, inputs []string, attrs ...onnxwire.Attr) value {
	out := b.fresh(op)
	b.g.Nodes = append(b.g.Nodes, onnxwire.Node{Name: out, OpType: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return value{out, slices.Clone(shape)}
}

func (b *builder) constFloat(a models.Array) value {
	name := b.fresh("const")
	b.g.Inits = append(b.g.Inits, onnxwire.FloatTensor(name, a.Shape, a.Data))
	return value{name, slices.Clone(a.Shape)}
}

func (b *builder) constInts(vals ...int) string {
	name := b.fresh("shape")
	b.g.Inits = append(b.g.Inits, onnxwire.Int64Tensor(name, vals...))
	return name
}

func (b *builder) Param(name string, shape []int, init models.Init) models.T {
	a, ok := b.weights[name]
	if !ok {
		panic(fmt.Sprintf("graphs: no weights for parameter %q", name))
	}
	if !slices.Equal(a.Shape, shape) {
		panic(fmt.Sprintf("graphs: parameter %q has shape %v, the model wants %v", name, a.Shape, shape))
	}
	if !b.used[name] {
		b.used[name] = true
		b.g.Inits = append(b.g.Inits, onnxwire.FloatTensor(name, a.Shape, a.Data))
	}
	return value{name, slices.Clone(shape)}
}

func (b *builder) Conv(x, w, bias models.T, stride, pad int) models.T {
	xs, ws := v(x).shape, v(w).shape
	out := func(n int) int { return (n+2*pad-ws[2])/stride + 1 }
	return b.node("Conv", []int{xs[0], ws[0], out(xs[2]), out(xs[3])}, []string{v(x).name, v(w).name, v(bias).name},
		attrInts("kernel_shape", ws[2], ws[3]), attrInts("pads", pad, pad, pad, pad), attrInts("strides", stride, stride))
}

func (b *builder) Linear(x, w, bias models.T) models.T {
	shape := []int{v(x).shape[0], v(w).shape[1]}
	y := b.node("MatMul", shape, []string{v(x).name, v(w).name})
	return b.node("Add", shape, []string{y.name, v(bias).name})
}

func (b *builder) SiLU(x models.T) models.T {
	s := b.node("Sigmoid", v(x).shape, []string{v(x).name})
	return b.node("Mul", v(x).shape, []string{v(x).name, s.name})
}

func (b *builder) Add(x, y models.T) models.T {
	return b.node("Add", v(x).shape, []string{v(x).name, v(y).name})
}

func (b *builder) unsqueezeHW(x value) value {
	return b.node("Unsqueeze", append(slices.Clone(x.shape), 1, 1), []string{x.name, b.constInts(2, 3)}) // [N C 1 1]
}

func (b *builder) AddChannels(x, c models.T) models.T {
	return b.node("Add", v(x).shape, []string{v(x).name, b.unsqueezeHW(v(c)).name})
}

func (b *builder) Concat(x, y models.T) models.T {
	xs, ys := v(x).shape, v(y).shape
	return b.node("Concat", []int{xs[0], xs[1] + ys[1], xs[2], xs[3]}, []string{v(x).name, v(y).name}, attrInt("axis", 1))
}

func (b *builder) Upsample(x models.T) models.T {
	xs := v(x).shape
	scales := b.constFloat(models.Array{Shape: []int{4}, Data: []float32{1, 1, 2, 2}})
	// asymmetric + floor: output pixel i reads input pixel floor(i/2), exactly nearest 2×.
	return b.node("Resize", []int{xs[0], xs[1], 2 * xs[2], 2 * xs[3]}, []string{v(x).name, "", scales.name},
		attrString("mode", "nearest"), attrString("coordinate_transformation_mode", "asymmetric"), attrString("nearest_mode", "floor"))
}

// NormAct composes the normalisation, the per-channel affine and SiLU.
func (b *builder) NormAct(x, gamma, beta models.T, name string, kind models.NormKind, groups int) models.T {
	return b.SiLU(b.scaleShift(b.normalize(x, name, kind, groups), gamma, beta))
}

func (b *builder) normalize(x models.T, name string, kind models.NormKind, groups int) models.T {
	xv := v(x)
	c := xv.shape[1]
	if kind == models.GroupNorm {
		// Group norm = instance norm over [N G C/G·H·W], reshaped back.
		r := b.node("Reshape", []int{-1, groups, -1}, []string{xv.name, b.constInts(0, groups, -1)})
		ones, zeros := models.NewArray(groups), models.NewArray(groups)
		for i := range ones.Data {
			ones.Data[i] = 1
		}
		in := b.node("InstanceNormalization", r.shape, []string{r.name, b.constFloat(ones).name, b.constFloat(zeros).name}, attrFloat("epsilon", models.NormEps))
		shape := b.node("Shape", []int{4}, []string{xv.name})
		return b.node("Reshape", xv.shape, []string{in.name, shape.name})
	}
	// Batch norm at inference, folded into x·scale + shift.
	m, vr := b.stats[name+".running_mean"], b.stats[name+".running_var"]
	if len(m.Data) != c || len(vr.Data) != c {
		panic(fmt.Sprintf("graphs: no running statistics for batch norm %q", name))
	}
	scale, shift := models.NewArray(1, c, 1, 1), models.NewArray(1, c, 1, 1)
	scale.Data, shift.Data = models.FoldBatchNorm(m.Data, vr.Data)
	y := b.node("Mul", xv.shape, []string{xv.name, b.constFloat(scale).name})
	return b.node("Add", xv.shape, []string{y.name, b.constFloat(shift).name})
}

func (b *builder) scaleShift(x, gamma, beta models.T) models.T {
	xv, g, bt := v(x), v(gamma), v(beta)
	if len(g.shape) == 1 { // [C] -> [1 C 1 1]
		c := g.shape[0]
		shape := b.constInts(1, c, 1, 1)
		g = b.node("Reshape", []int{1, c, 1, 1}, []string{g.name, shape})
		bt = b.node("Reshape", []int{1, c, 1, 1}, []string{bt.name, shape})
	} else { // [N C] -> [N C 1 1]
		g, bt = b.unsqueezeHW(g), b.unsqueezeHW(bt)
	}
	y := b.node("Mul", xv.shape, []string{xv.name, g.name})
	return b.node("Add", xv.shape, []string{y.name, bt.name})
}

func (b *builder) Gather(table, y models.T) models.T {
	return b.node("Gather", []int{v(y).shape[0], v(table).shape[1]}, []string{v(table).name, v(y).name}, attrInt("axis", 0))
}

// TimeEmbedding gathers rows of the sinusoid table for t = 0..T-1, computed
// by the same function as in training, so both lowerings agree exactly.
func (b *builder) TimeEmbedding(t models.T, dim int) models.T {
	steps := make([]int, b.T)
	for i := range steps {
		steps[i] = i
	}
	name := "time_embedding.table"
	if !b.used[name] {
		b.used[name] = true
		b.g.Inits = append(b.g.Inits, onnxwire.FloatTensor(name, []int{b.T, dim}, models.Sinusoid(steps, dim)))
	}
	return b.node("Gather", []int{v(t).shape[0], dim}, []string{name, v(t).name}, attrInt("axis", 0))
}

func (b *builder) ToMap(x models.T, h, w int) models.T {
	return b.node("Reshape", []int{v(x).shape[0], 1, h, w}, []string{v(x).name, b.constInts(-1, 1, h, w)})
}

func (b *builder) GlobalMean(x models.T) models.T {
	xs := v(x).shape
	p := b.node("GlobalAveragePool", []int{xs[0], xs[1], 1, 1}, []string{v(x).name})
	return b.node("Flatten", []int{xs[0], xs[1]}, []string{p.name}, attrInt("axis", 1))
}

func valueInfo(name string, elem int, dims ...any) onnxwire.Value {
	return onnxwire.Value{Name: name, ElemType: elem, Dims: dims}
}

// Build lowers the network of cfg with the given weights (and batch-norm
// running statistics) to an ONNX model with metadata. T is the number of
// diffusion steps (the range of t) for a denoiser.
func Build(cfg models.Config, weights, stats map[string]models.Array, T int, metadata map[string]string) (m *onnxwire.Model, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%v", r)
		}
	}()
	m = &onnxwire.Model{IRVersion: IRVersion, Producer: "condiff", Opsets: []onnxwire.Opset{{Domain: "", Version: Opset}}}
	g := &m.Graph
	g.Name = "condiff_" + string(cfg.Kind)
	b := &builder{g: g, weights: weights, stats: stats, T: T, used: map[string]bool{}}
	c, s := cfg.Channels, cfg.ImageSize
	x := value{contract.InputX, []int{-1, c, s, s}}
	g.Inputs = append(g.Inputs, valueInfo(contract.InputX, onnxwire.Float, "N", c, s, s))
	identity := func(from value, to string) {
		g.Nodes = append(g.Nodes, onnxwire.Node{Name: to, OpType: "Identity", Inputs: []string{from.name}, Outputs: []string{to}})
	}
	if cfg.Kind == contract.Classifier {
		logits, feat := models.Classifier{Cfg: cfg}.Forward(b, x)
		identity(v(logits), contract.OutputLogits)
		identity(v(feat), contract.OutputFeatures)
		g.Outputs = append(g.Outputs, valueInfo(contract.OutputLogits, onnxwire.Float, "N", cfg.NumClasses),
			valueInfo(contract.OutputFeatures, onnxwire.Float, "N", v(feat).shape[1]))
	} else {
		if T < 1 {
			return nil, fmt.Errorf("graphs: T=%d < 1", T)
		}
		t := value{contract.InputT, []int{-1}}
		y := value{contract.InputY, []int{-1}}
		g.Inputs = append(g.Inputs, valueInfo(contract.InputT, onnxwire.Int64, "N"))
		if cfg.Conditional() {
			g.Inputs = append(g.Inputs, valueInfo(contract.InputY, onnxwire.Int64, "N"))
		}
		eps := models.Denoiser{Cfg: cfg}.Forward(b, x, t, y)
		identity(v(eps), contract.OutputEps)
		g.Outputs = append(g.Outputs, valueInfo(contract.OutputEps, onnxwire.Float, "N", c, s, s))
	}
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		m.Metadata = append(m.Metadata, [2]string{k, metadata[k]})
	}
	return m, nil
}

// Attend is single-head attention over the H·W positions: q, k, v
// reshaped to [N C L], S = qᵀ·k/√C [N L L], P = Softmax(S) over the last
// axis, out = v·Pᵀ reshaped back to [N C H W].
func (b *builder) Attend(q, k, vv models.T) models.T {
	s := v(q).shape
	c, l := s[1], s[2]*s[3]
	flat := b.constInts(0, c, l)
	q3 := b.node("Reshape", []int{s[0], c, l}, []string{v(q).name, flat})
	k3 := b.node("Reshape", []int{s[0], c, l}, []string{v(k).name, flat})
	v3 := b.node("Reshape", []int{s[0], c, l}, []string{v(vv).name, flat})
	qt := b.node("Transpose", []int{s[0], l, c}, []string{q3.name}, attrInts("perm", 0, 2, 1))
	dot := b.node("MatMul", []int{s[0], l, l}, []string{qt.name, k3.name})
	scale := models.NewArray(1)
	scale.Data[0] = float32(1 / math.Sqrt(float64(c)))
	scaled := b.node("Mul", dot.shape, []string{dot.name, b.constFloat(scale).name})
	p := b.node("Softmax", dot.shape, []string{scaled.name}, attrInt("axis", -1))
	pt := b.node("Transpose", dot.shape, []string{p.name}, attrInts("perm", 0, 2, 1))
	o := b.node("MatMul", []int{s[0], c, l}, []string{v3.name, pt.name})
	return b.node("Reshape", s, []string{o.name, b.constInts(0, c, s[2], s[3])})
}
