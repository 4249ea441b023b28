package train

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/models"
)

// Throughput measures training images per second of a denoiser config: the
// training loop's own step (batch drawing and noising, forward, backward,
// clipping, Adam, EMA, running statistics) on random images, after one
// warm-up step, averaged over steps. An M_AC config gets a jointly trained
// classifier weighted acWeight, as training sets it up.
func Throughput(cfg models.Config, batch, steps int, acWeight float64) (float64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	sp, _ := diffusion.Default("linear", 1000)
	w := models.InitParams(cfg, 1)
	ck := &checkpoint.Checkpoint{Config: cfg, Params: w, Stats: models.InitNormStats(cfg),
		Info: checkpoint.TrainInfo{LR: 1e-4, GradClip: 1, EMADecay: 0.999, Schedule: sp, Batch: batch}}
	if cfg.Variant == contract.AC && acWeight > 0 {
		addClassifier(ck, acWeight, nil, 2)
	}
	ck.EMA, ck.AdamM, ck.AdamV = cloneMap(ck.Params), zerosLike(ck.Params), zerosLike(ck.Params)
	tr, err := newTrainer(ck, batch)
	if err != nil {
		return 0, err
	}
	defer tr.close()
	rng := rand.New(rand.NewPCG(1, 1))
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	ds := &data.Set{Name: "random", N: 4 * batch, C: cfg.Channels, Size: cfg.ImageSize, Images: make([]float32, 4*batch*D), Labels: make([]int, 4*batch)}
	for i := range ds.Images {
		ds.Images[i] = float32(rng.Float64()*2 - 1)
	}
	for i := range ds.Labels {
		ds.Labels[i] = rng.IntN(max(1, cfg.NumClasses))
	}
	var start time.Time
	for s := 0; s <= steps; s++ {
		if s == 1 {
			start = time.Now()
		}
		if _, err := tr.step(rng, ds); err != nil {
			return 0, fmt.Errorf("train: throughput: %w", err)
		}
	}
	return float64(batch*steps) / time.Since(start).Seconds(), nil
}
