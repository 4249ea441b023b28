package train

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/models"
)

// StepStats is what Measure reports of the timed steps.
type StepStats struct {
	ImgPerS       float64
	BytesPerStep  float64 // heap bytes allocated per step (Go's runtime.MemStats)
	AllocsPerStep float64 // heap allocations per step
	PeakRSSMB     float64 // the process's peak resident set so far (VmHWM)
}

// Measure times training of a denoiser config: the training loop's own step
// (batch drawing and noising, forward, backward, clipping, Adam, EMA,
// running statistics) on random images, after one warm-up step, averaged
// over steps, with bytes and allocations per step and the peak RSS. An M_AC
// config gets a jointly trained classifier weighted acWeight, as training
// sets it up.
func Measure(cfg models.Config, batch, steps int, acWeight float64) (StepStats, error) {
	var out StepStats
	if err := cfg.Validate(); err != nil {
		return out, err
	}
	tr, ds, rng, err := benchRun(cfg, batch, acWeight)
	if err != nil {
		return out, err
	}
	defer tr.close()
	var start time.Time
	var m0, m1 runtime.MemStats
	for s := 0; s <= steps; s++ {
		if s == 1 {
			runtime.ReadMemStats(&m0)
			start = time.Now()
		}
		if _, err := tr.step(rng, ds); err != nil {
			return out, fmt.Errorf("train: throughput: %w", err)
		}
	}
	out.ImgPerS = float64(batch*steps) / time.Since(start).Seconds()
	runtime.ReadMemStats(&m1)
	out.BytesPerStep = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(steps)
	out.AllocsPerStep = float64(m1.Mallocs-m0.Mallocs) / float64(steps)
	out.PeakRSSMB = peakRSSMB()
	return out, nil
}

// RSSTrace trains cfg for steps steps on random images and returns the
// resident set (VmRSS, MB) after every `every` steps: flat when a step
// allocates nothing that outlives it.
func RSSTrace(cfg models.Config, batch, steps, every int) ([]float64, error) {
	tr, ds, rng, err := benchRun(cfg, batch, 0)
	if err != nil {
		return nil, err
	}
	defer tr.close()
	var trace []float64
	for s := 1; s <= steps; s++ {
		if _, err := tr.step(rng, ds); err != nil {
			return nil, err
		}
		if s%every == 0 {
			trace = append(trace, procMB("VmRSS:"))
		}
	}
	return trace, nil
}

// benchRun sets up a fresh run of cfg as training would (an M_AC config
// gets a jointly trained classifier weighted acWeight) on four batches of
// random images and labels.
func benchRun(cfg models.Config, batch int, acWeight float64) (*trainer, *data.Set, *rand.Rand, error) {
	sp, _ := diffusion.Default("linear", 1000)
	ck := &checkpoint.Checkpoint{Config: cfg, Params: models.InitParams(cfg, 1), Stats: models.InitNormStats(cfg),
		Info: checkpoint.TrainInfo{LR: 1e-4, GradClip: 1, EMADecay: 0.999, Schedule: sp, Batch: batch}}
	if cfg.Variant == contract.AC && acWeight > 0 {
		addClassifier(ck, acWeight, nil, 2)
	}
	ck.EMA, ck.AdamM, ck.AdamV = cloneMap(ck.Params), zerosLike(ck.Params), zerosLike(ck.Params)
	tr, err := newTrainer(ck, batch)
	if err != nil {
		return nil, nil, nil, err
	}
	rng := rand.New(rand.NewPCG(1, 1))
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	ds := &data.Set{Name: "random", N: 4 * batch, C: cfg.Channels, Size: cfg.ImageSize, Images: make([]float32, 4*batch*D), Labels: make([]int, 4*batch)}
	for i := range ds.Images {
		ds.Images[i] = float32(rng.Float64()*2 - 1)
	}
	for i := range ds.Labels {
		ds.Labels[i] = rng.IntN(max(1, cfg.NumClasses))
	}
	return tr, ds, rng, nil
}

// peakRSSMB reads VmHWM from /proc/self/status (0 where there is none).
func peakRSSMB() float64 { return procMB("VmHWM:") }

// procMB reads a kB field of /proc/self/status in MB (0 where there is none).
func procMB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
