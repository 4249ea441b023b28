// Package goexec is condiff's pure-Go ONNX executor: the Go backend of
// sampling and evaluation, for machines without the ONNX Runtime library
// (and for CGO_ENABLED=0, cross-compiled and WebAssembly builds).
//
// A model is decoded by onnx-go (github.com/owulveryck/onnx-go) into this
// package's graph (onnx.Backend: one node per value, an edge per input
// weighted by its position, operators on their outputs); condiff's own
// wire reader (internal/onnxwire) checks the file before onnx-go sees it
// and checks onnx-go's graph against the file after, so that a model onnx-go
// cannot represent faithfully (a node that reads one tensor twice loses an
// input there) is refused, naming the node, instead of computed wrongly.
// The executor then runs the nodes in file order (ONNX requires a
// topologically sorted graph; precheck verifies it has no cycle).
//
// Supported: the operators in Supported, float32 and int64 tensors,
// opsets MinOpset..MaxOpset. Anything else is refused when the model is
// opened, naming the node.
package goexec

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/condiff/condiff/internal/onnxwire"
)

// Model is a decoded, compiled ONNX model. Run is not safe for concurrent
// use (the value buffers are the model's).
type Model struct {
	Inputs  []string // graph inputs that are not initializers, in file order
	Outputs []string
	steps   []step
	slots   []tensor
	in, out []int // slots of the inputs and outputs
	threads int
	scratch [][]float32 // per worker: im2col columns, or a padded input and its product
	offs    []int       // the padded convolution's row offsets (one convolution runs at a time)
	stop    atomic.Bool
	crew    crew // the goroutines operators split their work over
	mem     memory
	frees   [][]int // per step: the slots whose last reader it is
	values  []int   // the slots of graph inputs and node outputs
}

// ErrStopped is returned by Run after Stop.
var ErrStopped = errors.New("stopped")

// ErrUnsupported is wrapped by the NodeError of an operator the Go
// backend does not run.
var ErrUnsupported = errors.New("not supported")

