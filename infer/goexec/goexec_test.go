package goexec

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condiff/condiff/internal/onnxwire"
)

// model writes a one-graph model: float32 inputs of these shapes (-1 for a
// dynamic dimension), the nodes, the initializers and one output.
func model(opset int64, inputs map[string][]any, nodes []onnxwire.Node, inits []onnxwire.Tensor, outputs ...string) []byte {
	m := &onnxwire.Model{IRVersion: 8, Producer: "test", Opsets: []onnxwire.Opset{{Version: opset}}}
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		dims := slices.Clone(inputs[k])
		for i, d := range dims {
			if d == -1 {
				dims[i] = "N"
			}
		}
		m.Graph.Inputs = append(m.Graph.Inputs, onnxwire.Value{Name: k, ElemType: onnxwire.Float, Dims: dims})
	}
	for _, o := range outputs {
		m.Graph.Outputs = append(m.Graph.Outputs, onnxwire.Value{Name: o, ElemType: onnxwire.Float})
	}
	m.Graph.Nodes, m.Graph.Inits = nodes, inits
	return onnxwire.Encode(m)
}

func node(name, op string, in []string, out string, attrs ...onnxwire.Attr) onnxwire.Node {
	return onnxwire.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs}
}

func ints(name string, v ...int64) onnxwire.Attr {
	return onnxwire.Attr{Name: name, Type: onnxwire.AttrInts, Ints: v}
}

