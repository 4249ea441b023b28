package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/models"
)

// normEps is the epsilon of every normalisation, in both lowerings.
const normEps = models.NormEps

// bnStat is a batch norm's batch statistics in a training graph.
type bnStat struct {
	name  string
	stats *normStats // the batch statistics of the last run
}

// lowering is the gorgonia backend of models.Ops for a fixed batch size.
type lowering struct {
	g        *G.ExprGraph
	n        int
	training bool                    // batch norms use batch statistics
	prefix   string                  // added to parameter names (the AC classifier's "clf.")
	weights  map[string]models.Array // initial values by full name
	stats    map[string]models.Array // running statistics (inference)
	params   map[string]*G.Node
	order    []string // parameter names in declaration order
	bn       []bnStat

	// The graph's inputs besides x, each one node however many layers use it.
	temb   *G.Node // [N dim] sinusoidal embedding of the timesteps
	yhot   *G.Node // [N K] one-hot of the conditioning labels, gathered by every class table
	target *G.Node // [N K] one-hot of the cross-entropy targets (zero rows for dropped labels)
}

func newLowering(g *G.ExprGraph, n int, training bool, weights, stats map[string]models.Array) *lowering {
	return &lowering{g: g, n: n, training: training, weights: weights, stats: stats, params: map[string]*G.Node{}}
}

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(fmt.Sprintf("train: build graph: %v", err))
	}
	return n
}

func node(x models.T) *G.Node { return x.(*G.Node) }

func (l *lowering) constant(a models.Array, name string) *G.Node {
	t := tensor.New(tensor.WithShape(a.Shape...), tensor.WithBacking(append([]float32(nil), a.Data...)))
	return G.NewTensor(l.g, tensor.Float32, len(a.Shape), G.WithShape(a.Shape...), G.WithName(name), G.WithValue(t))
}

func (l *lowering) Param(name string, shape []int, init models.Init) models.T {
	name = l.prefix + name
	if p, ok := l.params[name]; ok {
		return p
	}
	a, ok := l.weights[name]
	if !ok {
		panic(fmt.Sprintf("train: no weights for parameter %q", name))
	}
	if fmt.Sprint(a.Shape) != fmt.Sprint(shape) {
		panic(fmt.Sprintf("train: parameter %q has shape %v, the model wants %v", name, a.Shape, shape))
	}
	p := l.constant(a, name)
	l.params[name] = p
	l.order = append(l.order, name)
	return p
}

func (l *lowering) Conv(x, w, b models.T, stride, pad int) models.T {
	return must(conv2d(node(x), node(w), node(b), stride, pad))
}

func (l *lowering) Linear(x, w, b models.T) models.T {
	y := must(G.Mul(node(x), node(w)))                                // [N Out]
	b2 := must(reshape(node(b), tensor.Shape{1, node(b).Shape()[0]})) // [1 Out]
	return must(G.BroadcastAdd(y, b2, nil, []byte{0}))
}

func (l *lowering) SiLU(x models.T) models.T {
	return must(G.ApplyOp(siluOp(node(x).Dims()), node(x)))
}

func (l *lowering) Add(a, b models.T) models.T {
	return must(G.ApplyOp(&addOp{dims: node(a).Dims()}, node(a), node(b)))
}

func (l *lowering) AddChannels(x, v models.T) models.T {
	return must(G.ApplyOp(&chanOp{kind: chanAdd}, node(x), node(v)))
}

func (l *lowering) Concat(a, b models.T) models.T {
	return must(G.ApplyOp(&catOp{}, node(a), node(b)))
}

func (l *lowering) Upsample(x models.T) models.T { return must(G.ApplyOp(upsampleOp(), node(x))) }

// NormAct is one fused op (normActOp) in training and for group norm;
// batch norm at inference composes its folded normalisation, the affine
// and SiLU.
func (l *lowering) NormAct(x, gamma, beta models.T, name string, kind models.NormKind, groups int) models.T {
	if kind != models.GroupNorm && !l.training {
		return l.SiLU(l.ScaleShift(l.foldedBatchNorm(x, name), gamma, beta))
	}
	op := &normActOp{name: l.prefix + name, shared: node(gamma).Dims() == 1}
	if kind == models.GroupNorm {
		op.groups = groups
	} else {
		op.st = &normStats{}
		l.bn = append(l.bn, bnStat{name: op.name, stats: op.st})
	}
	return must(G.ApplyOp(op, node(x), node(gamma), node(beta)))
}

