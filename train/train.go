// Package train lowers condiff's networks to gorgonia and trains them:
// epsilon-prediction MSE for denoisers (plus the M_AC auxiliary loss),
// cross-entropy for classifiers, Adam, gradient clipping, EMA, resumable
// checkpoints written atomically.
package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/schedule"
)

// LogFile is the JSONL training log inside a run directory.
const LogFile = "log.jsonl"

// Options configure a training run. Defaults live in cmd/condiff's flags.
type Options struct {
	Out       string // run directory
	Resume    bool
	Model     models.Config // architecture (Kind selects denoiser or classifier)
	Data      data.Options
	Steps     int
	Batch     int
	LR        float64
	Seed      uint64
	Schedule  schedule.Spec
	CFGDrop   float64
	ACWeight  float64
	ACClf     string // frozen classifier run or checkpoint; empty: train jointly
	EMADecay  float64
	GradClip  float64
	SaveEvery int
	Progress  io.Writer // progress bar; nil for none
	Log       io.Writer // one-line messages; nil for none
	// StopAfter, if > 0, ends the run after this many steps of this call
	// (the checkpoint is written as at the end); for resume tests.
	StopAfter int
	// Context, when cancelled (Ctrl-C), ends the run after the current step
	// with a checkpoint of that step; Run then returns ErrInterrupted.
	Context context.Context
}

// LogEntry is one line of the JSONL log.
type LogEntry struct {
	Step    int     `json:"step"`
	Loss    float64 `json:"loss"`
	MSE     float64 `json:"mse,omitempty"`
	Aux     float64 `json:"aux,omitempty"`
	ImgPerS float64 `json:"img_per_s"`
}

// ErrInterrupted is returned when Options.Context was cancelled; the
// checkpoint holds the last completed step and --resume continues from it.
var ErrInterrupted = errors.New("interrupted")

// ErrDiverged is returned when the loss becomes NaN or Inf.
var ErrDiverged = errors.New("loss is not finite")

// Run trains (or resumes) a run and returns its final checkpoint.
func Run(o Options) (*Checkpoint, error) {
	if o.Steps < 1 {
		return nil, fmt.Errorf("train: --steps %d < 1", o.Steps)
	}
	if o.Batch < 2 {
		return nil, fmt.Errorf("train: --batch %d < 2 (batch statistics need two samples)", o.Batch)
	}
	if !(o.LR > 0) {
		return nil, fmt.Errorf("train: --lr %g must be > 0", o.LR)
	}
	if o.CFGDrop < 0 || o.CFGDrop >= 1 {
		return nil, fmt.Errorf("train: --cfg-drop %g is out of [0, 1)", o.CFGDrop)
	}
	if o.ACWeight < 0 {
		return nil, fmt.Errorf("train: --ac-weight %g < 0", o.ACWeight)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: --out: %w", err)
	}
	ckPath := filepath.Join(o.Out, CheckpointFile)
	var ck *Checkpoint
	if o.Resume {
		var err error
		if ck, err = Load(ckPath); err != nil {
			return nil, fmt.Errorf("train: --resume: %w", err)
		}
		if err := truncateLog(filepath.Join(o.Out, LogFile), ck.Step); err != nil {
			return nil, err
		}
		if ck.Info.Steps != o.Steps && o.Steps > 0 {
			ck.Info.Steps = o.Steps // a resumed run may be extended
		}
	} else if _, err := os.Stat(ckPath); err == nil {
		return nil, fmt.Errorf("train: %s already holds a checkpoint; pass --resume to continue it or choose another --out", o.Out)
	}

	dsOpt := o.Data
	if ck != nil {
		dsOpt.Name, dsOpt.Classes, dsOpt.Size, dsOpt.Channels = ck.Info.Dataset, ck.Info.Classes, ck.Config.ImageSize, ck.Config.Channels
		dsOpt.Seed = ck.Info.Seed
	}
	ds, err := data.Load(dsOpt)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if ck == nil {
		if ck, err = newCheckpoint(o, ds); err != nil {
			return nil, err
		}
	}
	if ds.N < 1 {
		return nil, fmt.Errorf("train: dataset %s is empty", ds.Name)
	}
	return loop(o, ck, ds, ckPath)
}

