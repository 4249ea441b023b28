package goexec

import (
	"fmt"
	"slices"
	"sort"

	onnx "github.com/owulveryck/onnx-go"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	gt "gorgonia.org/tensor"

	"github.com/condiff/condiff/internal/onnxwire"
)

// backend is what onnx-go decodes into: a weighted directed graph with one
// node per ONNX value (graph input, initializer or node output), an edge
// from each node output to each of its inputs weighted by the input's
// position, the initializers' tensors on their nodes and each operator on
// its output node (onnx.Backend).
type backend struct {
	*simple.WeightedDirectedGraph
	byID map[int64]*vnode
}

// vnode is one value: onnx.Namer and onnx.DataCarrier.
type vnode struct {
	id     int64
	name   string
	tensor gt.Tensor
	op     *onnx.Operation
	outs   int // outputs of the operator that made it
}

func (n *vnode) ID() int64                   { return n.id }
func (n *vnode) SetName(s string)            { n.name = s }
func (n *vnode) GetName() string             { return n.name }
func (n *vnode) SetTensor(t gt.Tensor) error { n.tensor = t; return nil }
func (n *vnode) GetTensor() gt.Tensor        { return n.tensor }
func (n *vnode) String() string              { return n.name }
func (b *backend) NewNode() graph.Node       { return &vnode{id: b.WeightedDirectedGraph.NewNode().ID()} }
func (b *backend) AddNode(n graph.Node) {
	b.WeightedDirectedGraph.AddNode(n)
	b.byID[n.ID()] = n.(*vnode)
}
func newBackend() *backend {
	return &backend{simple.NewWeightedDirectedGraph(0, 0), map[int64]*vnode{}}
}

// ApplyOperation records the operator on its output nodes.
func (b *backend) ApplyOperation(op onnx.Operation, outs ...graph.Node) error {
	for _, o := range outs {
		v, ok := o.(*vnode)
		if !ok {
			return fmt.Errorf("%s: output node of another kind", op.Name)
		}
		if v.op != nil {
			return fmt.Errorf("value %q is the output of two operators", v.name)
		}
		v.op, v.outs = &op, len(outs)
	}
	return nil
}

// inputs lists the values a node output reads, ordered by the edges'
// weights (the input positions onnx-go recorded).
func (b *backend) inputs(v *vnode) []string {
	type in struct {
		pos  float64
		name string
	}
	var ins []in
	it := b.From(v.id)
	for it.Next() {
		to := it.Node()
		w, _ := b.Weight(v.id, to.ID())
		ins = append(ins, in{w, to.(*vnode).name})
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].pos < ins[j].pos })
	out := make([]string, len(ins))
	for i, x := range ins {
		out[i] = x.name
	}
	return out
}

// MinOpset and MaxOpset bound the default-domain operator sets whose
// semantics the executor implements for every operator it supports.
const (
	MinOpset = 13
	MaxOpset = 21
)

// MaxElements bounds any one tensor's element count, declared or computed
// (2^28 float32: 1 GiB).
const MaxElements = 1 << 28

// decode fills a backend through onnx-go, after checks that keep a
// hostile file from reaching it (onnx-go allocates what a file declares and
// panics on some malformed graphs), and checks that onnx-go's graph holds
// every node as the file has it. f is condiff's own reading of b
// (onnxwire.Decode); decode returns the graph and f.
func decode(b []byte, f *onnxwire.File) (*backend, *onnxwire.File, error) {
	if err := precheck(f); err != nil {
		return nil, nil, err
	}
	g := newBackend()
	if err := unmarshal(g, b); err != nil {
		return nil, nil, fmt.Errorf("onnx-go: %w", err)
	}
	byName := map[string]*vnode{}
	for _, v := range g.byID {
		if _, dup := byName[v.name]; !dup || v.op != nil {
			byName[v.name] = v
		}
	}
	for i, n := range f.Nodes {
		for _, o := range n.Outputs {
			v := byName[o]
			if v == nil || v.op == nil || v.op.Name != n.OpType {
				return nil, nil, nodeErrorf(nodeName(n, i), n.OpType, "onnx-go's graph has no operator for its output %q", o)
			}
			want := slices.Clone(n.Inputs)
			if len(want) == 0 { // onnx-go gives an input-less operator a placeholder input
				want = []string{n.Name + "/input"}
			}
			// onnx-go makes an edge to the value named "" as well; an
			// omitted optional input keeps its position.
			got := g.inputs(v)
			if !slices.Equal(got, want) {
				return nil, nil, nodeErrorf(nodeName(n, i), n.OpType, "onnx-go's graph gives it the inputs %q, the file %q: %s", got, want, lostReason(want))
			}
		}
	}
	return g, f, nil
}

