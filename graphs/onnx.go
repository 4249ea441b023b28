// Package graphs lowers condiff's networks (models/) to ONNX graphs: the same
// definition that train/ lowers to gorgonia, written out as ONNX operators
// with the weights as initializers under their parameter names.
package graphs

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	pb "github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/condiff/condiff/contract"
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
	g       *pb.GraphProto
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

func attrInts(name string, v ...int) *pb.AttributeProto {
	a := &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INTS}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

func attrInt(name string, v int) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INT, I: int64(v)}
}

func attrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_FLOAT, F: v}
}

func attrString(name, v string) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_STRING, S: []byte(v)}
}

// node appends an operator and returns its output value.
func (b *builder) node(op string, shape []int, inputs []string, attrs ...*pb.AttributeProto) value {
	out := b.fresh(op)
	b.g.Node = append(b.g.Node, &pb.NodeProto{Name: out, OpType: op, Input: inputs, Output: []string{out}, Attribute: attrs})
	return value{out, slices.Clone(shape)}
}

// FloatTensor makes a float32 initializer.
func FloatTensor(name string, a models.Array) *pb.TensorProto {
	raw := make([]byte, 4*len(a.Data))
	for i, f := range a.Data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	t := &pb.TensorProto{Name: name, DataType: int32(pb.TensorProto_FLOAT), RawData: raw}
	for _, d := range a.Shape {
		t.Dims = append(t.Dims, int64(d))
	}
	return t
}

func int64Tensor(name string, vals ...int) *pb.TensorProto {
	raw := make([]byte, 8*len(vals))
	for i, x := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(x)))
	}
	return &pb.TensorProto{Name: name, DataType: int32(pb.TensorProto_INT64), RawData: raw, Dims: []int64{int64(len(vals))}}
}

func (b *builder) constFloat(a models.Array) value {
	name := b.fresh("const")
	b.g.Initializer = append(b.g.Initializer, FloatTensor(name, a))
	return value{name, slices.Clone(a.Shape)}
}

func (b *builder) constInts(vals ...int) string {
	name := b.fresh("shape")
	b.g.Initializer = append(b.g.Initializer, int64Tensor(name, vals...))
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
		b.g.Initializer = append(b.g.Initializer, FloatTensor(name, a))
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
		b.g.Initializer = append(b.g.Initializer, FloatTensor(name, models.Array{Shape: []int{b.T, dim}, Data: models.Sinusoid(steps, dim)}))
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

func valueInfo(name string, elem pb.TensorProto_DataType, dims ...any) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		dim := &pb.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case string:
			dim.Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		case int:
			dim.Value = &pb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{
		TensorType: &pb.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
}

// Build lowers the network of cfg with the given weights (and batch-norm
// running statistics) to an ONNX model with metadata. T is the number of
// diffusion steps (the range of t) for a denoiser.
func Build(cfg models.Config, weights, stats map[string]models.Array, T int, metadata map[string]string) (m *pb.ModelProto, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	g := &pb.GraphProto{Name: "condiff_" + string(cfg.Kind)}
	b := &builder{g: g, weights: weights, stats: stats, T: T, used: map[string]bool{}}
	c, s := cfg.Channels, cfg.ImageSize
	x := value{contract.InputX, []int{-1, c, s, s}}
	g.Input = append(g.Input, valueInfo(contract.InputX, pb.TensorProto_FLOAT, "N", c, s, s))
	identity := func(from value, to string) {
		g.Node = append(g.Node, &pb.NodeProto{Name: to, OpType: "Identity", Input: []string{from.name}, Output: []string{to}})
	}
	if cfg.Kind == contract.Classifier {
		logits, feat := models.Classifier{Cfg: cfg}.Forward(b, x)
		identity(v(logits), contract.OutputLogits)
		identity(v(feat), contract.OutputFeatures)
		g.Output = append(g.Output, valueInfo(contract.OutputLogits, pb.TensorProto_FLOAT, "N", cfg.NumClasses),
			valueInfo(contract.OutputFeatures, pb.TensorProto_FLOAT, "N", v(feat).shape[1]))
	} else {
		if T < 1 {
			return nil, fmt.Errorf("graphs: T=%d < 1", T)
		}
		t := value{contract.InputT, []int{-1}}
		y := value{contract.InputY, []int{-1}}
		g.Input = append(g.Input, valueInfo(contract.InputT, pb.TensorProto_INT64, "N"))
		if cfg.Conditional() {
			g.Input = append(g.Input, valueInfo(contract.InputY, pb.TensorProto_INT64, "N"))
		}
		eps := models.Denoiser{Cfg: cfg}.Forward(b, x, t, y)
		identity(v(eps), contract.OutputEps)
		g.Output = append(g.Output, valueInfo(contract.OutputEps, pb.TensorProto_FLOAT, "N", c, s, s))
	}
	m = &pb.ModelProto{IrVersion: IRVersion, ProducerName: "condiff", Graph: g,
		OpsetImport: []*pb.OperatorSetIdProto{{Domain: "", Version: Opset}}}
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: k, Value: metadata[k]})
	}
	return m, nil
}
