package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/models"
)

// graph is a compiled gorgonia graph of a network for a fixed batch size:
// the denoiser's training loss, the classifier's loss, or an inference
// forward pass.
type graph struct {
	cfg models.Config
	g   *G.ExprGraph
	vm  G.VM
	l   *lowering
	x   *G.Node // [N C H W] input: x_t for a denoiser, images for a classifier
	// Host values of the other inputs, bound by run: the timesteps (time
	// embedding), the conditioning labels (label one-hot) and the
	// cross-entropy targets (nil when the graph has no cross-entropy).
	times, labels, targets []int
	out                    *G.Node // eps [N C H W] or logits [N K]
	feat                   *G.Node // classifier features [N D]
	noise                  *G.Node // denoiser target [N C H W]
	loss                   *G.Node // scalar total loss
	mse                    *G.Node // denoiser MSE
	aux                    *G.Node // auxiliary CE (ac) or classifier CE
	learn                  []*G.Node

	// M_AC: x0_hat = x_t·c1 − eps·c2, judged by the classifier against the targets.
	c1, c2 *G.Node // [N 1 1 1]

	// Min-SNR-γ: each example's weight (lw [N 1 1 1], bound from lossW).
	lw    *G.Node
	lossW []float32

	hot [2][]float32 // the label and target one-hot buffers, reused every run
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
	// weighted: the denoiser's loss is the mean of per-example weighted
	// squared errors (Min-SNR-γ), the weights bound per step.
	weighted bool
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
	gr = &graph{cfg: c, g: g, l: l, times: make([]int, s.n), labels: make([]int, s.n)}
	gr.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(s.n, c.Channels, c.ImageSize, c.ImageSize), G.WithName(contract.InputX))

	if c.Kind == contract.Classifier {
		logits, feat := models.Classifier{Cfg: c}.Forward(l, gr.x)
		gr.out, gr.feat = node(logits), node(feat)
		if s.training {
			gr.targets = make([]int, s.n)
			gr.aux = l.crossEntropy(gr.out)
			gr.loss = gr.aux
		}
	} else {
		gr.out = node(models.Denoiser{Cfg: c}.Forward(l, gr.x, contract.InputT, contract.InputY)) // t and y: the lowering's own inputs
		if s.training {
			gr.noise = G.NewTensor(g, tensor.Float32, 4, G.WithShape(gr.out.Shape()...), G.WithName("noise"))
			sq := must(G.Square(must(G.Sub(gr.out, gr.noise))))
			gr.mse = must(G.Mean(sq))
			gr.loss = gr.mse
			if s.weighted {
				gr.lw = G.NewTensor(g, tensor.Float32, 4, G.WithShape(s.n, 1, 1, 1), G.WithName("loss.weight"))
				gr.lossW = make([]float32, s.n)
				gr.loss = must(G.Mean(must(G.BroadcastHadamardProd(sq, gr.lw, nil, []byte{1, 2, 3}))))
			}
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
				gr.targets = make([]int, s.n)
				gr.aux = l.crossEntropy(node(logits))
				gr.loss = must(G.Add(gr.loss, must(G.Mul(gr.aux, G.NewConstant(float32(s.acWeight))))))
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

// crossEntropy is the mean over the batch of −log softmax(logits)[target],
// the targets being the graph's target input; a target of -1 (a dropped
// label) contributes nothing.
func (l *lowering) crossEntropy(logits *G.Node) *G.Node {
	l.target = G.NewMatrix(l.g, tensor.Float32, G.WithShape(l.n, logits.Shape()[1]), G.WithName("target_onehot"))
	lsm := must(G.LogSoftMax(logits, 1))
	s := must(G.Sum(must(G.HadamardProd(lsm, l.target))))
	return must(G.HadamardDiv(must(G.Neg(s)), G.NewConstant(float32(l.n))))
}

// run binds the inputs and runs the graph once: x, the training target
// noise and the M_AC coefficients (each ignored when the graph lacks it),
// and the time, label and target inputs from gr.times, gr.labels and
// gr.targets.
func (gr *graph) run(x, noise, c1, c2 []float32) error {
	if err := letVec(gr.x, x); err != nil {
		return err
	}
	for _, in := range []struct {
		n *G.Node
		v []float32
	}{{gr.noise, noise}, {gr.c1, c1}, {gr.c2, c2}, {gr.lw, gr.lossW}} {
		if in.n != nil {
			if err := letVec(in.n, in.v); err != nil {
				return err
			}
		}
	}
	l := gr.l
	if l.temb != nil {
		dim := l.temb.Shape()[1]
		if err := letVec(l.temb, models.Sinusoid(gr.times, dim)); err != nil {
			return err
		}
	}
	for i, in := range []struct {
		n       *G.Node
		labels  []int
		dropped bool
	}{{l.yhot, gr.labels, false}, {l.target, gr.targets, true}} {
		if in.n == nil {
			continue
		}
		k := in.n.Shape()[1]
		buf := overwrite(&gr.hot[i], l.n*k) // oneHot clears it
		if err := oneHot(buf, k, in.labels, in.dropped); err != nil {
			return err
		}
		if err := letVec(in.n, buf); err != nil {
			return err
		}
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

// ClassifierLogits runs a classifier in inference mode on gorgonia over x
// ([n C H W], any n) in batches of batch images, and returns the logits
// [n K]. The last batch is padded with copies of its first image so that
// one compiled graph serves every batch.
func ClassifierLogits(cfg models.Config, weights, stats map[string]models.Array, x []float32, batch int) ([]float32, error) {
	if cfg.Kind != contract.Classifier {
		return nil, fmt.Errorf("train: classify: a %s is not a classifier", cfg.Kind)
	}
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	n := len(x) / D
	if n == 0 {
		return nil, nil
	}
	batch = min(max(batch, 1), n)
	gr, err := newGraph(graphSpec{cfg: cfg, n: batch, weights: weights, stats: stats})
	if err != nil {
		return nil, fmt.Errorf("train: classify: %w", err)
	}
	defer gr.vm.Close()
	K := cfg.NumClasses
	buf := make([]float32, batch*D)
	logits := make([]float32, 0, n*K)
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		copy(buf, x[i*D:(i+m)*D])
		for j := m; j < batch; j++ {
			copy(buf[j*D:(j+1)*D], x[i*D:(i+1)*D])
		}
		if err := gr.run(buf, nil, nil, nil); err != nil {
			return nil, fmt.Errorf("train: classify: %w", err)
		}
		logits = append(logits, values(gr.out)[:m*K]...)
	}
	return logits, nil
}
