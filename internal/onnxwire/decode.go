// Package onnxwire reads and writes the ONNX protobuf wire format with
// protowire alone: the reader takes what inspect, the model contract and
// the Go backend's checks need, the writer what graphs/ emits.
//
// It registers no protobuf messages, on purpose. onnx-go (the Go backend's
// decoder) registers the ONNX messages in protobuf's global registry under
// their names ("onnx.ModelProto", ...); any generated ONNX package linked
// into the same binary registers the same names, and protobuf panics at
// start-up on the clash unless the conflict policy is relaxed (an
// environment variable or a linker flag). With the exporter writing through
// this package, onnx-go is the only package that registers ONNX messages
// in any condiff binary. Generated ONNX types appear only in this package's
// tests, as the reference the wire code is checked against.
package onnxwire

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// File is the part of an ONNX ModelProto that Decode reads, straight from
// the wire format (onnx.proto3 field numbers in the comments). Initializer
// data, attributes and everything else are skipped without being copied.
type File struct {
	IRVersion int64         // ModelProto.ir_version = 1
	Producer  string        // ModelProto.producer_name = 2
	Opsets    []Opset       // ModelProto.opset_import = 8
	Metadata  [][2]string   // ModelProto.metadata_props = 14, in file order
	HasGraph  bool          // ModelProto.graph = 7
	Nodes     []NodeInfo    // GraphProto.node = 1
	Inits     []Initializer // GraphProto.initializer = 5
	Inputs    []ValueInfo   // GraphProto.input = 11
	Outputs   []ValueInfo   // GraphProto.output = 12
	Values    []ValueInfo   // GraphProto.value_info = 13
}

// NodeInfo is a node's name, operator and wiring.
type NodeInfo struct {
	Name    string   // NodeProto.name = 3
	OpType  string   // NodeProto.op_type = 4
	Domain  string   // NodeProto.domain = 7
	Inputs  []string // NodeProto.input = 1 ("" for an omitted optional input)
	Outputs []string // NodeProto.output = 2
}

// Opset is one operator set the model imports.
type Opset struct {
	Domain  string // OperatorSetIdProto.domain = 1
	Version int64  // OperatorSetIdProto.version = 2
}

// Initializer is a weight's name, shape, element type and how many
// elements its data holds (whichever data field carries them; -1 when raw
// data is not a whole number of elements of a known size).
type Initializer struct {
	Name     string  // TensorProto.name = 8
	Dims     []int64 // TensorProto.dims = 1
	DataType int64   // TensorProto.data_type = 2
	DataLen  int     // raw_data = 9, float_data = 4, int32_data = 5, int64_data = 7, double_data = 10
	RawBytes int     // raw_data's length in bytes (DataLen is -1 when it is no whole number of elements)
	Raw      []byte  // raw_data itself, a view into the decoded bytes (nil when the data is elsewhere)
}

// MetadataMap is the file's metadata_props as a map (a key given twice:
// the last value).
func (f *File) MetadataMap() map[string]string {
	md := make(map[string]string, len(f.Metadata))
	for _, kv := range f.Metadata {
		md[kv[0]] = kv[1]
	}
	return md
}

// Float32s is a float32 initializer's values, read from its raw_data
// (little-endian, as ONNX stores it); other element types and data held in
// float_data are refused, naming the tensor.
func (t Initializer) Float32s() ([]float32, error) {
	if t.DataType != Float {
		return nil, fmt.Errorf("initializer %q: element type %s, not float", t.Name, ElemTypeName(t.DataType))
	}
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	if t.Raw == nil || int64(len(t.Raw)) != 4*n {
		return nil, fmt.Errorf("initializer %q: %d values of shape %v are not in raw_data (%d bytes there)", t.Name, n, t.Dims, len(t.Raw))
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return out, nil
}

// elemSize is the byte size of an element type's raw data (0: unknown).
func elemSize(t int64) int {
	switch t {
	case 1, 6: // float, int32
		return 4
	case 7, 11: // int64, double
		return 8
	case 2, 3, 9: // uint8, int8, bool
		return 1
	case 10, 16: // float16, bfloat16
		return 2
	}
	return 0
}

// count is the number of elements of a repeated numeric field, packed or
// not (fixed: their byte size; 0 for varints).
func count(typ protowire.Type, v []byte, fixed int, dst *int) int {
	switch typ {
	case protowire.BytesType:
		b, n := protowire.ConsumeBytes(v)
		if n < 0 {
			return n
		}
		if fixed > 0 {
			*dst += len(b) / fixed
			return n
		}
		for len(b) > 0 {
			_, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return k
			}
			b = b[k:]
			*dst++
		}
		return n
	case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
		*dst++
	}
	return -1
}

// ValueInfo is a graph input's or output's name, element type and shape.
type ValueInfo struct {
	Name     string  // ValueInfoProto.name = 1
	HasType  bool    // ValueInfoProto.type = 2 → TypeProto.tensor_type = 1
	ElemType int64   // TypeProto.Tensor.elem_type = 1
	Dims     []int64 // TypeProto.Tensor.shape = 2 → dim = 1: dim_value = 1, or -1 (dim_param = 2, or unknown)
	// NegativeDim: a dim_value below 0 (malformed; Dims holds it as read).
	NegativeDim bool
}

// fields calls f with each field of message b; f returns the bytes it
// consumed of the value, or -1 to have the value skipped.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) int) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m := f(num, typ, b)
		if m < 0 {
			m = protowire.ConsumeFieldValue(num, typ, b)
		}
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

// sub decodes a length-delimited field as a message.
func sub(typ protowire.Type, v []byte, f func(num protowire.Number, typ protowire.Type, v []byte) int) (int, error) {
	if typ != protowire.BytesType {
		return -1, nil
	}
	msg, n := protowire.ConsumeBytes(v)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return n, fields(msg, f)
}