// TestRefusals: what the Go backend cannot run faithfully is refused when
// the model is opened, with the node and the reason.
func TestRefusals(t *testing.T) {
	x := map[string][]any{"X": {-1, 4}}
	w := onnxwire.FloatTensor("W", []int{4}, []float32{1, 2, 3, 4})
	for _, c := range []struct {
		name string
		b    []byte
		want []string
	}{
		{"a node reading one tensor twice (onnx-go keeps one edge)",
			model(17, x, []onnxwire.Node{node("square", "Mul", []string{"X", "X"}, "Y")}, nil, "Y"),
			[]string{`node "square" (Mul)`, `reads "X" twice`}},
		{"an operator outside the supported set",
			model(17, x, []onnxwire.Node{node("tk", "Erf", []string{"X"}, "Y")}, nil, "Y"),
			[]string{`node "tk" (Erf): not supported by the Go backend`, "Add, BatchNormalization"}},
		{"an attribute the executor would ignore",
			model(17, x, []onnxwire.Node{node("c", "Concat", []string{"X", "X2"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 1}, onnxwire.Attr{Name: "extra", Type: onnxwire.AttrInt, I: 1})}, nil, "Y"),
			[]string{`node "c"`}},
		{"an opset outside the implemented range",
			model(11, x, []onnxwire.Node{node("a", "Add", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{w}, "Y"),
			[]string{"opset 11", "13 to 21"}},
		{"a cycle",
			model(17, x, []onnxwire.Node{node("a", "Add", []string{"X", "Z"}, "Y"), node("b", "Add", []string{"Y", "W"}, "Z")}, []onnxwire.Tensor{w}, "Y"),
			[]string{`node "`, "on a cycle"}},
		{"an input nothing makes",
			model(17, x, []onnxwire.Node{node("a", "Add", []string{"X", "ghost"}, "Y")}, nil, "Y"),
			[]string{`node "a" (Add)`, `input "ghost"`}},
		{"an initializer whose data does not fill its shape",
			model(17, x, []onnxwire.Node{node("a", "Add", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{{Name: "W", Dims: []int64{1 << 20}, DataType: onnxwire.Float, Raw: make([]byte, 16)}}, "Y"),
			[]string{`initializer "W"`, "holds 1048576 values, its data 4"}},
		{"a huge declared input shape (onnx-go would allocate it)",
			model(17, map[string][]any{"X": {1 << 20, 1 << 20}}, []onnxwire.Node{node("a", "Add", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{w}, "Y"),
			[]string{`value "X"`, "over"}},
		{"a value made twice",
			model(17, x, []onnxwire.Node{node("a", "Add", []string{"X", "W"}, "Y"), node("b", "Add", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{w}, "Y"),
			[]string{`node "b" (Add)`, `output "Y" is also made by node "a"`}},
		{"a grouped convolution",
			model(17, map[string][]any{"X": {1, 2, 4, 4}}, []onnxwire.Node{node("g", "Conv", []string{"X", "W"}, "Y", onnxwire.Attr{Name: "group", Type: onnxwire.AttrInt, I: 2})},
				[]onnxwire.Tensor{onnxwire.FloatTensor("W", []int{2, 1, 1, 1}, []float32{1, 1})}, "Y"),
			[]string{`node "g" (Conv)`, "group = 2"}},
		{"a negative dimension",
			model(17, map[string][]any{"X": {-5, 4}}, []onnxwire.Node{node("a", "Add", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{w}, "Y"),
			[]string{`value "X"`, "negative dimension"}},
		{"not ONNX", []byte("hello, world"), []string{"protobuf"}},
	} {
		_, err := Load(c.b, 1)
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		// A node's refusal is typed: its node and operator, apart.
		var ne *NodeError
		if isNode := strings.HasPrefix(c.want[0], `node "`); isNode != errors.As(err, &ne) {
			t.Errorf("%s: a *NodeError: %v, want %v (%v)", c.name, !isNode, isNode, err)
		} else if isNode && (ne.Node == "" || ne.Op == "" || !strings.HasPrefix(err.Error(), "node "+ne.Node+" ("+ne.Op+"): ")) {
			t.Errorf("%s: NodeError{Node: %s, Op: %s}, the message %q", c.name, ne.Node, ne.Op, err)
		}
		if unsupported := strings.Contains(c.want[0], "not supported"); unsupported != errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: errors.Is(err, ErrUnsupported) = %v", c.name, !unsupported)
		}
	}
}

// run loads a model and runs it on float32 inputs (in the inputs' sorted
// name order).
func run(t *testing.T, b []byte, in ...Input) []Output {
	t.Helper()
	m, err := Load(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			t.Fatalf("%s: value %d is %g, want %g", what, i, got[i], want[i])
		}
	}
}

// TestOperators checks operators against hand-computed answers, and the
// convolution against a direct loop (stride, padding, rectangular sizes).
func TestOperators(t *testing.T) {
	i64 := func(name string, v ...int) onnxwire.Tensor { return onnxwire.Int64Tensor(name, v...) }
	f := func(name string, dims []int, v ...float32) onnxwire.Tensor {
		return onnxwire.FloatTensor(name, dims, v)
	}
	x := Input{Shape: []int{2, 3}, F: []float32{1, 2, 3, 4, 5, 6}}
	cases := []struct {
		name  string
		nodes []onnxwire.Node
		inits []onnxwire.Tensor
		want  []float32
		shape []int
	}{
		{"Add broadcasting a row", []onnxwire.Node{node("n", "Add", []string{"X", "B"}, "Y")}, []onnxwire.Tensor{f("B", []int{3}, 10, 20, 30)},
			[]float32{11, 22, 33, 14, 25, 36}, []int{2, 3}},
		{"Mul broadcasting a column", []onnxwire.Node{node("n", "Mul", []string{"B", "X"}, "Y")}, []onnxwire.Tensor{f("B", []int{2, 1}, 2, -1)},
			[]float32{2, 4, 6, -4, -5, -6}, []int{2, 3}},
		{"Gather with a negative index", []onnxwire.Node{node("n", "Gather", []string{"X", "I"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 1})}, []onnxwire.Tensor{i64("I", -1, 0)},
			[]float32{3, 1, 6, 4}, []int{2, 2}},
		{"Reshape with 0 and -1", []onnxwire.Node{node("n", "Reshape", []string{"X", "S"}, "Y")}, []onnxwire.Tensor{i64("S", 0, -1, 1)},
			[]float32{1, 2, 3, 4, 5, 6}, []int{2, 3, 1}},
		{"Concat of a tensor with itself along axis 0 (two names)", []onnxwire.Node{node("i", "Identity", []string{"X"}, "X2"), node("n", "Concat", []string{"X", "X2"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 0})}, nil,
			[]float32{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, []int{4, 3}},
		{"Gemm with transB and a broadcast C", []onnxwire.Node{node("n", "Gemm", []string{"X", "W", "C"}, "Y", onnxwire.Attr{Name: "transB", Type: onnxwire.AttrInt, I: 1}, onnxwire.Attr{Name: "alpha", Type: onnxwire.AttrFloat, F: 2})},
			[]onnxwire.Tensor{f("W", []int{1, 3}, 1, 0, -1), f("C", []int{1}, 0.5)}, []float32{2*(1-3) + 0.5, 2*(4-6) + 0.5}, []int{2, 1}},
		{"MatMul", []onnxwire.Node{node("n", "MatMul", []string{"X", "W"}, "Y")}, []onnxwire.Tensor{f("W", []int{3, 2}, 1, 0, 0, 1, 1, 1)},
			[]float32{4, 5, 10, 11}, []int{2, 2}},
		{"MatMul of a batch [2 1 3]·[2 3 1]", []onnxwire.Node{node("r", "Reshape", []string{"X", "S"}, "R"), node("n", "MatMul", []string{"R", "W"}, "Y")},
			[]onnxwire.Tensor{i64("S", 2, 1, 3), f("W", []int{2, 3, 1}, 1, 0, -1, 0, 1, 1)}, []float32{-2, 11}, []int{2, 1, 1}},
		{"Transpose", []onnxwire.Node{node("n", "Transpose", []string{"X"}, "Y", onnxwire.Attr{Name: "perm", Type: onnxwire.AttrInts, Ints: []int64{1, 0}})}, nil,
			[]float32{1, 4, 2, 5, 3, 6}, []int{3, 2}},
		{"Transpose of the last two of three axes", []onnxwire.Node{node("r", "Reshape", []string{"X", "S"}, "R"), node("n", "Transpose", []string{"R"}, "Y", onnxwire.Attr{Name: "perm", Type: onnxwire.AttrInts, Ints: []int64{0, 2, 1}})},
			[]onnxwire.Tensor{i64("S", 1, 2, 3)}, []float32{1, 4, 2, 5, 3, 6}, []int{1, 3, 2}},
		{"Softmax over the last axis", []onnxwire.Node{node("n", "Softmax", []string{"X"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: -1})}, nil,
			[]float32{0.09003057, 0.24472847, 0.66524096, 0.09003057, 0.24472847, 0.66524096}, []int{2, 3}},
		{"Sigmoid", []onnxwire.Node{node("n", "Sigmoid", []string{"X"}, "Y")}, nil,
			[]float32{0.7310586, 0.8807971, 0.95257413, 0.98201376, 0.9933072, 0.99752736}, []int{2, 3}},
		{"SiLU (fused)", []onnxwire.Node{node("s", "Sigmoid", []string{"X"}, "S"), node("n", "Mul", []string{"S", "X"}, "Y")}, nil,
			[]float32{0.7310586, 2 * 0.8807971, 3 * 0.95257413, 4 * 0.98201376, 5 * 0.9933072, 6 * 0.99752736}, []int{2, 3}},
		{"Unsqueeze then Flatten", []onnxwire.Node{node("u", "Unsqueeze", []string{"X", "A"}, "U"), node("n", "Flatten", []string{"U"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 2})}, []onnxwire.Tensor{i64("A", 1)},
			[]float32{1, 2, 3, 4, 5, 6}, []int{2, 3}},
		{"Shape, Cast to float", []onnxwire.Node{node("s", "Shape", []string{"X"}, "S"), node("n", "Cast", []string{"S"}, "Y", onnxwire.Attr{Name: "to", Type: onnxwire.AttrInt, I: 1})}, nil,
			[]float32{2, 3}, []int{2}},
		{"Cos and Sin in float64", []onnxwire.Node{node("d", "Cast", []string{"X"}, "D", onnxwire.Attr{Name: "to", Type: onnxwire.AttrInt, I: 11}), node("c", "Cos", []string{"D"}, "C"), node("s", "Sin", []string{"D"}, "S"),
			node("a", "Add", []string{"C", "S"}, "A"), node("n", "Cast", []string{"A"}, "Y", onnxwire.Attr{Name: "to", Type: onnxwire.AttrInt, I: 1})}, nil,
			[]float32{float32(math.Cos(1) + math.Sin(1)), float32(math.Cos(2) + math.Sin(2)), float32(math.Cos(3) + math.Sin(3)), float32(math.Cos(4) + math.Sin(4)), float32(math.Cos(5) + math.Sin(5)), float32(math.Cos(6) + math.Sin(6))}, []int{2, 3}},
	}
	for _, c := range cases {
		out := run(t, model(17, map[string][]any{"X": {2, 3}}, c.nodes, c.inits, "Y"), x)
		near(t, c.name, out[0].F, c.want, 2e-6)
		if !slices.Equal(out[0].Shape, c.shape) {
			t.Errorf("%s: shape %v, want %v", c.name, out[0].Shape, c.shape)
		}
	}

	// Resize: nearest 2× (asymmetric, floor), as the exporters write it.
	img := Input{Shape: []int{1, 1, 2, 2}, F: []float32{1, 2, 3, 4}}
	out := run(t, model(17, map[string][]any{"X": {1, 1, 2, 2}}, []onnxwire.Node{node("n", "Resize", []string{"X", "", "S"}, "Y",
		onnxwire.Attr{Name: "mode", Type: onnxwire.AttrString, S: "nearest"}, onnxwire.Attr{Name: "coordinate_transformation_mode", Type: onnxwire.AttrString, S: "asymmetric"},
		onnxwire.Attr{Name: "nearest_mode", Type: onnxwire.AttrString, S: "floor"})}, []onnxwire.Tensor{f("S", []int{4}, 1, 1, 2, 2)}, "Y"), img)
	near(t, "Resize", out[0].F, []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0)

	// InstanceNormalization and GlobalAveragePool.
	out = run(t, model(17, map[string][]any{"X": {1, 1, 2, 2}}, []onnxwire.Node{node("n", "InstanceNormalization", []string{"X", "G", "B"}, "N", onnxwire.Attr{Name: "epsilon", Type: onnxwire.AttrFloat, F: 1e-5}),
		node("p", "GlobalAveragePool", []string{"N"}, "Y")}, []onnxwire.Tensor{f("G", []int{1}, 2), f("B", []int{1}, 3)}, "Y", "N"), img)
	sd := math.Sqrt(1.25 + 1e-5)
	near(t, "InstanceNormalization", out[1].F, []float32{float32(3 - 2*1.5/sd), float32(3 - 2*0.5/sd), float32(3 + 2*0.5/sd), float32(3 + 2*1.5/sd)}, 1e-6)
	near(t, "GlobalAveragePool", out[0].F, []float32{3}, 1e-6)

	// BatchNormalization (inference): (x − mean)/√(var + ε)·scale + B.
	out = run(t, model(17, map[string][]any{"X": {1, 1, 2, 2}}, []onnxwire.Node{node("n", "BatchNormalization", []string{"X", "G", "B", "M", "V"}, "Y")},
		[]onnxwire.Tensor{f("G", []int{1}, 2), f("B", []int{1}, 1), f("M", []int{1}, 2.5), f("V", []int{1}, 1.25)}, "Y"), img)
	near(t, "BatchNormalization", out[0].F, []float32{float32(1 - 2*1.5/sd), float32(1 - 2*0.5/sd), float32(1 + 2*0.5/sd), float32(1 + 2*1.5/sd)}, 1e-6)

	// Conv against a direct loop, with stride 2, padding, bias and sizes
	// that leave remainders of the 4×16 tile.
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct{ n, ci, h, w, co, k, s, p int }{{3, 5, 9, 7, 6, 3, 1, 1}, {2, 4, 8, 8, 8, 3, 2, 1}, {1, 3, 5, 5, 5, 1, 1, 0}, {2, 16, 8, 8, 17, 3, 1, 1}, {1, 2, 6, 5, 4, 5, 1, 2}, {2, 3, 7, 9, 5, 3, 1, 0}, {1, 64, 40, 40, 4, 3, 1, 1}, {2, 32, 7, 7, 32, 3, 1, 1}, {1, 8, 14, 13, 12, 3, 1, 1}} {
		xv := make([]float32, c.n*c.ci*c.h*c.w)
		wv := make([]float32, c.co*c.ci*c.k*c.k)
		bv := make([]float32, c.co)
		for _, s := range [][]float32{xv, wv, bv} {
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
		}
		oh, ow := (c.h+2*c.p-c.k)/c.s+1, (c.w+2*c.p-c.k)/c.s+1
		want := make([]float32, c.n*c.co*oh*ow)
		for n := 0; n < c.n; n++ {
			for o := 0; o < c.co; o++ {
				for y := 0; y < oh; y++ {
					for xx := 0; xx < ow; xx++ {
						v := float64(bv[o])
						for ch := 0; ch < c.ci; ch++ {
							for i := 0; i < c.k; i++ {
								for j := 0; j < c.k; j++ {
									sy, sx := y*c.s+i-c.p, xx*c.s+j-c.p
									if sy >= 0 && sy < c.h && sx >= 0 && sx < c.w {
										v += float64(xv[((n*c.ci+ch)*c.h+sy)*c.w+sx]) * float64(wv[((o*c.ci+ch)*c.k+i)*c.k+j])
									}
								}
							}
						}
						want[((n*c.co+o)*oh+y)*ow+xx] = float32(v)
					}
				}
			}
		}
		b := model(17, map[string][]any{"X": {-1, c.ci, c.h, c.w}}, []onnxwire.Node{node("n", "Conv", []string{"X", "W", "B"}, "Y",
			ints("kernel_shape", int64(c.k), int64(c.k)), ints("pads", int64(c.p), int64(c.p), int64(c.p), int64(c.p)), ints("strides", int64(c.s), int64(c.s)))},
			[]onnxwire.Tensor{f("W", []int{c.co, c.ci, c.k, c.k}, wv...), f("B", []int{c.co}, bv...)}, "Y")
		out := run(t, b, Input{Shape: []int{c.n, c.ci, c.h, c.w}, F: xv})
		// float32 sums of ci·k² products of unit normals.
		near(t, "Conv", out[0].F, want, 2e-5*math.Sqrt(float64(c.ci*c.k*c.k)))
	}
}

// TestRunAllocations: a model run again at a batch size it has seen
// allocates (almost) nothing: the value buffers are kept.
func TestRunAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	wv := make([]float32, 8*4*9)
	for i := range wv {
		wv[i] = float32(r.NormFloat64())
	}
	b := model(17, map[string][]any{"X": {-1, 4, 8, 8}}, []onnxwire.Node{
		node("c", "Conv", []string{"X", "W"}, "C", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1)),
		node("s", "Sigmoid", []string{"C"}, "S"), node("m", "Mul", []string{"C", "S"}, "Y")},
		[]onnxwire.Tensor{onnxwire.FloatTensor("W", []int{8, 4, 3, 3}, wv)}, "Y")
	m, err := Load(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := []Input{{Shape: []int{4, 4, 8, 8}, F: make([]float32, 4*4*8*8)}}
	if _, err := m.Run(in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10, func() { m.Run(in) })
	// The output list and its shape copies: a handful, none of tensor size.
	if allocs > 8 {
		t.Errorf("%.0f allocations per run at a seen batch size", allocs)
	}
}

// TestHostileRunsFail: what Load's checks let through and a kernel cannot
// compute (a Concat whose first input is omitted, a Resize of an empty
// tensor to a non-empty one) fails Run naming the node; an empty output
// builds nothing.
func TestHostileRunsFail(t *testing.T) {
	x := map[string][]any{"X": {-1, 1, 2, 2}}
	for _, c := range []struct {
		name  string
		b     []byte
		shape []int
		want  string
	}{
		{"Concat without its first input", model(17, x, []onnxwire.Node{node("cat", "Concat", []string{"", "X"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 0})}, nil, "Y"),
			[]int{1, 1, 2, 2}, `node "cat" (Concat): input 0 (input) is missing`},
		{"Resize of an empty tensor to sizes", model(17, x, []onnxwire.Node{node("up", "Resize", []string{"X", "R", "", "S"}, "Y")},
			[]onnxwire.Tensor{onnxwire.FloatTensor("R", []int{8}, make([]float32, 8)), onnxwire.Int64Tensor("S", 1, 1, 4, 4)}, "Y"),
			[]int{0, 1, 2, 2}, `node "up" (Resize): X [0 1 2 2] is empty`},
	} {
		m, err := Load(c.b, 2)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		_, err = m.Run([]Input{{Shape: c.shape, F: make([]float32, n)}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
	// An empty output: nothing to compute, no index maps.
	m, err := Load(model(17, x, []onnxwire.Node{node("up", "Resize", []string{"X", "", "S"}, "Y")},
		[]onnxwire.Tensor{onnxwire.FloatTensor("S", []int{4}, []float32{1, 1, 2, 2})}, "Y"), 2)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run([]Input{{Shape: []int{0, 1, 2, 2}, F: []float32{}}})
	if err != nil || !slices.Equal(out[0].Shape, []int{0, 1, 4, 4}) {
		t.Errorf("Resize of an empty batch: %v %v", out, err)
	}
}

// TestKernelPanicIsTheNodesError: a panic on a kernel's worker goroutine
// comes back as the node's error, not the end of the program.
func TestKernelPanicIsTheNodesError(t *testing.T) {
	m := &Model{threads: 4}
	s := &step{name: "k", op: "Test", run: func(m *Model, in []*tensor, out *tensor) error {
		m.parallel(1<<16, 1, func(lo, hi int) {
			if lo > 0 {
				var idx []int
				_ = idx[lo] // index out of range on a worker
			}
		})
		return nil
	}}
	m.slots = []tensor{{}}
	err := m.runStep(s)
	if err == nil || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("a worker's panic: %v", err)
	}
}

// TestStopWithinABlock: Stop ends a 4096³ MatMul (68·10⁹ multiply-adds,
// many seconds) and a one-image 1×1 Conv of 2048 channels on 64×64
// (17·10⁹, one product per image) within a second: the products look at
// it between blocks of StopBlock multiply-adds.
func TestStopWithinABlock(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MB inputs")
	}
	const n, c, hw = 4096, 2048, 64
	for _, k := range []struct {
		name string
		b    []byte
		in   []Input
	}{
		{"MatMul", model(17, map[string][]any{"A": {n, n}, "B": {n, n}}, []onnxwire.Node{node("mm", "MatMul", []string{"A", "B"}, "Y")}, nil, "Y"),
			[]Input{{Shape: []int{n, n}, F: make([]float32, n*n)}, {Shape: []int{n, n}, F: make([]float32, n*n)}}},
		{"Conv", model(17, map[string][]any{"X": {1, c, hw, hw}}, []onnxwire.Node{node("cv", "Conv", []string{"X", "W"}, "Y", ints("kernel_shape", 1, 1))},
			[]onnxwire.Tensor{onnxwire.FloatTensor("W", []int{c, c, 1, 1}, make([]float32, c*c))}, "Y"),
			[]Input{{Shape: []int{1, c, hw, hw}, F: make([]float32, c*hw*hw)}}},
	} {
		m, err := Load(k.b, 2)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		t0 := time.Now()
		go func() {
			_, err := m.Run(k.in)
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		stop := time.Now()
		m.Stop()
		err = <-done
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("%s: Run after Stop: %v (%s)", k.name, err, time.Since(t0))
		}
		if d := time.Since(stop); d > time.Second {
			t.Errorf("%s: Run returned %s after Stop; want within a block's time (well under a second)", k.name, d)
		}
	}
}

// TestMemoryPlan: a chain of values each a quarter of the bound runs
// (each freed after its reader: two live at a time) and allocates nothing
// the second time; one value past the bound fails naming the node and the
// figures; a graph of more than MaxNodes nodes is refused at Load.
func TestMemoryPlan(t *testing.T) {
	const n = 1 << 16 // 256 KiB of float32
	var nodes []onnxwire.Node
	prev := "X"
	for i := 0; i < 8; i++ {
		out := fmt.Sprintf("v%d", i)
		nodes = append(nodes, node(out, []string{"Sin", "Sigmoid"}[i%2], []string{prev}, out))
		prev = out
	}
	b := model(17, map[string][]any{"X": {n}}, nodes, nil, prev)
	m, err := Load(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.mem.limit = 4 * n * 4 // eight values of 256 KiB without the plan: 2 MiB
	in := []Input{{Shape: []int{n}, F: make([]float32, n)}}
	if _, err := m.Run(in); err != nil {
		t.Fatalf("a chain of values a quarter of the bound each: %v", err)
	}
	if m.mem.held > 2*n*4 {
		t.Errorf("holds %d bytes after a chain whose live values are two of %d", m.mem.held, n*4)
	}
	m.Run(in) // the pool now holds what the run takes beside the caller's output
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m.Run(in)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > n { // closures and the output list: no value (n·4 bytes)
		t.Errorf("a run at a seen size allocates %d bytes; a value is %d", d, n*4)
	}
	// Past the bound: two values live and a third of three times their size.
	b = model(17, map[string][]any{"X": {n}}, []onnxwire.Node{node("s", "Sin", []string{"X"}, "S"), node("c", "Cos", []string{"X"}, "C"),
		node("big", "Concat", []string{"X", "S", "C"}, "Y", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: 0})}, nil, "Y")
	if m, err = Load(b, 1); err != nil {
		t.Fatal(err)
	}
	m.mem.limit = 4 * n * 4
	_, err = m.Run(in)
	var me *ErrMemory
	if !errors.As(err, &me) || !strings.Contains(err.Error(), `node "big" (Concat): needs 0.8 MiB more while holding 0.5 MiB: over the Go backend's bound of 1.0 MiB`) {
		t.Errorf("a value past the bound: %v", err)
	}
	// Too many nodes.
	nodes = nodes[:0]
	prev = "X"
	for i := 0; i <= MaxNodes; i++ {
		out := fmt.Sprintf("i%d", i)
		nodes = append(nodes, node(out, "Identity", []string{prev}, out))
		prev = out
	}
	if _, err := Load(model(17, map[string][]any{"X": {1}}, nodes, nil, prev), 1); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d nodes: over the Go backend's bound of %d", MaxNodes+1, MaxNodes)) {
		t.Errorf("%d nodes: %v", MaxNodes+1, err)
	}
}

// BenchmarkConv times a 3×3 same convolution of the U-Net's shapes (batch
// 16, 32 channels in and out, 32×32 and 16×16) through the padded-input
// GEMM (runPadded) and through im2col, on two goroutines.
func BenchmarkConv(b *testing.B) {
	for _, hw := range []int{32, 16} {
		const n, ci, co = 16, 32, 32
		wv := make([]float32, co*ci*9)
		for i := range wv {
			wv[i] = float32(i%7) - 3
		}
		mb := model(17, map[string][]any{"X": {-1, ci, hw, hw}}, []onnxwire.Node{node("c", "Conv", []string{"X", "W"}, "Y",
			ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))},
			[]onnxwire.Tensor{onnxwire.FloatTensor("W", []int{co, ci, 3, 3}, wv)}, "Y")
		m, err := Load(mb, 2)
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float32, n*ci*hw*hw)
		for _, padded := range []bool{true, false} {
			b.Run(fmt.Sprintf("%dpx/padded=%v", hw, padded), func(b *testing.B) {
				saved := paddedConv
				paddedConv = padded
				defer func() { paddedConv = saved }()
				for b.Loop() {
					if _, err := m.Run([]Input{{Shape: []int{n, ci, hw, hw}, F: x}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestCrew: over many operators in a row (helpers kept alive between
// them), every part of each runs exactly once, and the helpers end once
// no operator comes for spinFor.
func TestCrew(t *testing.T) {
	m := &Model{threads: 4}
	const ops, w = 2000, 4
	var runs [w]atomic.Int64
	for range ops {
		m.workers(w, func(k int) { runs[k].Add(1) })
	}
	for k := range runs {
		if got := runs[k].Load(); got != ops {
			t.Errorf("part %d ran %d times in %d operators", k, got, ops)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.crew.live.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := m.crew.live.Load(); n != 0 {
		t.Errorf("%d helpers still running 5 s after the last operator (they end after %v idle)", n, spinFor)
	}
}

// TestFusedGroupNorm: group norm + per-(image, channel) affine + SiLU, as
// the exported networks write it, runs as one fused step, with the values
// of the same nodes run one by one (the same graph with the norm's output
// also a graph output, which fuse leaves alone), and with a direct float64
// computation.
func TestFusedGroupNorm(t *testing.T) {
	const n, c, hw, groups = 2, 4, 9, 2
	r := rand.New(rand.NewPCG(5, 6))
	normal := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(r.NormFloat64()*2 + 0.5)
		}
		return v
	}
	xv, gv, bv, ns, nb := normal(n*c*hw), normal(n*c), normal(n*c), normal(groups), normal(groups)
	nodes := []onnxwire.Node{
		node("r1", "Reshape", []string{"X", "S"}, "R"),
		node("in", "InstanceNormalization", []string{"R", "NS", "NB"}, "I", onnxwire.Attr{Name: "epsilon", Type: onnxwire.AttrFloat, F: 1e-5}),
		node("sh", "Shape", []string{"X"}, "XS"),
		node("r2", "Reshape", []string{"I", "XS"}, "N"),
		node("m", "Mul", []string{"N", "G"}, "P"),
		node("a", "Add", []string{"P", "B"}, "A"),
		node("s", "Sigmoid", []string{"A"}, "Z"),
		node("y", "Mul", []string{"A", "Z"}, "Y"),
	}
	inits := []onnxwire.Tensor{onnxwire.Int64Tensor("S", 0, groups, -1), onnxwire.FloatTensor("NS", []int{groups}, ns), onnxwire.FloatTensor("NB", []int{groups}, nb),
		onnxwire.FloatTensor("G", []int{n, c, 1, 1}, gv), onnxwire.FloatTensor("B", []int{n, c, 1, 1}, bv)}
	in := Input{Shape: []int{n, c, 3, 3}, F: xv}
	mb := model(17, map[string][]any{"X": {n, c, 3, 3}}, nodes, inits, "Y")
	m, err := Load(mb, 2)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, s := range m.steps {
		ops[s.op]++
	}
	if ops["InstanceNormalization"] != 0 || ops["Reshape"] != 0 || ops["ScaleShiftSiLU"] != 1 {
		t.Fatalf("the group norm was not fused: steps %v", ops)
	}
	fusedOut := run(t, mb, in)[0].F
	plain := run(t, model(17, map[string][]any{"X": {n, c, 3, 3}}, nodes, inits, "Y", "I"), in)[0].F
	want := make([]float32, len(xv))
	for i := 0; i < n; i++ {
		for g := 0; g < groups; g++ {
			grp := xv[(i*c+g*c/groups)*hw : (i*c+(g+1)*c/groups)*hw]
			var s, q float64
			for _, v := range grp {
				s, q = s+float64(v), q+float64(v)*float64(v)
			}
			mean := s / float64(len(grp))
			rstd := 1 / math.Sqrt(q/float64(len(grp))-mean*mean+1e-5)
			for j := 0; j < c/groups; j++ {
				ch := g*c/groups + j
				for k := 0; k < hw; k++ {
					p := (i*c+ch)*hw + k
					a := float64(gv[i*c+ch])*(float64(ns[g])*(float64(xv[p])-mean)*rstd+float64(nb[g])) + float64(bv[i*c+ch])
					want[p] = float32(a / (1 + math.Exp(-a)))
				}
			}
		}
	}
	// float32 kernels (the fused SiLU's exp to ~2 ulp) on values of size ~10.
	near(t, "fused against float64", fusedOut, want, 1e-5*10)
	near(t, "fused against node by node", fusedOut, plain, 1e-5*10)
}
