package onnxwire

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// TestDecodeONNXAgainstProtobuf: the hand-written wire reader agrees with
// the generated protobuf decoder on every field it reads, for a PyTorch
// export (packed dims, named dynamic axes) and condiff's shipped model.
func TestDecodeONNXAgainstProtobuf(t *testing.T) {
	for _, path := range []string{"../../infer/testdata/torch_cbn.onnx", "../../assets/pretrained/mnist-clf.onnx", "../../assets/pretrained/mnist-cbn.onnx"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want pb.ModelProto
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		g := want.Graph
		if got.IRVersion != want.IrVersion || got.Producer != want.ProducerName || !got.HasGraph ||
			len(got.Opsets) != len(want.OpsetImport) || got.Opsets[0].Version != want.OpsetImport[0].Version {
			t.Fatalf("%s: header %d %q %v", path, got.IRVersion, got.Producer, got.Opsets)
		}
		if len(got.Metadata) != len(want.MetadataProps) {
			t.Fatalf("%s: %d metadata entries, want %d", path, len(got.Metadata), len(want.MetadataProps))
		}
		for i, p := range want.MetadataProps {
			if got.Metadata[i] != [2]string{p.Key, p.Value} {
				t.Fatalf("%s: metadata %d: %v", path, i, got.Metadata[i])
			}
		}
		if len(got.Nodes) != len(g.Node) || len(got.Inits) != len(g.Initializer) {
			t.Fatalf("%s: %d nodes, %d initializers; want %d, %d", path, len(got.Nodes), len(got.Inits), len(g.Node), len(g.Initializer))
		}
		for i, n := range g.Node {
			gn := got.Nodes[i]
			if gn.OpType != n.OpType || gn.Name != n.Name || gn.Domain != n.Domain || !slices.Equal(gn.Inputs, n.Input) || !slices.Equal(gn.Outputs, n.Output) {
				t.Fatalf("%s: node %d is %+v, want %s %q %q in %q out %q", path, i, gn, n.OpType, n.Name, n.Domain, n.Input, n.Output)
			}
		}
		for i, in := range g.Initializer {
			n := len(in.FloatData) + len(in.Int64Data) + len(in.Int32Data) + len(in.DoubleData)
			if in.RawData != nil {
				n = len(in.RawData) / map[int32]int{1: 4, 7: 8, 6: 4, 11: 8}[in.DataType]
			}
			if got.Inits[i].DataType != int64(in.DataType) || got.Inits[i].DataLen != n {
				t.Fatalf("%s: initializer %s: type %d with %d values, want %d with %d", path, in.Name, got.Inits[i].DataType, got.Inits[i].DataLen, in.DataType, n)
			}
			if got.Inits[i].Name != in.Name || !slices.Equal(got.Inits[i].Dims, in.Dims) {
				t.Fatalf("%s: initializer %d: %+v, want %s %v", path, i, got.Inits[i], in.Name, in.Dims)
			}
		}
		for _, set := range []struct {
			got  []ValueInfo
			want []*pb.ValueInfoProto
		}{{got.Inputs, g.Input}, {got.Outputs, g.Output}} {
			if len(set.got) != len(set.want) {
				t.Fatalf("%s: %d values, want %d", path, len(set.got), len(set.want))
			}
			for i, v := range set.want {
				tt := v.GetType().GetTensorType()
				var dims []int64
				for _, d := range tt.GetShape().GetDim() {
					if _, ok := d.Value.(*pb.TensorShapeProto_Dimension_DimValue); ok {
						dims = append(dims, d.GetDimValue())
					} else {
						dims = append(dims, -1)
					}
				}
				gv := set.got[i]
				if gv.Name != v.Name || gv.ElemType != int64(tt.GetElemType()) || !slices.Equal(gv.Dims, dims) {
					t.Fatalf("%s: value %s: %+v, want type %d dims %v", path, v.Name, gv, tt.GetElemType(), dims)
				}
			}
		}
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} { // a bad tag; a graph field longer than the file
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%x) accepted garbage", bad)
		}
	}
}

// TestFloat32s: an encoded float32 initializer reads back bit for bit from
// its raw_data; an int64 one and one whose data is not there are refused,
// naming the tensor.
func TestFloat32s(t *testing.T) {
	vals := []float32{1.5, -0.0, float32(math.Inf(1)), 3.1415927, math.Float32frombits(0x7fc00001), 1e-40}
	g := Graph{Inits: []Tensor{FloatTensor("w", []int{2, 3}, vals), Int64Tensor("shape", 2, 3)}}
	f, err := Decode(Encode(&Model{IRVersion: 8, Graph: g, Opsets: []Opset{{Version: 17}}}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Inits[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if math.Float32bits(got[i]) != math.Float32bits(vals[i]) {
			t.Errorf("value %d: %#x, want %#x", i, math.Float32bits(got[i]), math.Float32bits(vals[i]))
		}
	}
	if _, err := f.Inits[1].Float32s(); err == nil || !strings.Contains(err.Error(), `"shape"`) {
		t.Errorf("an int64 initializer: %v", err)
	}
	short := f.Inits[0]
	short.Raw = short.Raw[:8]
	if _, err := short.Float32s(); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("raw_data too short: %v", err)
	}
}