func str(typ protowire.Type, v []byte, dst *string) int {
	if typ != protowire.BytesType {
		return -1
	}
	s, n := protowire.ConsumeBytes(v)
	if n >= 0 {
		*dst = string(s)
	}
	return n
}

func varint(typ protowire.Type, v []byte, dst *int64) int {
	if typ != protowire.VarintType {
		return -1
	}
	x, n := protowire.ConsumeVarint(v)
	if n >= 0 {
		*dst = int64(x)
	}
	return n
}

// Decode reads the ModelProto fields of File from b.
func Decode(b []byte) (*File, error) {
	m := &File{}
	var err error
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	// one decodes a sub-message and records its error.
	one := func(typ protowire.Type, v []byte, f func(protowire.Number, protowire.Type, []byte) int) int {
		n, e := sub(typ, v, f)
		keep(e)
		return n
	}
	valueInfoOf := func(typ protowire.Type, v []byte, dst *[]ValueInfo) int {
		var vi ValueInfo
		n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
			switch num {
			case 1:
				return str(typ, v, &vi.Name)
			case 2:
				return one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
					if num != 1 {
						return -1
					}
					vi.HasType = true
					return one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
						switch num {
						case 1:
							return varint(typ, v, &vi.ElemType)
						case 2:
							vi.Dims = []int64{}
							return one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
								if num != 1 {
									return -1
								}
								d := int64(-1)
								n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
									if num == 1 {
										k := varint(typ, v, &d)
										if k >= 0 && d < 0 {
											vi.NegativeDim = true
										}
										return k
									}
									return -1
								})
								vi.Dims = append(vi.Dims, d)
								return n
							})
						}
						return -1
					})
				})
			}
			return -1
		})
		*dst = append(*dst, vi)
		return n
	}
	e := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) int {
		switch num {
		case 1:
			return varint(typ, v, &m.IRVersion)
		case 2:
			return str(typ, v, &m.Producer)
		case 8:
			var o Opset
			n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
				switch num {
				case 1:
					return str(typ, v, &o.Domain)
				case 2:
					return varint(typ, v, &o.Version)
				}
				return -1
			})
			m.Opsets = append(m.Opsets, o)
			return n
		case 14:
			var kv [2]string
			n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
				if num == 1 || num == 2 {
					return str(typ, v, &kv[num-1])
				}
				return -1
			})
			m.Metadata = append(m.Metadata, kv)
			return n
		case 7:
			m.HasGraph = true
			return one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
				switch num {
				case 1:
					var nd NodeInfo
					n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
						var s string
						var k int
						switch num {
						case 1:
							if k = str(typ, v, &s); k >= 0 {
								nd.Inputs = append(nd.Inputs, s)
							}
						case 2:
							if k = str(typ, v, &s); k >= 0 {
								nd.Outputs = append(nd.Outputs, s)
							}
						case 3:
							k = str(typ, v, &nd.Name)
						case 4:
							k = str(typ, v, &nd.OpType)
						case 7:
							k = str(typ, v, &nd.Domain)
						default:
							k = -1
						}
						return k
					})
					m.Nodes = append(m.Nodes, nd)
					return n
				case 5:
					var in Initializer
					raw := -1
					n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
						switch {
						case num == 8:
							return str(typ, v, &in.Name)
						case num == 2:
							return varint(typ, v, &in.DataType)
						case num == 9 && typ == protowire.BytesType:
							b, n := protowire.ConsumeBytes(v)
							raw, in.Raw = len(b), b
							return n
						case num == 4 || num == 5:
							return count(typ, v, map[protowire.Number]int{4: 4, 5: 0}[num], &in.DataLen)
						case num == 7:
							return count(typ, v, 0, &in.DataLen)
						case num == 10:
							return count(typ, v, 8, &in.DataLen)
						case num == 1 && typ == protowire.VarintType:
							var d int64
							n := varint(typ, v, &d)
							in.Dims = append(in.Dims, d)
							return n
						case num == 1 && typ == protowire.BytesType: // packed
							packed, n := protowire.ConsumeBytes(v)
							for len(packed) > 0 && n >= 0 {
								d, k := protowire.ConsumeVarint(packed)
								if k < 0 {
									keep(protowire.ParseError(k))
									break
								}
								in.Dims = append(in.Dims, int64(d))
								packed = packed[k:]
							}
							return n
						}
						return -1
					})
					if raw >= 0 {
						in.RawBytes = raw
						if sz := elemSize(in.DataType); sz > 0 && raw%sz == 0 {
							in.DataLen = raw / sz
						} else {
							in.DataLen = -1
						}
					}
					m.Inits = append(m.Inits, in)
					return n
				case 11:
					return valueInfoOf(typ, v, &m.Inputs)
				case 12:
					return valueInfoOf(typ, v, &m.Outputs)
				case 13:
					return valueInfoOf(typ, v, &m.Values)
				}
				return -1
			})
		}
		return -1
	})
	keep(e)
	if err != nil {
		return nil, fmt.Errorf("protobuf: %w", err)
	}
	return m, nil
}

// ElemTypeName names an ONNX TensorProto.DataType as the contract does.
func ElemTypeName(t int64) string {
	switch t {
	case 1:
		return "float32"
	case 7:
		return "int64"
	case 6:
		return "int32"
	case 11:
		return "float64"
	case 10:
		return "float16"
	case 16:
		return "bfloat16"
	case 2:
		return "uint8"
	case 3:
		return "int8"
	case 9:
		return "bool"
	case 8:
		return "string"
	}
	return fmt.Sprintf("type %d", t)
}
