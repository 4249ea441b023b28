package goexec

import (
	"os"
	"strings"
	"testing"

	"github.com/condiff/condiff/internal/onnxwire"
)

// FuzzLoad: hostile ONNX files (wrong shapes, huge dimensions, cycles,
// missing initializers, garbage) are loaded or refused, and a loaded one
// runs or fails, without a panic and without allocating what the file
// merely declares.
func FuzzLoad(f *testing.F) {
	w := make([]float32, 2*1*3*3)
	for i := range w {
		w[i] = float32(i) / 10
	}
	f.Add(model(17, map[string][]any{"X": {-1, 1, 4, 4}}, []onnxwire.Node{
		node("c", "Conv", []string{"X", "W", "B"}, "C", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1)),
		node("r", "Reshape", []string{"C", "S"}, "R"), node("s", "Sigmoid", []string{"R"}, "G"), node("m", "Mul", []string{"R", "G"}, "Y")},
		[]onnxwire.Tensor{onnxwire.FloatTensor("W", []int{2, 1, 3, 3}, w), onnxwire.FloatTensor("B", []int{2}, []float32{0.5, -0.5}), onnxwire.Int64Tensor("S", 0, -1)}, "Y"))
	// The attention core as graphs/ writes it: [N C L] reshapes, Transpose,
	// batched MatMul, Softmax.
	f.Add(model(17, map[string][]any{"X": {-1, 1, 4, 4}}, []onnxwire.Node{
		node("r", "Reshape", []string{"X", "S"}, "R"),
		node("t", "Transpose", []string{"R"}, "T", ints("perm", 0, 2, 1)),
		node("d", "MatMul", []string{"T", "R"}, "D"),
		node("p", "Softmax", []string{"D"}, "P", onnxwire.Attr{Name: "axis", Type: onnxwire.AttrInt, I: -1}),
		node("o", "MatMul", []string{"R", "P"}, "Y")},
		[]onnxwire.Tensor{onnxwire.Int64Tensor("S", 0, 1, 16)}, "Y"))
	if b, err := os.ReadFile("../testdata/torch_cbn.onnx"); err == nil {
		f.Add(b[:min(len(b), 2048)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(b, 1)
		if err != nil {
			return
		}
		// Under a 64 MiB cap: a value, a chain or a scratch past it is
		// refused by the memory plan, never an out-of-memory crash.
		m.mem.limit = 64 << 20
		in := make([]Input, len(m.Inputs))
		for i := range in {
			in[i] = Input{Shape: []int{1, 1, 4, 4}, F: make([]float32, 16)}
		}
		if _, err := m.Run(in); err != nil && strings.Contains(err.Error(), "the kernel failed") {
			t.Errorf("a kernel panicked (Run turned it into an error, but Load's checks or the kernel should refuse this): %v", err)
		}
		if m.mem.held > m.mem.limit {
			t.Errorf("the model holds %d bytes, over its cap %d", m.mem.held, m.mem.limit)
		}
	})
}