// newCheckpoint initialises a fresh run.
func newCheckpoint(o Options, ds *data.Set) (*Checkpoint, error) {
	cfg := o.Model
	cfg.ImageSize, cfg.Channels = ds.Size, ds.C
	cfg.NumClasses, cfg.ClassNames = len(ds.ClassNames), ds.ClassNames
	if cfg.Kind == "denoiser" {
		cfg.NullClass = o.CFGDrop > 0
		if cfg.Variant == models.Uncond && o.CFGDrop > 0 {
			return nil, fmt.Errorf("train: --cfg-drop needs a conditional --variant (cbn or ac)")
		}
		if cfg.Variant != models.AC && (o.ACWeight > 0 || o.ACClf != "") {
			return nil, fmt.Errorf("train: --ac-weight and --ac-classifier need --variant ac")
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if _, err := o.Schedule.Build(); err != nil && cfg.Kind == "denoiser" {
		return nil, fmt.Errorf("train: %w", err)
	}
	ck := &Checkpoint{Config: cfg, Info: Info{Dataset: o.Data.Name, Classes: o.Data.Classes, Steps: o.Steps, Batch: o.Batch,
		LR: o.LR, Seed: o.Seed, Norm: cfg.Norm, CFGDrop: o.CFGDrop, Schedule: o.Schedule, EMADecay: o.EMADecay, GradClip: o.GradClip}}
	ck.Params = models.InitParams(cfg, o.Seed)
	ck.Stats = models.InitNormStats(cfg)
	if cfg.Variant == models.AC && cfg.Kind == "denoiser" && o.ACWeight > 0 {
		ck.Info.ACWeight = o.ACWeight
		var clf map[string]models.Array
		var clfCfg models.Config
		if o.ACClf != "" {
			c, err := Load(o.ACClf)
			if err != nil {
				return nil, fmt.Errorf("train: --ac-classifier: %w", err)
			}
			if c.Config.Kind != "classifier" || c.Config.NumClasses != cfg.NumClasses || c.Config.ImageSize != cfg.ImageSize || c.Config.Channels != cfg.Channels {
				return nil, fmt.Errorf("train: --ac-classifier %s: a %s for %d classes at %d×%d×%d does not fit this %d-class %d×%d×%d data",
					o.ACClf, c.Config.Kind, c.Config.NumClasses, c.Config.Channels, c.Config.ImageSize, c.Config.ImageSize,
					cfg.NumClasses, cfg.Channels, cfg.ImageSize, cfg.ImageSize)
			}
			clf, clfCfg, ck.Info.ACMode = c.EMA, c.Config, "frozen"
		} else {
			clfCfg = models.DefaultClassifier()
			clfCfg.ImageSize, clfCfg.Channels, clfCfg.NumClasses, clfCfg.ClassNames = cfg.ImageSize, cfg.Channels, cfg.NumClasses, cfg.ClassNames
			clf, ck.Info.ACMode = models.InitParams(clfCfg, o.Seed+1), "joint"
		}
		for k, v := range clf {
			ck.Params["clf."+k] = v.Clone()
		}
		ck.Info.ClfConfig = &clfCfg
	}
	ck.EMA = cloneMap(ck.Params)
	ck.AdamM, ck.AdamV = zerosLike(ck.Params), zerosLike(ck.Params)
	rng := rand.NewPCG(o.Seed, 0x747261696e)
	ck.RNG, _ = rng.MarshalBinary()
	return ck, nil
}

func cloneMap(m map[string]models.Array) map[string]models.Array {
	out := make(map[string]models.Array, len(m))
	for k, v := range m {
		out[k] = v.Clone()
	}
	return out
}

func zerosLike(m map[string]models.Array) map[string]models.Array {
	out := make(map[string]models.Array, len(m))
	for k, v := range m {
		out[k] = models.NewArray(v.Shape...)
	}
	return out
}

// loop runs the training steps from ck.Step to ck.Info.Steps.
func loop(o Options, ck *Checkpoint, ds *data.Set, ckPath string) (*Checkpoint, error) {
	cfg := ck.Config
	if ds.C != cfg.Channels || ds.Size != cfg.ImageSize || len(ds.ClassNames) != cfg.NumClasses {
		return nil, fmt.Errorf("train: dataset %s (%d classes, %d×%d×%d) does not match the checkpoint's config", ds.Name, len(ds.ClassNames), ds.C, ds.Size, ds.Size)
	}
	B := o.Batch
	if ck.Info.Batch > 0 {
		B = ck.Info.Batch
	}
	spec := graphSpec{cfg: cfg, n: B, training: true, weights: ck.Params, stats: ck.Stats}
	if ck.Info.ClfConfig != nil {
		spec.clf, spec.acWeight, spec.clfFrozen = ck.Info.ClfConfig, ck.Info.ACWeight, ck.Info.ACMode == "frozen"
	}
	gr, err := newGraph(spec)
	if err != nil {
		return nil, fmt.Errorf("train: build graph: %w", err)
	}
	var sched *schedule.Schedule
	if cfg.Kind == "denoiser" {
		if sched, err = ck.Info.Schedule.Build(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(ck.RNG); err != nil {
		return nil, fmt.Errorf("train: checkpoint RNG state: %w", err)
	}
	rng := rand.New(pcg)

	logf, err := os.OpenFile(filepath.Join(o.Out, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: log: %w", err)
	}
	defer logf.Close()

	names := make([]string, len(gr.learn))
	for i, p := range gr.learn {
		names[i] = p.Name()
	}
	opt := adam{lr: ck.Info.LR, m: ck.AdamM, v: ck.AdamV}
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	x := make([]float32, B*D)
	noise := make([]float32, B*D)
	c1, c2 := make([]float32, B), make([]float32, B)

	var bar *progressbar.ProgressBar
	if o.Progress != nil {
		bar = progressbar.NewOptions(ck.Info.Steps, progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("train"), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(24), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		_ = bar.Set(ck.Step)
	}
	save := func() error {
		return ck.Save(ckPath)
	}
	start := time.Now()
	segStart, segSteps := time.Now(), 0
	done := 0
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	interrupted := false
	for ck.Step < ck.Info.Steps {
		if o.StopAfter > 0 && done >= o.StopAfter {
			break
		}
		if interrupted = ctx.Err() != nil; interrupted {
			break
		}
		stepStart := time.Now()
		// Draw the batch: images, labels, timesteps, noise, label dropout.
		for i := 0; i < B; i++ {
			j := rng.IntN(ds.N)
			img := ds.Image(j)
			label := ds.Labels[j]
			if cfg.Kind == "classifier" {
				copy(x[i*D:], img)
				gr.y.V[i] = label
				continue
			}
			t := rng.IntN(sched.Spec.T)
			a, s := sched.SqrtAB[t], sched.SqrtOneAB[t]
			for k := 0; k < D; k++ {
				e := rng.NormFloat64()
				noise[i*D+k] = float32(e)
				x[i*D+k] = float32(a*float64(img[k]) + s*e)
			}
			gr.t.V[i] = t
			y := label
			if cfg.NullClass && rng.Float64() < ck.Info.CFGDrop {
				y = cfg.NumClasses
			}
			if !cfg.Conditional() {
				y = 0 // unused by the network
			}
			gr.y.V[i] = y
			if gr.acY != nil {
				gr.acY.V[i] = label
				if y == cfg.NumClasses {
					gr.acY.V[i] = -1 // a dropped label is not judged
				}
				c1[i], c2[i] = float32(1/a), float32(s/a)
			}
		}
		if gr.noise != nil {
			if err := letVec(gr.noise, noise); err != nil {
				return nil, err
			}
		}
		if gr.c1 != nil {
			if err := letVec(gr.c1, c1); err != nil {
				return nil, err
			}
			if err := letVec(gr.c2, c2); err != nil {
				return nil, err
			}
		}
		if err := gr.run(x); err != nil {
			return nil, fmt.Errorf("train: step %d: %w", ck.Step+1, err)
		}
		loss := scalar(gr.loss)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("train: step %d: %w (%v); the last good checkpoint %s is intact", ck.Step+1, ErrDiverged, loss, ckPath)
		}
		if err := gr.update(ck, opt, names); err != nil {
			return nil, fmt.Errorf("train: step %d: %w", ck.Step+1, err)
		}

		done++
		segSteps++
		ips := float64(B*segSteps) / time.Since(segStart).Seconds()
		ck.WallTime += time.Since(stepStart).Seconds()
		ck.ImgPerS = ips
		e := LogEntry{Step: ck.Step, Loss: loss, ImgPerS: ips}
		if gr.mse != nil {
			e.MSE = scalar(gr.mse)
		}
		if gr.aux != nil {
			e.Aux = scalar(gr.aux)
		}
		b, _ := json.Marshal(e)
		if _, err := logf.Write(append(b, '\n')); err != nil {
			return nil, fmt.Errorf("train: log: %w", err)
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("train loss %.4f %5.1f img/s", loss, ips))
			_ = bar.Set(ck.Step)
		}
		if o.SaveEvery > 0 && ck.Step%o.SaveEvery == 0 && ck.Step < ck.Info.Steps {
			if err := saveWithRNG(ck, pcg, save); err != nil {
				return nil, err
			}
		}
	}
	if err := saveWithRNG(ck, pcg, save); err != nil {
		return nil, err
	}
	if bar != nil {
		_ = bar.Finish()
	}
	if interrupted {
		return ck, fmt.Errorf("train: %w at step %d of %d; checkpoint %s holds it, --resume continues", ErrInterrupted, ck.Step, ck.Info.Steps, ckPath)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "train: %s: step %d/%d in %s (%.1f img/s), checkpoint %s\n", cfg.Kind, ck.Step, ck.Info.Steps,
			time.Since(start).Round(time.Second), ck.ImgPerS, ckPath)
	}
	return ck, nil
}

func saveWithRNG(ck *Checkpoint, pcg *rand.PCG, save func() error) error {
	b, err := pcg.MarshalBinary()
	if err != nil {
		return err
	}
	ck.RNG = b
	return save()
}

// update applies one optimisation step from the gradients of the last run:
// global-norm clipping, Adam, the copy into ck.Params, EMA and batch-norm
// running statistics. names are the learned parameters in gr.learn order.
func (gr *graph) update(ck *Checkpoint, opt adam, names []string) error {
	grads, err := gr.grads()
	if err != nil {
		return err
	}
	clipGlobalNorm(grads, ck.Info.GradClip)
	ck.Step++
	for i, name := range names {
		w := values(gr.learn[i])
		opt.step(name, w, grads[i], ck.Step)
		copy(ck.Params[name].Data, w)
		clear(grads[i]) // gorgonia accumulates into bound gradients across runs
	}
	updateEMA(ck, names, emaDecay(ck.Info.EMADecay, ck.Step))
	updateStats(ck, gr)
	return nil
}

// emaDecay warms the EMA up: min(decay, (1+step)/(10+step)).
func emaDecay(decay float64, step int) float64 {
	return math.Min(decay, (1+float64(step))/(10+float64(step)))
}

func updateEMA(ck *Checkpoint, names []string, d float64) {
	for _, name := range names {
		w, e := ck.Params[name].Data, ck.EMA[name].Data
		for i := range e {
			e[i] = float32(d*float64(e[i]) + (1-d)*float64(w[i]))
		}
	}
}

// bnMomentum is the weight of the newest batch in running statistics
// (PyTorch's convention); the variance is stored unbiased, as PyTorch does.
const bnMomentum = 0.1

func updateStats(ck *Checkpoint, gr *graph) {
	for _, s := range gr.l.bn {
		rm, rv := ck.Stats[s.name+".running_mean"].Data, ck.Stats[s.name+".running_var"].Data
		m := float64(s.stats.count)
		for c := range rm {
			rm[c] = float32((1-bnMomentum)*float64(rm[c]) + bnMomentum*s.stats.mean[c])
			rv[c] = float32((1-bnMomentum)*float64(rv[c]) + bnMomentum*s.stats.varnc[c]*m/(m-1))
		}
	}
}

// clipGlobalNorm scales all gradients down so that their joint L2 norm is at
// most maxNorm (0: no clipping).
func clipGlobalNorm(grads [][]float32, maxNorm float64) {
	if maxNorm <= 0 {
		return
	}
	var ss float64
	for _, g := range grads {
		for _, v := range g {
			ss += float64(v) * float64(v)
		}
	}
	if n := math.Sqrt(ss); n > maxNorm {
		s := float32(maxNorm / n)
		for _, g := range grads {
			for i := range g {
				g[i] *= s
			}
		}
	}
}

// adam is Adam (Kingma & Ba) with its moments kept in the checkpoint.
type adam struct {
	lr   float64
	m, v map[string]models.Array
}

const (
	adamB1  = 0.9
	adamB2  = 0.999
	adamEps = 1e-8
)

func (a adam) step(name string, w, g []float32, t int) {
	m, v := a.m[name].Data, a.v[name].Data
	c1 := 1 - math.Pow(adamB1, float64(t))
	c2 := 1 - math.Pow(adamB2, float64(t))
	for i := range w {
		gi := float64(g[i])
		mi := adamB1*float64(m[i]) + (1-adamB1)*gi
		vi := adamB2*float64(v[i]) + (1-adamB2)*gi*gi
		m[i], v[i] = float32(mi), float32(vi)
		w[i] -= float32(a.lr * (mi / c1) / (math.Sqrt(vi/c2) + adamEps))
	}
}

// truncateLog drops log lines past the checkpoint's step, so a resumed run's
// log reads as if it had never been interrupted.
func truncateLog(path string, step int) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: log: %w", err)
	}
	var keep []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Step <= step {
			keep = append(keep, sc.Text())
		}
	}
	f.Close()
	body := strings.Join(keep, "\n")
	if body != "" {
		body += "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("train: log: %w", err)
	}
	return os.Rename(tmp, path)
}

// ReadLog reads a run's JSONL log.
func ReadLog(dir string) ([]LogEntry, error) {
	f, err := os.Open(filepath.Join(dir, LogFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LogEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("train: %s: %w", f.Name(), err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
