package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/models"
)

// graph is a compiled gorgonia graph of a network for a fixed batch size:
// the denoiser's training loss, the classifier's loss, or an inference
// forward pass.
type graph struct {
	cfg   models.Config
	g     *G.ExprGraph
	vm    G.VM
	l     *lowering
	x     *G.Node // [N C H W] input: x_t for a denoiser, images for a classifier
	t     *Times
	y     *Labels // conditioning labels (denoiser) or targets (classifier)
	out   *G.Node // eps [N C H W] or logits [N K]
	feat  *G.Node // classifier features [N D]
	noise *G.Node // denoiser target [N C H W]
	loss  *G.Node // scalar total loss
	mse   *G.Node // denoiser MSE
	aux   *G.Node // auxiliary CE (ac) or classifier CE
	learn []*G.Node

	// M_AC: x0_hat = x_t·c1 − eps·c2, judged by the classifier against onehot.
	c1, c2 *G.Node // [N 1 1 1]
	acY    *Labels
}

// graphSpec says which graph to build.
type graphSpec struct {
	cfg      models.Config
	n        int
	training bool // loss and gradients; batch statistics for batch norms
	weights  map[string]models.Array
	stats    map[string]models.Array
	// M_AC only
	clf       *models.Config // classifier architecture; its weights are "clf."-prefixed in weights
	acWeight  float64
	clfFrozen bool
}

func newGraph(s graphSpec) (gr *graph, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	c := s.cfg
	g := G.NewGraph()
	l := newLowering(g, s.n, s.training, s.weights, s.stats)
	gr = &graph{cfg: c, g: g, l: l, t: &Times{V: make([]int, s.n)}, y: &Labels{V: make([]int, s.n)}}
	gr.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(s.n, c.Channels, c.ImageSize, c.ImageSize), G.WithName("x"))

	if c.Kind == "classifier" {
		logits, feat := models.Classifier{Cfg: c}.Forward(l, gr.x)
		gr.out, gr.feat = node(logits), node(feat)
		if s.training {
			gr.aux = l.crossEntropy(gr.out, gr.y)
			gr.loss = gr.aux
		}
	} else {
		gr.out = node(models.Denoiser{Cfg: c}.Forward(l, gr.x, gr.t, gr.y))
		if s.training {
			gr.noise = G.NewTensor(g, tensor.Float32, 4, G.WithShape(gr.out.Shape()...), G.WithName("noise"))
			gr.mse = must(G.Mean(must(G.Square(must(G.Sub(gr.out, gr.noise))))))
			gr.loss = gr.mse
			if s.clf != nil && s.acWeight > 0 {
				gr.c1 = G.NewTensor(g, tensor.Float32, 4, G.WithShape(s.n, 1, 1, 1), G.WithName("ac.c1"))
				gr.c2 = G.NewTensor(g, tensor.Float32, 4, G.WithShape(s.n, 1, 1, 1), G.WithName("ac.c2"))
				x0 := must(G.Sub(
					must(G.BroadcastHadamardProd(gr.x, gr.c1, nil, []byte{1, 2, 3})),
					must(G.BroadcastHadamardProd(gr.out, gr.c2, nil, []byte{1, 2, 3})))) // x0_hat [N C H W]
				denoiserParams := len(l.order)
				l.prefix = "clf."
				logits, _ := models.Classifier{Cfg: *s.clf}.Forward(l, x0)
				l.prefix = ""
				gr.acY = &Labels{V: make([]int, s.n)}
				gr.aux = l.crossEntropy(node(logits), gr.acY)
				gr.loss = must(G.Add(gr.mse, must(G.Mul(gr.aux, G.NewConstant(float32(s.acWeight))))))
				if s.clfFrozen {
					l.order = l.order[:denoiserParams]
				}
			}
		}
	}
	var opts []G.VMOpt
	if s.training {
		for _, name := range l.order {
			gr.learn = append(gr.learn, l.params[name])
		}
		if _, err := G.Grad(gr.loss, gr.learn...); err != nil {
			return nil, fmt.Errorf("gradient: %w", err)
		}
		opts = append(opts, G.BindDualValues(gr.learn...))
	}
	gr.vm = G.NewTapeMachine(g, opts...)
	return gr, nil
}

// crossEntropy is the mean over the batch of −log softmax(logits)[label];
// a label of -1 (a dropped label) contributes nothing.
func (l *lowering) crossEntropy(logits *G.Node, y *Labels) *G.Node {
	onehot := l.onehot(logits.Shape()[1], y, true)
	lsm := must(G.LogSoftMax(logits, 1))
	s := must(G.Sum(must(G.HadamardProd(lsm, onehot))))
	return must(G.HadamardDiv(must(G.Neg(s)), G.NewConstant(float32(l.n))))
}

// run sets the image input, fills labels and times, and runs the graph once.
func (gr *graph) run(x []float32) error {
	if err := G.Let(gr.x, tensor.New(tensor.WithShape(gr.x.Shape()...), tensor.WithBacking(x))); err != nil {
		return err
	}
	if err := gr.l.fill(); err != nil {
		return err
	}
	gr.vm.Reset()
	return gr.vm.RunAll()
}

// letVec binds a float32 slice to an input node.
func letVec(n *G.Node, v []float32) error {
	return G.Let(n, tensor.New(tensor.WithShape(n.Shape()...), tensor.WithBacking(v)))
}

// values returns a node's float32 data after a run.
func values(n *G.Node) []float32 { return n.Value().Data().([]float32) }

// scalar returns a scalar node's value after a run.
func scalar(n *G.Node) float64 {
	switch v := n.Value().Data().(type) {
	case float32:
		return float64(v)
	case []float32:
		return float64(v[0])
	}
	return 0
}

// grads returns the gradient of each learned parameter after a run.
func (gr *graph) grads() ([][]float32, error) {
	out := make([][]float32, len(gr.learn))
	for i, p := range gr.learn {
		v, err := p.Grad()
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", p.Name(), err)
		}
		out[i] = v.Data().([]float32)
	}
	return out, nil
}

// Forward runs a network in inference mode on gorgonia: the reference that
// exported ONNX graphs are checked against. x is [n C H W]; t and y are used
// by denoisers. It returns the denoiser's eps, or the classifier's logits and
// features.
func Forward(cfg models.Config, weights, stats map[string]models.Array, x []float32, t, y []int) (out, features []float32, err error) {
	n := len(x) / (cfg.Channels * cfg.ImageSize * cfg.ImageSize)
	gr, err := newGraph(graphSpec{cfg: cfg, n: n, weights: weights, stats: stats})
	if err != nil {
		return nil, nil, fmt.Errorf("train: forward: %w", err)
	}
	defer gr.vm.Close()
	copy(gr.t.V, t)
	copy(gr.y.V, y)
	if err := gr.run(append([]float32(nil), x...)); err != nil {
		return nil, nil, fmt.Errorf("train: forward: %w", err)
	}
	out = append([]float32(nil), values(gr.out)...)
	if gr.feat != nil {
		features = append([]float32(nil), values(gr.feat)...)
	}
	return out, features, nil
}