// foldedBatchNorm is batch norm at inference: the running statistics,
// folded into x·a + b (models.FoldBatchNorm).
func (l *lowering) foldedBatchNorm(x models.T, name string) models.T {
	xn := node(x)
	s := xn.Shape() // [N C H W]
	name = l.prefix + name
	m, v := l.stats[name+".running_mean"], l.stats[name+".running_var"]
	if len(m.Data) != s[1] || len(v.Data) != s[1] {
		panic(fmt.Sprintf("train: no running statistics for batch norm %q", name))
	}
	a, b := models.NewArray(s[1]), models.NewArray(s[1])
	a.Data, b.Data = models.FoldBatchNorm(m.Data, v.Data)
	return must(G.ApplyOp(&chanOp{kind: chanAffine, shared: true}, xn, l.constant(a, name+".fold_scale"), l.constant(b, name+".fold_shift")))
}

func (l *lowering) ScaleShift(x, gamma, beta models.T) models.T {
	g := node(gamma) // [C] shared by the batch, or [N C]
	return must(G.ApplyOp(&chanOp{kind: chanAffine, shared: g.Dims() == 1}, node(x), g, node(beta)))
}

// Gather picks rows of table [K D] by the labels: the label input (one
// one-hot [N K] node shared by every table) times the table.
func (l *lowering) Gather(table, y models.T) models.T {
	k := node(table).Shape()[0]
	if l.yhot == nil {
		l.yhot = G.NewMatrix(l.g, tensor.Float32, G.WithShape(l.n, k), G.WithName("y_onehot"))
	}
	if l.yhot.Shape()[1] != k {
		panic(fmt.Sprintf("train: label tables of %d and %d rows in one graph", l.yhot.Shape()[1], k))
	}
	return must(G.Mul(l.yhot, node(table)))
}

// TimeEmbedding is the graph's time input: the sinusoids of the timesteps,
// computed on the host (models.Sinusoid) when the inputs are bound.
func (l *lowering) TimeEmbedding(t models.T, dim int) models.T {
	if l.temb == nil {
		l.temb = G.NewMatrix(l.g, tensor.Float32, G.WithShape(l.n, dim), G.WithName("time_embedding"))
	}
	if l.temb.Shape()[1] != dim {
		panic(fmt.Sprintf("train: time embeddings of width %d and %d in one graph", l.temb.Shape()[1], dim))
	}
	return l.temb
}

func (l *lowering) ToMap(x models.T, h, w int) models.T {
	return must(reshape(node(x), tensor.Shape{l.n, 1, h, w}))
}

func (l *lowering) GlobalMean(x models.T) models.T { return meanAxes(node(x), []int{2, 3}) }

// meanAxes averages x over the given axes (ascending). It reduces one axis
// at a time, from the last: gorgonia's Sum over several axes at once sums the
// wrong elements (seen with v0.9.18 on [N C H W] along 2 and 3).
func meanAxes(x *G.Node, axes []int) *G.Node {
	count := 1
	for i := len(axes) - 1; i >= 0; i-- {
		count *= x.Shape()[axes[i]]
		x = must(G.Sum(x, axes[i]))
	}
	return must(G.HadamardDiv(x, G.NewConstant(float32(count))))
}

// oneHot writes the one-hot rows of labels into d [len(labels) k]; with
// dropped, a label of -1 gives a zero row.
func oneHot(d []float32, k int, labels []int, dropped bool) error {
	clear(d)
	for i, c := range labels {
		if c == -1 && dropped {
			continue
		}
		if c < 0 || c >= k {
			return fmt.Errorf("label %d of sample %d is out of 0..%d", c, i, k-1)
		}
		d[i*k+c] = 1
	}
	return nil
}

// reshape returns x with another shape. gorgonia's Reshape returns a view of
// its input that later in-place ops may overwrite while the input is still
// needed (seen with v0.9.18: group norm corrupted the residual it read), so
// the view is taken of a copy.
func reshape(x *G.Node, shape tensor.Shape) (*G.Node, error) {
	c, err := G.Add(x, G.NewConstant(float32(0)))
	if err != nil {
		return nil, err
	}
	return G.Reshape(c, shape)
}
