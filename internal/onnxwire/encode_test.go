package onnxwire

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// fromProto converts a generated ModelProto of the kind graphs/ writes into
// a Model; it fails on anything the writer cannot express.
func fromProto(m *pb.ModelProto) (*Model, error) {
	out := &Model{IRVersion: m.IrVersion, Producer: m.ProducerName}
	for _, o := range m.OpsetImport {
		out.Opsets = append(out.Opsets, Opset{Domain: o.Domain, Version: o.Version})
	}
	for _, kv := range m.MetadataProps {
		out.Metadata = append(out.Metadata, [2]string{kv.Key, kv.Value})
	}
	g := m.Graph
	out.Graph.Name = g.Name
	for _, n := range g.Node {
		nd := Node{Name: n.Name, OpType: n.OpType, Inputs: n.Input, Outputs: n.Output}
		for _, a := range n.Attribute {
			switch a.Type {
			case pb.AttributeProto_FLOAT, pb.AttributeProto_INT, pb.AttributeProto_STRING, pb.AttributeProto_INTS:
			default:
				return nil, fmt.Errorf("node %s: attribute %s of type %v", n.Name, a.Name, a.Type)
			}
			nd.Attrs = append(nd.Attrs, Attr{Name: a.Name, Type: int(a.Type), F: a.F, I: a.I, S: string(a.S), Ints: a.Ints})
		}
		out.Graph.Nodes = append(out.Graph.Nodes, nd)
	}
	for _, t := range g.Initializer {
		if len(t.FloatData)+len(t.Int64Data) > 0 {
			return nil, fmt.Errorf("initializer %s has typed data", t.Name)
		}
		out.Graph.Inits = append(out.Graph.Inits, Tensor{Name: t.Name, Dims: t.Dims, DataType: int(t.DataType), Raw: t.RawData})
	}
	values := func(vs []*pb.ValueInfoProto) []Value {
		var out []Value
		for _, v := range vs {
			tt := v.GetType().GetTensorType()
			val := Value{Name: v.Name, ElemType: int(tt.GetElemType())}
			for _, d := range tt.GetShape().GetDim() {
				if p, ok := d.Value.(*pb.TensorShapeProto_Dimension_DimParam); ok {
					val.Dims = append(val.Dims, p.DimParam)
				} else {
					val.Dims = append(val.Dims, int(d.GetDimValue()))
				}
			}
			out = append(out, val)
		}
		return out
	}
	out.Graph.Inputs, out.Graph.Outputs = values(g.Input), values(g.Output)
	return out, nil
}

// TestEncodeMatchesProtobuf: the shipped models (written by protobuf's own
// marshaller from generated types) re-encoded through Model are the same
// bytes, and what Encode writes decodes with the generated types to the
// same message.
func TestEncodeMatchesProtobuf(t *testing.T) {
	for _, path := range []string{"../../assets/pretrained/mnist-cbn.onnx", "../../assets/pretrained/mnist-clf.onnx", "../../assets/pretrained/fashion-cbn.onnx"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want pb.ModelProto
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		m, err := fromProto(&want)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got := Encode(m)
		if !bytes.Equal(got, b) {
			i := 0
			for i < min(len(got), len(b)) && got[i] == b[i] {
				i++
			}
			t.Fatalf("%s: Encode wrote %d bytes, the file has %d; first difference at byte %d", path, len(got), len(b), i)
		}
		var back pb.ModelProto
		if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, &want) {
			t.Fatalf("%s: the encoded model does not decode to the same message (%v)", path, err)
		}
	}
}
