package infer

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// onnxFile is the part of an ONNX ModelProto that inspect and the contract
// read, decoded straight from the protobuf wire format (onnx.proto3 field
// numbers in the comments). Initializer data, attributes and everything else
// are skipped without being copied. A hand-written reader keeps the sampler
// free of any ONNX library that would pull a tensor package into it.
type onnxFile struct {
	IRVersion int64         // ModelProto.ir_version = 1
	Producer  string        // ModelProto.producer_name = 2
	Opsets    []opset       // ModelProto.opset_import = 8
	Metadata  [][2]string   // ModelProto.metadata_props = 14, in file order
	HasGraph  bool          // ModelProto.graph = 7
	OpTypes   []string      // GraphProto.node = 1 → NodeProto.op_type = 4
	Inits     []initializer // GraphProto.initializer = 5
	Inputs    []valueInfo   // GraphProto.input = 11
	Outputs   []valueInfo   // GraphProto.output = 12
}

type opset struct {
	Domain  string // OperatorSetIdProto.domain = 1
	Version int64  // OperatorSetIdProto.version = 2
}

type initializer struct {
	Name string  // TensorProto.name = 8
	Dims []int64 // TensorProto.dims = 1
}

type valueInfo struct {
	Name     string  // ValueInfoProto.name = 1
	HasType  bool    // ValueInfoProto.type = 2 → TypeProto.tensor_type = 1
	ElemType int64   // TypeProto.Tensor.elem_type = 1
	Dims     []int64 // TypeProto.Tensor.shape = 2 → dim = 1: dim_value = 1, or -1 (dim_param = 2, or unknown)
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

// decodeONNX reads the ModelProto fields of onnxFile from b.
func decodeONNX(b []byte) (*onnxFile, error) {
	m := &onnxFile{}
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
	valueInfoOf := func(typ protowire.Type, v []byte, dst *[]valueInfo) int {
		var vi valueInfo
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
										return varint(typ, v, &d)
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
			var o opset
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
					var op string
					n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
						if num == 4 {
							return str(typ, v, &op)
						}
						return -1
					})
					m.OpTypes = append(m.OpTypes, op)
					return n
				case 5:
					var in initializer
					n := one(typ, v, func(num protowire.Number, typ protowire.Type, v []byte) int {
						switch {
						case num == 8:
							return str(typ, v, &in.Name)
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
					m.Inits = append(m.Inits, in)
					return n
				case 11:
					return valueInfoOf(typ, v, &m.Inputs)
				case 12:
					return valueInfoOf(typ, v, &m.Outputs)
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

// elemTypeName names an ONNX TensorProto.DataType as the contract does.
func elemTypeName(t int64) string {
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
