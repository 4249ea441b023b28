package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/models"
)

// TestGradients compares gorgonia's gradients of the training loss with
// central finite differences, for parameters of the conditional norm
// (class embeddings gamma/beta), convolutions, the time MLP, the M_AC label
// map and the jointly trained classifier behind the auxiliary loss.
func TestGradients(t *testing.T) {
	for _, tc := range []struct {
		variant contract.Variant
		norm    models.NormKind
		ac      bool
		params  []string
	}{
		{contract.CBN, models.BatchNorm, false, []string{"down.0.res.0.norm1.gamma", "down.1.res.0.norm2.beta", "up.1.res.0.conv1.weight", "time.0.weight", "conv_out.weight", "out.norm.gamma", "mid.res.0.conv1.bias", "down.0.downsample.weight"}},
		{contract.CBN, models.GroupNorm, false, []string{"down.0.res.0.norm1.gamma", "mid.res.0.norm2.beta", "conv_in.weight"}},
		{contract.AC, models.BatchNorm, true, []string{"label_map", "conv_out.weight", "clf.head.weight", "clf.stage.1.conv.weight"}},
	} {
		t.Run(string(tc.variant)+"-"+string(tc.norm), func(t *testing.T) {
			cfg := models.DefaultDenoiser()
			cfg.Variant, cfg.Norm, cfg.BaseChannels, cfg.ChannelMult, cfg.Groups, cfg.ImageSize, cfg.NumClasses = tc.variant, tc.norm, 8, []int{1, 2}, 4, 8, 3
			w := models.InitParams(cfg, 5)
			rng := rand.New(rand.NewPCG(5, 5))
			for _, a := range w { // move off the initialisation (zero output layer, unit gammas)
				for i := range a.Data {
					a.Data[i] += float32(0.1 * rng.NormFloat64())
				}
			}
			spec := graphSpec{cfg: cfg, n: 4, training: true, weights: w, stats: models.InitNormStats(cfg)}
			if tc.ac {
				clf := models.DefaultClassifier()
				clf.BaseChannels, clf.ImageSize, clf.NumClasses, clf.Groups = 8, 8, 3, 4
				for k, v := range models.InitParams(clf, 6) {
					w["clf."+k] = v
				}
				spec.clf, spec.acWeight = &clf, 0.5
			}
			gr, err := newGraph(spec)
			if err != nil {
				t.Fatal(err)
			}
			D := 8 * 8
			x := make([]float32, 4*D)
			noise := make([]float32, 4*D)
			for i := range x {
				x[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			c1, c2 := []float32{1.2, 1.5, 2, 1.1}, []float32{0.6, 1.1, 1.7, 0.4}
			for i := 0; i < 4; i++ {
				gr.times[i], gr.labels[i] = 100*i+7, i%3
				if gr.targets != nil {
					gr.targets[i] = (i + 1) % 3
				}
			}
			loss := func() float64 {
				clone := func(v []float32) []float32 { return append([]float32(nil), v...) }
				if err := gr.run(clone(x), clone(noise), clone(c1), clone(c2)); err != nil {
					t.Fatal(err)
				}
				return scalar(gr.loss)
			}
			loss()
			grads, err := gr.grads()
			if err != nil {
				t.Fatal(err)
			}
			analytic := map[string][]float32{}
			for i, p := range gr.learn {
				analytic[p.Name()] = append([]float32(nil), grads[i]...)
			}
			for _, name := range tc.params {
				p := gr.l.params[name]
				g, ok := analytic[name]
				if !ok {
					t.Fatalf("%s is not learned", name)
				}
				data := values(p)
				// the entry with the largest gradient, and one random entry
				best := 0
				for i := range g {
					if math.Abs(float64(g[i])) > math.Abs(float64(g[best])) {
						best = i
					}
				}
				for _, i := range []int{best, rng.IntN(len(data))} {
					const h = 1e-2
					orig := data[i]
					data[i] = orig + h
					lp := loss()
					data[i] = orig - h
					lm := loss()
					data[i] = orig
					fd := (lp - lm) / (2 * h)
					// float32 losses of O(1) carry ~1e-7 rounding; divided by
					// 2h that is ~1e-5, and the O(h²) truncation is smaller
					// still, so 2e-3 absolute + 5% relative is a safe margin.
					tol := 2e-3 + 0.05*math.Abs(fd)
					t.Logf("%s[%d]: analytic %.5f finite-diff %.5f", name, i, g[i], fd)
					if math.Abs(float64(g[i])-fd) > tol {
						t.Errorf("%s[%d]: analytic gradient %.5f, finite difference %.5f", name, i, g[i], fd)
					}
				}
			}
		})
	}
}
