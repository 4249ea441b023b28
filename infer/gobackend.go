package infer

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/onnxwire"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/infer/goexec"
)

// goRunner is a model in the Go backend.
type goRunner struct {
	outs    []int // the positions of the contract's outputs among the graph's
	info    contract.Info
	m       *goexec.Model
	stopped atomic.Bool
}

// openGo opens the model in the Go backend: the contract is checked on
// condiff's own reading of the file, then onnx-go decodes it into goexec.
func openGo(path string, o Options) (*Session, error) {
	b, err := readFileBounded(path)
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
	m, err := goexec.LoadDecoded(b, f, o.Threads)
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
	r := &goRunner{info: info, m: m}
	// Outputs by name, as ONNX Runtime takes them: the file's order is the
	// exporter's business.
	names := []string{contract.OutputEps}
	if info.Kind == contract.Classifier {
		names = []string{contract.OutputLogits, contract.OutputFeatures}
	}
	for _, name := range names {
		k := slices.Index(m.Outputs, name)
		if k < 0 {
			return nil, fmt.Errorf("infer: %s: Go backend: the graph has no output %q (it has %q)", path, name, m.Outputs)
		}
		r.outs = append(r.outs, k)
	}
	return &Session{Path: path, Info: info, Device: "cpu", Backend: BackendGo, r: r}, nil
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
	eps := outs[r.outs[0]]
	if err := checkOutput(contract.OutputEps, goType(eps), eps.Shape, []int{n, c, s, s}); err != nil {
		return err
	}
	copy(out, eps.F)
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
	lg, ft := outs[r.outs[0]], outs[r.outs[1]]
	if err := checkOutput(contract.OutputLogits, goType(lg), lg.Shape, []int{n, r.info.NumClasses}); err != nil {
		return nil, nil, nil, err
	}
	if err := checkOutput(contract.OutputFeatures, goType(ft), ft.Shape, []int{n, -1}); err != nil {
		return nil, nil, nil, err
	}
	for _, d := range ft.Shape {
		shape = append(shape, int64(d))
	}
	return lg.F, ft.F, shape, nil
}

// goType names an output's element type as the contract does.
func goType(o goexec.Output) string {
	if o.F == nil && o.I != nil {
		return contract.Int64
	}
	return contract.Float32
}
