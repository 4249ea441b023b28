package train

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
)

// trainer is a compiled training graph with its optimiser and batch
// buffers. One call of step is one optimisation step; the training loop and
// the throughput bench both run it.
type trainer struct {
	gr    *graph
	ck    *checkpoint.Checkpoint
	opt   adam
	names []string            // learned parameters, in gr.learn order
	sch   *diffusion.Schedule // nil for a classifier
	batch int
	x     []float32 // [B C H W]: x_t (denoiser) or images (classifier)
	noise []float32 // [B C H W]: the target: ε, or a student's v
	c1    []float32 // [B]: M_AC x̂₀ coefficients
	c2    []float32
	teach *teacher // a distillation run's teacher; nil otherwise
	rec   *bufio.Writer
}

// RecordBatch is the layout of Options.RecordBatches: per step, per
// example, little-endian: the image's index in the dataset, the timestep,
// the true label and the label fed to the network (the null class where
// it was dropped) as int32, then the noise ε as C·H·W float32.
const RecordBatch = "int32 image, int32 t, int32 label, int32 y, float32 eps[C*H*W] per example"

// record appends one example of this step's batch to tr.rec.
func (tr *trainer) record(image, t, label, y int, eps []float32) {
	var b [16]byte
	for i, v := range []int{image, t, label, y} {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	tr.rec.Write(b[:])
	for _, v := range eps {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
		tr.rec.Write(b[:4])
	}
}

func newTrainer(ck *checkpoint.Checkpoint, batch int) (*trainer, error) {
	cfg := ck.Config
	spec := graphSpec{cfg: cfg, n: batch, training: true, weights: ck.Params, stats: ck.Stats, weighted: ck.Info.MinSNRGamma > 0 || ck.Info.Distill != nil}
	if ck.Info.ClfConfig != nil {
		spec.clf, spec.acWeight, spec.clfFrozen = ck.Info.ClfConfig, ck.Info.ACWeight, ck.Info.ACMode == checkpoint.ACFrozen
	}
	gr, err := newGraph(spec)
	if err != nil {
		return nil, fmt.Errorf("train: build graph: %w", err)
	}
	tr := &trainer{gr: gr, ck: ck, opt: adam{lr: ck.Info.LR, m: ck.AdamM, v: ck.AdamV}, batch: batch}
	if cfg.Kind == contract.Denoiser {
		if tr.sch, err = ck.Info.Schedule.Build(); err != nil {
			gr.vm.Close()
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if ck.Info.Distill != nil {
		if tr.teach, err = openTeacher(ck, batch); err != nil {
			gr.vm.Close()
			return nil, err
		}
	}
	for _, p := range gr.learn {
		tr.names = append(tr.names, p.Name())
	}
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	tr.x, tr.noise = make([]float32, batch*D), make([]float32, batch*D)
	tr.c1, tr.c2 = make([]float32, batch), make([]float32, batch)
	return tr, nil
}

func (tr *trainer) close() {
	tr.gr.vm.Close()
	if tr.teach != nil {
		tr.teach.close()
	}
}

// step draws a batch from ds with rng (images, timesteps, noise, label
// dropout), runs forward and backward, and applies the update. The entry's
// ImgPerS is left for the caller.
func (tr *trainer) step(rng *rand.Rand, ds *data.Set) (checkpoint.LogEntry, error) {
	ck, gr := tr.ck, tr.gr
	cfg := ck.Config
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	if tr.teach != nil {
		if err := tr.distillBatch(rng, ds); err != nil {
			return checkpoint.LogEntry{}, fmt.Errorf("step %d: %w", ck.Step+1, err)
		}
	}
	for i := 0; i < tr.batch && tr.teach == nil; i++ {
		j := rng.IntN(ds.N)
		img := ds.Image(j)
		label := ds.Labels[j]
		x := tr.x[i*D : (i+1)*D]
		if cfg.Kind == contract.Classifier {
			copy(x, img)
			gr.targets[i] = label
			continue
		}
		t := rng.IntN(tr.sch.Spec.T)
		eps := tr.noise[i*D : (i+1)*D]
		for k := range eps {
			eps[k] = float32(rng.NormFloat64())
		}
		tr.sch.Noise(t, img, eps, x)
		gr.times[i] = t
		if gr.lw != nil {
			gr.lossW[i] = float32(MinSNRWeight(tr.sch, t, ck.Info.MinSNRGamma))
		}
		y := label
		if cfg.NullClass && rng.Float64() < ck.Info.CFGDrop {
			y = contract.NullLabel(cfg.NumClasses)
		}
		if !cfg.Conditional() {
			y = 0 // unused by the network
		}
		gr.labels[i] = y
		if tr.rec != nil {
			tr.record(j, t, label, y, eps)
		}
		if gr.targets != nil { // M_AC: judge x̂₀ against the true label
			gr.targets[i] = label
			if cfg.NullClass && y == contract.NullLabel(cfg.NumClasses) {
				gr.targets[i] = -1 // a dropped label is not judged
			}
			c1, c2 := tr.sch.X0Coefficients(t)
			tr.c1[i], tr.c2[i] = float32(c1), float32(c2)
		}
	}
	if err := gr.run(tr.x, tr.noise, tr.c1, tr.c2); err != nil {
		return checkpoint.LogEntry{}, fmt.Errorf("step %d: %w", ck.Step+1, err)
	}
	loss := scalar(gr.loss)
	if !finite(loss) {
		return checkpoint.LogEntry{}, fmt.Errorf("step %d: the loss is %w (%v)", ck.Step+1, ErrDiverged, loss)
	}
	if err := tr.update(); err != nil {
		return checkpoint.LogEntry{}, fmt.Errorf("step %d: %w", ck.Step+1, err)
	}
	e := checkpoint.LogEntry{Step: ck.Step, Loss: loss, LR: tr.opt.lr}
	if gr.mse != nil {
		e.MSE = scalar(gr.mse)
	}
	if gr.aux != nil {
		e.Aux = scalar(gr.aux)
	}
	return e, nil
}

// update applies one optimisation step from the gradients of the last run:
// global-norm clipping, Adam, the copy into ck.Params, EMA and batch-norm
// running statistics.
func (tr *trainer) update() error {
	ck, gr := tr.ck, tr.gr
	grads, err := gr.grads()
	if err != nil {
		return err
	}
	clipGlobalNorm(grads, ck.Info.GradClip)
	ck.Step++
	tr.opt.lr = learningRate(ck.Info, ck.Step)
	for i, name := range tr.names {
		w := values(gr.learn[i])
		tr.opt.step(name, w, grads[i], ck.Step)
		copy(ck.Params[name].Data, w)
		clear(grads[i]) // gorgonia accumulates into bound gradients across runs
	}
	updateEMA(ck, tr.names, emaDecay(ck.Info.EMADecay, ck.Step))
	updateStats(ck, gr)
	return nil
}

// MinSNRWeight is the Min-SNR-γ weight of an ε-prediction example at
// timestep t: min(SNR_t, γ)/SNR_t with SNR_t = ᾱ_t/(1−ᾱ_t) (Hang et al.
// 2023, eq. 7 and §3.4 for ε-prediction): 1 wherever SNR ≤ γ (the noisy
// steps), less where the image is nearly clean.
func MinSNRWeight(s *diffusion.Schedule, t int, gamma float64) float64 {
	snr := s.AlphaBar[t] / (1 - s.AlphaBar[t])
	return min(snr, gamma) / snr
}