// NodeError is a refusal (at Load) or failure (at Run) of one node: its
// name, its ONNX operator and why. Callers that need more than the text
// (inspect, tests) take it apart with errors.As; errors.Is(err,
// ErrUnsupported) tells an operator the backend lacks.
type NodeError struct {
	Node string // the node's name, or "#i" for an unnamed one
	Op   string // its ONNX operator type
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %s (%s): %v", e.Node, e.Op, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

func nodeErrorf(node, op, format string, a ...any) error {
	return &NodeError{Node: node, Op: op, Err: fmt.Errorf(format, a...)}
}

// Stop makes the run in progress end, and every later run fail, with
// ErrStopped. It may be called from any goroutine. The products (Conv,
// MatMul, Gemm) look at it between blocks of at most StopBlock
// multiply-adds, the element-wise kernels between blocks of StopBlock
// elements, and Run after every node; a copy (Concat, Resize, Transpose)
// runs to its end, at most MaxElements values.
func (m *Model) Stop() { m.stop.Store(true) }

// StopBlock bounds the work a kernel does between looks at Stop: 2²⁴
// multiply-adds, a few milliseconds on one core.
const StopBlock = 1 << 24

// stopped reports whether Stop was called: kernels return early on it
// (their output is then garbage, and Run returns ErrStopped).
func (m *Model) stopped() bool { return m.stop.Load() }

// step is one node: its kernel, input slots (-1: an omitted optional
// input) and output slot.
type step struct {
	name, op string
	in       []int
	out      int
	run      opFunc
	args     []*tensor // reused argument list
	attrs    attrs     // the node's attributes, for fuse
}

type opFunc func(m *Model, in []*tensor, out *tensor) error

// Load decodes and compiles an ONNX model. threads bounds the goroutines a
// run uses (0: one per CPU).
func Load(b []byte, threads int) (*Model, error) {
	f, err := onnxwire.Decode(b)
	if err != nil {
		return nil, err
	}
	return LoadDecoded(b, f, threads)
}

// LoadDecoded is Load for a caller that has read the file with
// onnxwire.Decode already (f, of these bytes b): the file is parsed once
// by condiff's reader and once by onnx-go, not twice by the first.
func LoadDecoded(b []byte, f *onnxwire.File, threads int) (*Model, error) {
	g, f, err := decode(b, f)
	if err != nil {
		return nil, err
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if len(f.Nodes) > MaxNodes {
		return nil, fmt.Errorf("%d nodes: over the Go backend's bound of %d", len(f.Nodes), MaxNodes)
	}
	m := &Model{threads: threads, scratch: make([][]float32, threads), mem: memory{limit: MaxMemory}}
	slot := map[string]int{}
	get := func(name string) int {
		if i, ok := slot[name]; ok {
			return i
		}
		slot[name] = len(m.slots)
		m.slots = append(m.slots, tensor{})
		return slot[name]
	}
	inits := map[string]bool{}
	for _, t := range f.Inits {
		inits[t.Name] = true
	}
	byName := map[string]*vnode{}
	for _, v := range g.byID {
		if inits[v.name] && v.tensor != nil {
			byName[v.name] = v
		}
	}
	for _, t := range f.Inits {
		v := byName[t.Name]
		if v == nil {
			return nil, fmt.Errorf("initializer %q: onnx-go's graph holds no data for it", t.Name)
		}
		ct, err := fromGorgonia(v.tensor)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		ct.keep = true
		if err := m.mem.reserve(int64(4*len(ct.f) + 8*len(ct.i) + 8*len(ct.d))); err != nil {
			return nil, fmt.Errorf("initializers: %w", err)
		}
		m.slots[get(t.Name)] = *ct
	}
	for _, in := range f.Inputs {
		if inits[in.Name] {
			continue
		}
		if in.HasType && in.ElemType != onnxwire.Float && in.ElemType != onnxwire.Int64 {
			return nil, fmt.Errorf("input %q: element type %s; the Go backend takes float32 and int64 inputs", in.Name, onnxwire.ElemTypeName(in.ElemType))
		}
		m.Inputs = append(m.Inputs, in.Name)
		m.in = append(m.in, get(in.Name))
	}
	ops := map[string]*vnode{}
	for _, v := range g.byID {
		if v.op != nil {
			ops[v.name] = v
		}
	}
	for i, n := range f.Nodes {
		if len(n.Outputs) != 1 {
			return nil, nodeErrorf(nodeName(n, i), n.OpType, "%d outputs; the Go backend runs single-output operators", len(n.Outputs))
		}
		op := ops[n.Outputs[0]].op // decode checked that it is there, with this type
		c, ok := compilers[n.OpType]
		if !ok {
			return nil, nodeErrorf(nodeName(n, i), n.OpType, "%w by the Go backend (it runs %s; use --backend ort)", ErrUnsupported, strings.Join(Supported(), ", "))
		}
		k, err := c(attrs{op.Attributes, map[string]bool{}}, len(n.Inputs))
		if err != nil {
			return nil, &NodeError{Node: nodeName(n, i), Op: n.OpType, Err: err}
		}
		s := step{name: nodeName(n, i), op: n.OpType, out: get(n.Outputs[0]), run: k, attrs: attrs{op.Attributes, map[string]bool{}}}
		for _, in := range n.Inputs {
			if in == "" {
				s.in = append(s.in, -1)
				continue
			}
			s.in = append(s.in, get(in))
		}
		s.args = make([]*tensor, len(s.in))
		m.steps = append(m.steps, s)
	}
	for _, o := range f.Outputs {
		m.Outputs = append(m.Outputs, o.Name)
		m.out = append(m.out, get(o.Name))
	}
	m.fuse()
	m.plan()
	for j := range m.slots {
		m.slots[j].mem = &m.mem
	}
	return m, nil
}

// Input is one graph input's value: F for float32, I for int64, with its
// shape.
type Input struct {
	Shape []int
	F     []float32
	I     []int64
}

// Run computes the graph's outputs for these inputs (in Inputs' order).
// The returned tensors' data is the model's and valid until the next Run:
// copy what is kept.
func (m *Model) Run(inputs []Input) ([]Output, error) {
	if len(inputs) != len(m.in) {
		return nil, fmt.Errorf("%d inputs given, the model takes %d (%s)", len(inputs), len(m.in), strings.Join(m.Inputs, ", "))
	}
	// Every value of the last run was released after its last reader but
	// the outputs (the caller's until now) and, after a failed run, those
	// it did not reach: their producers reuse or pool their buffers.
	for _, j := range m.values {
		t := &m.slots[j]
		if t.view {
			t.f, t.i, t.d, t.view, t.base = nil, nil, nil, false, nil
		}
		t.dead, t.refs = false, 0
	}
	for k, in := range inputs {
		t := &m.slots[m.in[k]]
		t.view = true
		t.shape = append(t.shape[:0], in.Shape...)
		t.f, t.i = in.F, in.I
		t.dt = f32
		if in.F == nil {
			t.dt = i64
		}
		if n := t.size(); n != len(in.F)+len(in.I) {
			return nil, fmt.Errorf("input %s: shape %v holds %d values, %d given", m.Inputs[k], in.Shape, n, len(in.F)+len(in.I))
		}
	}
	for si := range m.steps {
		if m.stop.Load() {
			return nil, ErrStopped
		}
		s := &m.steps[si]
		for k, j := range s.in {
			s.args[k] = nil
			if j >= 0 {
				s.args[k] = &m.slots[j]
			}
		}
		if err := m.runStep(s); err != nil {
			return nil, &NodeError{Node: s.name, Op: s.op, Err: err}
		}
		for _, j := range m.frees[si] {
			m.release(j)
		}
		if m.stopped() {
			return nil, ErrStopped
		}
	}
	outs := make([]Output, len(m.out))
	for k, j := range m.out {
		t := &m.slots[j]
		outs[k] = Output{Shape: slices.Clone(t.shape), F: t.f, I: t.i}
	}
	return outs, nil
}

// runStep runs one node's kernel; a panic in it, or in any of its worker
// goroutines (which hand theirs on), becomes the node's error: a model the
// checks at Load let through must not end the program.
func (m *Model) runStep(s *step) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the kernel failed on this input (%v); the model is outside what the Go backend checks (try --backend ort)", r)
		}
	}()
	return s.run(m, s.args, &m.slots[s.out])
}

// Output is one graph output.
type Output struct {
	Shape []int
	F     []float32
	I     []int64
}
