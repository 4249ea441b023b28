package train

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/schedule"
)

// Throughput measures training images per second of a denoiser config: a
// full step (forward, backward, Adam, EMA) on random data, after one warm-up
// step, averaged over steps.
func Throughput(cfg models.Config, batch, steps int, acWeight float64) (float64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	w := models.InitParams(cfg, 1)
	spec := graphSpec{cfg: cfg, n: batch, training: true, weights: w, stats: models.InitNormStats(cfg)}
	if cfg.Variant == models.AC && acWeight > 0 {
		clf := models.DefaultClassifier()
		clf.ImageSize, clf.Channels, clf.NumClasses = cfg.ImageSize, cfg.Channels, cfg.NumClasses
		for k, v := range models.InitParams(clf, 2) {
			w["clf."+k] = v
		}
		spec.clf, spec.acWeight = &clf, acWeight
	}
	gr, err := newGraph(spec)
	if err != nil {
		return 0, err
	}
	defer gr.vm.Close()
	sp, _ := schedule.Default("linear", 1000)
	sch, _ := sp.Build()
	rng := rand.New(rand.NewPCG(1, 1))
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	x, noise := make([]float32, batch*D), make([]float32, batch*D)
	c := make([]float32, batch)
	ck := &Checkpoint{Params: w, EMA: cloneMap(w), Stats: spec.stats, AdamM: zerosLike(w), AdamV: zerosLike(w),
		Info: Info{GradClip: 1, EMADecay: 0.999}}
	opt := adam{lr: 1e-4, m: ck.AdamM, v: ck.AdamV}
	names := make([]string, len(gr.learn))
	for i, p := range gr.learn {
		names[i] = p.Name()
	}
	var start time.Time
	for s := 0; s <= steps; s++ {
		if s == 1 {
			start = time.Now()
		}
		for i := range x {
			x[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		for i := 0; i < batch; i++ {
			gr.t.V[i], gr.y.V[i] = rng.IntN(sch.Spec.T), rng.IntN(max(1, cfg.NumClasses))
			c[i] = 1
			if gr.acY != nil {
				gr.acY.V[i] = gr.y.V[i]
			}
		}
		letVec(gr.noise, noise)
		if gr.c1 != nil {
			letVec(gr.c1, c)
			letVec(gr.c2, c)
		}
		if err := gr.run(x); err != nil {
			return 0, fmt.Errorf("train: throughput: %w", err)
		}
		if err := gr.update(ck, opt, names); err != nil {
			return 0, fmt.Errorf("train: throughput: %w", err)
		}
	}
	return float64(batch*steps) / time.Since(start).Seconds(), nil
}
