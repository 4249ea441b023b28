package train

import (
	"fmt"

	"github.com/condiff/condiff/models"
)

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
	copy(gr.times, t)
	copy(gr.labels, y)
	if err := gr.run(append([]float32(nil), x...), nil, nil, nil); err != nil {
		return nil, nil, fmt.Errorf("train: forward: %w", err)
	}
	out = append([]float32(nil), values(gr.out)...)
	if gr.feat != nil {
		features = append([]float32(nil), values(gr.feat)...)
	}
	return out, features, nil
}