// lostReason explains the usual way onnx-go loses an input: one edge per
// pair of values, so a node that reads a tensor twice keeps one of them.
func lostReason(want []string) string {
	seen := map[string]bool{}
	for _, w := range want {
		if seen[w] {
			return fmt.Sprintf("it reads %q twice, and onnx-go keeps one edge between two values, so an input is lost; the Go backend cannot run this model (rewrite the node, e.g. Mul(X, X) as Pow(X, 2), or use --backend ort)", w)
		}
		seen[w] = true
	}
	return "onnx-go did not keep the node's wiring"
}

func nodeName(n onnxwire.NodeInfo, i int) string {
	if n.Name != "" {
		return fmt.Sprintf("%q", n.Name)
	}
	return fmt.Sprintf("#%d", i)
}

// unmarshal runs onnx-go's decoder, turning its panics into errors.
func unmarshal(g *backend, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return onnx.NewModel(g).UnmarshalBinary(b)
}

// precheck refuses, before onnx-go sees the file, what it would allocate
// blindly or panic on, and what the executor cannot run faithfully: the
// opset, shapes over MaxElements, initializers whose data does not fill
// their shape, values made twice, cycles and reads of values nothing
// makes.
func precheck(f *onnxwire.File) error {
	if !f.HasGraph || len(f.Nodes) == 0 {
		return fmt.Errorf("the file has no graph or an empty one")
	}
	opset := int64(-1)
	for _, o := range f.Opsets {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			opset = o.Version
		}
	}
	if opset < MinOpset || opset > MaxOpset {
		return fmt.Errorf("opset %d: the Go backend runs opsets %d to %d (export at opset 17, or use --backend ort)", opset, MinOpset, MaxOpset)
	}
	for _, vs := range [][]onnxwire.ValueInfo{f.Inputs, f.Outputs, f.Values} {
		for _, v := range vs {
			if v.NegativeDim {
				return fmt.Errorf("value %q: shape %v has a negative dimension", v.Name, v.Dims)
			}
			if _, err := elements(v.Dims, true); err != nil {
				return fmt.Errorf("value %q: %w", v.Name, err)
			}
		}
	}
	made := map[string]int{} // value → node index, -1: input or initializer
	for _, in := range f.Inputs {
		made[in.Name] = -1
	}
	for _, t := range f.Inits {
		n, err := elements(t.Dims, false)
		if err != nil {
			return fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		if t.DataType != onnxwire.Float && t.DataType != onnxwire.Int64 {
			return fmt.Errorf("initializer %q: element type %s; the Go backend reads float32 and int64", t.Name, onnxwire.ElemTypeName(t.DataType))
		}
		if t.DataLen < 0 {
			return fmt.Errorf("initializer %q: raw_data of %d bytes is no whole number of %s values", t.Name, t.RawBytes, onnxwire.ElemTypeName(t.DataType))
		}
		if t.DataLen != n {
			return fmt.Errorf("initializer %q: shape %v holds %d values, its data %d", t.Name, t.Dims, n, t.DataLen)
		}
		made[t.Name] = -1
	}
	for i, n := range f.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			return nodeErrorf(nodeName(n, i), n.OpType, "domain %q; the Go backend runs the default ONNX domain", n.Domain)
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, dup := made[o]; dup {
				what := "a graph input or initializer"
				if j >= 0 {
					what = "node " + nodeName(f.Nodes[j], j)
				}
				return nodeErrorf(nodeName(n, i), n.OpType, "its output %q is also made by %s", o, what)
			}
			made[o] = i
		}
	}
	// Every input is made somewhere, and following inputs never comes back
	// to a node (no cycle): a depth-first walk from each node.
	state := make([]byte, len(f.Nodes)) // 0 new, 1 on the path, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return nodeErrorf(nodeName(f.Nodes[i], i), f.Nodes[i].OpType, "on a cycle: its output feeds back into its own inputs")
		case 2:
			return nil
		}
		state[i] = 1
		for _, in := range f.Nodes[i].Inputs {
			if in == "" {
				continue
			}
			j, ok := made[in]
			if !ok {
				return nodeErrorf(nodeName(f.Nodes[i], i), f.Nodes[i].OpType, "input %q is no graph input, initializer or node output", in)
			}
			if j >= 0 {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		return nil
	}
	for i := range f.Nodes {
		if err := visit(i); err != nil {
			return err
		}
	}
	for _, o := range f.Outputs {
		if _, ok := made[o.Name]; !ok {
			return fmt.Errorf("graph output %q is made by no node", o.Name)
		}
	}
	return nil
}

// elements is the element count of a shape; symbolic (-1) dimensions are
// allowed where dynamic is true, and count as 1.
func elements(dims []int64, dynamic bool) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 && dynamic {
			continue
		}
		if d < 0 || d > MaxElements || n*d > MaxElements {
			return 0, fmt.Errorf("shape %v: over %d elements or a negative dimension", dims, MaxElements)
		}
		n *= d
	}
	return int(n), nil
}
