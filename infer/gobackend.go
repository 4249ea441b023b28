package infer

import (
	"fmt"
	"sync/atomic"

	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/onnxwire"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/infer/goexec"
)

// goRunner is a model in the Go backend.
type goRunner struct {
	info    contract.Info
	m       *goexec.Model
	stopped atomic.Bool
}

// openGo opens the model in the Go backend: the contract is checked on
// condiff's own reading of the file, then onnx-go decodes it into goexec.
func openGo(path string, o Options) (*Session, error) {
	b, _, err := readModelBytes(path)
	if err != nil {
		return nil, err
	}
	return OpenGoBytes(path, b, o)
}

// OpenGoBytes opens a model held in memory (named name in errors) in the Go
// backend: for a browser, which has no files.
func OpenGoBytes(name string, b []byte, o Options) (*Session, error) {
	if o.Threads < 0 || o.Threads > MaxThreads {
		return nil, field.Errorf("infer", "Threads", o.Threads, "out of 0..%d (0: one per CPU)", MaxThreads)
	}
	path := name
	f, err := onnxwire.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("infer: %s is not an ONNX model: %w", path, err)
	}
	if !f.HasGraph {
		return nil, fmt.Errorf("infer: %s is not an ONNX model: it has no graph", path)
	}
	info, err := info(path, f)
	if err != nil {
		return nil, err
	}
	inits := map[string]bool{}
	for _, t := range f.Inits {
		inits[t.Name] = true
	}
	if err := contract.Check(path, info, graphTensors(f.Inputs, inits), graphTensors(f.Outputs, inits)); err != nil {
		return nil, err
	}
	m, err := goexec.Load(b, o.Threads)
	if err != nil {
		return nil, fmt.Errorf("infer: %s: Go backend: %w", path, err)
	}
	want := info.Inputs()
	if len(m.Inputs) != len(want) {
		return nil, fmt.Errorf("infer: %s: Go backend: the graph takes %d inputs, the contract %d", path, len(m.Inputs), len(want))
	}
	for i, w := range want {
		if m.Inputs[i] != w.Name {
			return nil, fmt.Errorf("infer: %s: Go backend: input %d is %q, the contract wants %q (in this order)", path, i, m.Inputs[i], w.Name)
		}
	}
	return &Session{Path: path, Info: info, Device: "cpu", Backend: BackendGo, r: &goRunner{info: info, m: m}}, nil
}

func (r *goRunner) terminate() { r.stopped.Store(true); r.m.Stop() }

func (r *goRunner) close() error { return nil }

func (r *goRunner) eps(x []float32, t, y []int64, out []float32) error {
	if r.stopped.Load() {
		return goexec.ErrStopped
	}
	n, c, s := len(t), r.info.Channels, r.info.ImageSize
	in := []goexec.Input{{Shape: []int{n, c, s, s}, F: x}, {Shape: []int{n}, I: t}}
	if r.info.Conditional() {
		in = append(in, goexec.Input{Shape: []int{n}, I: y})
	}
	outs, err := r.m.Run(in)
	if err != nil {
		return err
	}
	if len(outs[0].F) != len(out) {
		return fmt.Errorf("output %s has shape %v, want [%d %d %d %d]", contract.OutputEps, outs[0].Shape, n, c, s, s)
	}
	copy(out, outs[0].F)
	return nil
}

func (r *goRunner) classify(x []float32, n int) (logits, features []float32, shape []int64, err error) {
	if r.stopped.Load() {
		return nil, nil, nil, goexec.ErrStopped
	}
	c, s := r.info.Channels, r.info.ImageSize
	outs, err := r.m.Run([]goexec.Input{{Shape: []int{n, c, s, s}, F: x}})
	if err != nil {
		return nil, nil, nil, err
	}
	if len(outs) != 2 {
		return nil, nil, nil, fmt.Errorf("%d outputs, want logits and features", len(outs))
	}
	for _, d := range outs[1].Shape {
		shape = append(shape, int64(d))
	}
	return outs[0].F, outs[1].F, shape, nil
}
