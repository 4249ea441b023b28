package onnxwire

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorProto.DataType values condiff writes and reads.
const (
	Float = 1
	Int64 = 7
)

// AttributeProto.AttributeType values the writer emits.
const (
	AttrFloat  = 1
	AttrInt    = 2
	AttrString = 3
	AttrInts   = 7
)

// Model is an ONNX ModelProto as the writer emits it.
type Model struct {
	IRVersion int64
	Producer  string
	Graph     Graph
	Opsets    []Opset
	Metadata  [][2]string // key, value; in this order
}

// Graph is a GraphProto.
type Graph struct {
	Name    string
	Nodes   []Node
	Inits   []Tensor
	Inputs  []Value
	Outputs []Value
}

// Node is a NodeProto.
type Node struct {
	Name, OpType    string
	Inputs, Outputs []string
	Attrs           []Attr
}

// Attr is an AttributeProto of one of the Attr* types.
type Attr struct {
	Name string
	Type int
	F    float32
	I    int64
	S    string
	Ints []int64
}

// Tensor is an initializer: raw little-endian data of DataType.
type Tensor struct {
	Name     string
	Dims     []int64
	DataType int
	Raw      []byte
}

// Value is a graph input or output: a tensor of ElemType whose dimensions
// are each a size (int) or a symbolic name (string).
type Value struct {
	Name     string
	ElemType int
	Dims     []any
}

// FloatTensor is a float32 initializer.
func FloatTensor(name string, dims []int, data []float32) Tensor {
	raw := make([]byte, 4*len(data))
	for i, f := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return Tensor{Name: name, Dims: int64s(dims), DataType: Float, Raw: raw}
}

// Int64Tensor is a one-dimensional int64 initializer.
func Int64Tensor(name string, vals ...int) Tensor {
	raw := make([]byte, 8*len(vals))
	for i, x := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(x)))
	}
	return Tensor{Name: name, Dims: []int64{int64(len(vals))}, DataType: Int64, Raw: raw}
}

func int64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// Encode writes m in the protobuf wire format, fields in number order and
// proto3's zero values left out: the bytes protobuf's own marshaller
// writes for the same message (TestEncodeMatchesProtobuf).
func Encode(m *Model) []byte {
	var b []byte
	if m.IRVersion != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.IRVersion))
	}
	b = appendString(b, 2, m.Producer)
	b = appendMessage(b, 7, encodeGraph(&m.Graph))
	for _, o := range m.Opsets {
		var ob []byte
		ob = appendString(ob, 1, o.Domain)
		if o.Version != 0 {
			ob = protowire.AppendTag(ob, 2, protowire.VarintType)
			ob = protowire.AppendVarint(ob, uint64(o.Version))
		}
		b = appendMessage(b, 8, ob)
	}
	for _, kv := range m.Metadata {
		b = appendMessage(b, 14, appendString(appendString(nil, 1, kv[0]), 2, kv[1]))
	}
	return b
}

func encodeGraph(g *Graph) []byte {
	var b []byte
	for i := range g.Nodes {
		b = appendMessage(b, 1, encodeNode(&g.Nodes[i]))
	}
	b = appendString(b, 2, g.Name)
	for i := range g.Inits {
		b = appendMessage(b, 5, encodeTensor(&g.Inits[i]))
	}
	for i := range g.Inputs {
		b = appendMessage(b, 11, encodeValue(&g.Inputs[i]))
	}
	for i := range g.Outputs {
		b = appendMessage(b, 12, encodeValue(&g.Outputs[i]))
	}
	return b
}

func encodeNode(n *Node) []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = appendBytes(b, 1, []byte(s)) // repeated: "" is kept (an omitted optional input)
	}
	for _, s := range n.Outputs {
		b = appendBytes(b, 2, []byte(s))
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, encodeAttr(a))
	}
	return b
}

func encodeAttr(a Attr) []byte {
	b := appendString(nil, 1, a.Name)
	if a.F != 0 {
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	}
	if a.I != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	}
	b = appendString(b, 4, a.S)
	b = appendPacked(b, 8, a.Ints)
	if a.Type != 0 {
		b = protowire.AppendTag(b, 20, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Type))
	}
	return b
}

func encodeTensor(t *Tensor) []byte {
	b := appendPacked(nil, 1, t.Dims)
	if t.DataType != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.DataType))
	}
	b = appendString(b, 8, t.Name)
	if len(t.Raw) > 0 {
		b = appendBytes(b, 9, t.Raw)
	}
	return b
}

func encodeValue(v *Value) []byte {
	var shape []byte
	for _, d := range v.Dims {
		var db []byte
		switch d := d.(type) {
		case int:
			db = protowire.AppendTag(db, 1, protowire.VarintType)
			db = protowire.AppendVarint(db, uint64(int64(d)))
		case string:
			db = appendBytes(db, 2, []byte(d))
		}
		shape = appendMessage(shape, 1, db)
	}
	var tt []byte
	if v.ElemType != 0 {
		tt = protowire.AppendTag(tt, 1, protowire.VarintType)
		tt = protowire.AppendVarint(tt, uint64(v.ElemType))
	}
	tt = appendMessage(tt, 2, shape)
	b := appendString(nil, 1, v.Name)
	return appendMessage(b, 2, appendMessage(nil, 1, tt))
}

// appendString writes a proto3 singular string: nothing when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendBytes(b, num, []byte(s))
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendMessage writes a present sub-message (even an empty one).
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	return appendBytes(b, num, msg)
}

func appendPacked(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return appendBytes(b, num, p)
}
