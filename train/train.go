// Package train trains condiff's networks on gorgonia: epsilon-prediction
// MSE for denoisers (plus the M_AC auxiliary loss), cross-entropy for
// classifiers, Adam, gradient clipping, EMA, resumable checkpoints written
// atomically. It is the only package that imports gorgonia.
//
// Files: train.go (the run: options, checkpoint set-up, the loop), step.go
// (one optimisation step, shared with the throughput bench), optim.go
// (Adam, clipping, EMA, running statistics), graph.go (the compiled graph
// and its inputs), lower.go (models.Ops on gorgonia), ops.go and conv.go
// (custom gorgonia ops), normact.go (the fused norm–affine–SiLU),
// throughput.go (the bench).
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
	"slices"
	"time"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/internal/progress"
	"github.com/condiff/condiff/models"
)

// Options configure a training run. Defaults live in cmd/condiff's flags.
type Options struct {
	Out    string // run directory
	Resume bool
	Model  models.Config // architecture (Kind selects denoiser or classifier)
	Data   data.Options
	// Set, if not nil, is the training data, in memory, instead of loading
	// Data (whose Name is still recorded as the dataset).
	Set *data.Set
	// TrainInfo is the recipe: the hyper-parameters (Steps, Batch, LR,
	// Seed, Schedule, CFGDrop, MinSNRGamma, ACWeight, EMADecay, GradClip,
	// LRSchedule, LRWarmup, Init), recorded as they are in the checkpoint, whose
	// TrainInfo this becomes: a new option is a field there and its use
	// here. Its data and architecture fields (Dataset, Classes, PerClass,
	// DataDir, SkipBad, Norm, ACMode, ClfConfig) are filled in by Run from
	// Data and Model. Steps 0 on Resume keeps the checkpoint's target.
	checkpoint.TrainInfo
	ACClf     string // frozen classifier run or checkpoint; empty: train jointly
	SaveEvery int
	Progress  io.Writer // progress display; nil for none
	Log       io.Writer // one-line messages; nil for none
	// StopAfter, if > 0, ends the run after this many steps of this call
	// (the checkpoint is written as at the end); for resume tests.
	StopAfter int
	// RecordBatches, if set, gets every step's batch as the denoiser drew
	// it (RecordBatch), for replaying the same recipe on the same batches
	// elsewhere (condiff_torch.train --replay).
	RecordBatches io.Writer
	// Context, when cancelled (Ctrl-C), ends the run after the current step
	// with a checkpoint of that step; Run then returns ErrInterrupted.
	Context context.Context
}

// startFrom gives a new run the weights of the model it starts from (its
// EMA is cloned from them), once its data is known to have the model's
// classes.
func startFrom(ck *checkpoint.Checkpoint, imp *export.Imported, path, data string) error {
	if !slices.Equal(ck.Config.ClassNames, imp.Config.ClassNames) {
		return bad("Init", path, "has the classes %q; the data %s has %q", imp.Config.ClassNames, data, ck.Config.ClassNames)
	}
	for name, w := range imp.Weights {
		ck.Params[name] = w.Clone()
	}
	return nil
}

// Recorded is the TrainInfo a new run records: the recipe as given, with
// the data and architecture fields filled in from Data and Model (the
// M_AC classifier's are added when it is made).
func (o Options) Recorded() checkpoint.TrainInfo {
	info := o.TrainInfo
	info.Dataset, info.Classes, info.PerClass, info.DataDir, info.SkipBad = o.Data.Name, o.Data.Classes, o.Data.PerClass, o.Data.Dir, o.Data.SkipBad
	info.Norm, info.ACWeight, info.ACMode, info.ClfConfig = o.Model.Norm, 0, "", nil
	return info
}

// MaxBatch bounds Options.Batch: the activations of a step grow with it
// (a 32×32 U-Net of base 32 holds about 2 MB per image).
const MaxBatch = 4096

// ErrInterrupted is returned when Options.Context was cancelled; the
// checkpoint holds the last completed step and Resume continues from it.
var ErrInterrupted = errors.New("interrupted")

// ErrDiverged is returned when the loss or the weights become NaN or Inf.
var ErrDiverged = errors.New("not finite")

func bad(fieldName string, value any, format string, a ...any) error {
	return field.Errorf("train", fieldName, value, format, a...)
}

// prepare checks the options and, for a new run started from a model
// (Init), takes its architecture, image shape and schedule into o.
func (o *Options) prepare() (*export.Imported, error) {
	if o.Steps < 1 && !(o.Resume && o.Steps == 0) {
		return nil, bad("Steps", o.Steps, "must be >= 1")
	}
	if o.Batch < 2 || o.Batch > MaxBatch {
		return nil, bad("Batch", o.Batch, "out of 2..%d (batch statistics need two samples)", MaxBatch)
	}
	if !(o.LR > 0 && o.LR < 1e3) {
		return nil, bad("LR", o.LR, "out of (0, 1000)")
	}
	if !(o.EMADecay >= 0 && o.EMADecay < 1) {
		return nil, bad("EMADecay", o.EMADecay, "out of [0, 1)")
	}
	if !(o.GradClip >= 0) || math.IsInf(o.GradClip, 0) {
		return nil, bad("GradClip", o.GradClip, "must be a finite number >= 0 (0: off)")
	}
	switch o.LRSchedule {
	case "", LRConstant, LRCosine:
	default:
		return nil, bad("LRSchedule", o.LRSchedule, "is not %s or %s", LRConstant, LRCosine)
	}
	if o.LRWarmup < 0 || (!o.Resume && o.LRWarmup >= o.Steps) {
		return nil, bad("LRWarmup", o.LRWarmup, "out of 0..%d (below --steps)", max(o.Steps-1, 0))
	}
	if o.SaveEvery < 0 {
		return nil, bad("SaveEvery", o.SaveEvery, "must be >= 0")
	}
	if !(o.CFGDrop >= 0 && o.CFGDrop < 1) {
		return nil, bad("CFGDrop", o.CFGDrop, "out of [0, 1)")
	}
	if !(o.MinSNRGamma >= 0) || math.IsInf(o.MinSNRGamma, 0) {
		return nil, bad("MinSNRGamma", o.MinSNRGamma, "must be a finite number > 0 (0: unweighted)")
	}
	if o.MinSNRGamma > 0 && o.Model.Kind == contract.Classifier {
		return nil, bad("MinSNRGamma", o.MinSNRGamma, "weights a denoiser's loss; a classifier has none to weight")
	}
	if !(o.ACWeight >= 0) || math.IsInf(o.ACWeight, 0) {
		return nil, bad("ACWeight", o.ACWeight, "must be a finite number >= 0")
	}
	if err := o.checkDistill(); err != nil {
		return nil, err
	}
	var imported *export.Imported
	if o.Init != "" && !o.Resume {
		var err error
		if imported, err = export.Import(o.Init); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		cfg := imported.Config
		if cfg.Kind != o.Model.Kind {
			return nil, bad("Init", o.Init, "is a %s; this run trains a %s", cfg.Kind, o.Model.Kind)
		}
		if cfg.Kind == contract.Denoiser && o.Distill == nil && cfg.NullClass != (o.CFGDrop > 0) {
			return nil, bad("CFGDrop", o.CFGDrop, "must be > 0 exactly when the model started from has a null class (%s: %v)", o.Init, cfg.NullClass)
		}
		o.Model, o.Data.Size, o.Data.Channels = cfg, cfg.ImageSize, cfg.Channels
		if cfg.Kind == contract.Denoiser {
			o.Schedule = imported.Schedule
		}
		if d := o.Distill; d != nil {
			// The student's chain and its teacher's, twice as long, on the
			// teacher's schedule.
			if err := d.Check(o.Schedule.T); err != nil {
				return nil, bad("Distill", d.Steps, "%v", err)
			}
			if err := (contract.Distilled{Sampler: d.Sampler, Steps: 2 * d.Steps}).Check(o.Schedule.T); err != nil {
				return nil, bad("Distill", d.Steps, "its teacher would run %d steps of %d timesteps: at most %d student steps", 2*d.Steps, o.Schedule.T, o.Schedule.T/2)
			}
		}
	}
	return imported, nil
}

// Plan is what a new run of these options would build, without training
// or writing anything: its network's config, its schedule (a denoiser's)
// and the TrainInfo it would record (`condiff train --print-config`; the
// torch trainer reads the same JSON). It loads the data to learn its
// classes.
func Plan(o Options) (checkpoint.RunConfig, error) {
	o.Resume = false
	imported, err := o.prepare()
	if err != nil {
		return checkpoint.RunConfig{}, err
	}
	ds := o.Set
	if ds == nil {
		if ds, err = data.Load(o.Data); err != nil {
			return checkpoint.RunConfig{}, fmt.Errorf("train: %w", err)
		}
	}
	ck, err := newCheckpoint(o, ds, imported)
	if err != nil {
		return checkpoint.RunConfig{}, err
	}
	rc := checkpoint.RunConfig{Config: ck.Config, Train: ck.Info}
	if ck.Config.Kind == contract.Denoiser {
		rc.Schedule = &rc.Train.Schedule
	}
	return rc, nil
}

// Run trains (or resumes) a run and returns its final checkpoint.
func Run(o Options) (*checkpoint.Checkpoint, error) {
	imported, err := o.prepare()
	if err != nil {
		return nil, err
	}
	if a := BLASAdvice(); a != "" && o.Log != nil {
		fmt.Fprintf(o.Log, "train: %s\n", a)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, bad("Out", o.Out, "%v", err)
	}
	unlock, err := fsutil.Lock(o.Out, "train")
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer unlock()
	ckPath := filepath.Join(o.Out, checkpoint.File)
	logPath := filepath.Join(o.Out, checkpoint.LogFile)
	fsutil.RemoveStaleTemps(ckPath) // left by a kill during a save
	fsutil.RemoveStaleTemps(logPath)
	var ck *checkpoint.Checkpoint
	if o.Resume {
		var err error
		if ck, err = checkpoint.Load(ckPath); err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if err := checkpoint.TruncateLog(filepath.Join(o.Out, checkpoint.LogFile), ck.Step); err != nil {
			return nil, err
		}
		if o.Steps > 0 && o.Steps < ck.Step {
			return nil, bad("Steps", o.Steps, "is below the step the checkpoint holds (%d); a resumed run can only go on", ck.Step)
		}
		if o.Steps > 0 {
			ck.Info.Steps = o.Steps // a resumed run may be extended
		}
	} else if _, err := os.Stat(ckPath); err == nil {
		return nil, bad("Out", o.Out, "already holds a checkpoint; resume it or choose another directory")
	} else if err := os.Remove(logPath); err == nil && o.Log != nil {
		// A log without a checkpoint is from a run that never saved: start afresh.
		fmt.Fprintf(o.Log, "train: removed %s, left by a run that saved no checkpoint\n", logPath)
	}

	var ds *data.Set
	dsOpt := o.Data
	if ck != nil {
		dsOpt.Name, dsOpt.Classes, dsOpt.Size, dsOpt.Channels = ck.Info.Dataset, ck.Info.Classes, ck.Config.ImageSize, ck.Config.Channels
		dsOpt.Seed = ck.Info.Seed
		dsOpt.PerClass, dsOpt.Dir, dsOpt.SkipBad = ck.Info.PerClass, ck.Info.DataDir, ck.Info.SkipBad
	}
	if ds = o.Set; ds == nil {
		if ds, err = data.Load(dsOpt); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if ck == nil {
		if ck, err = newCheckpoint(o, ds, imported); err != nil {
			return nil, err
		}
	}
	if ds.N < 1 {
		return nil, fmt.Errorf("train: dataset %s is empty", ds.Name)
	}
	return loop(o, ck, ds, ckPath)
}

// newCheckpoint initialises a fresh run: from the model it starts from
// when imported is not nil (prepare read it), else from scratch.
func newCheckpoint(o Options, ds *data.Set, imported *export.Imported) (*checkpoint.Checkpoint, error) {
	cfg := o.Model
	cfg.ImageSize, cfg.Channels = ds.Size, ds.C
	cfg.NumClasses, cfg.ClassNames = len(ds.ClassNames), ds.ClassNames
	if cfg.Kind == contract.Denoiser {
		// A student keeps its teacher's null class (it learns no label
		// dropout: its teacher's guidance is in its targets).
		cfg.NullClass = o.CFGDrop > 0 || (o.Distill != nil && o.Model.NullClass)
		if cfg.Variant == contract.Uncond && o.CFGDrop > 0 {
			return nil, bad("CFGDrop", o.CFGDrop, "label dropout needs a conditional variant (cbn or ac)")
		}
		if cfg.Variant != contract.AC && o.ACClf != "" {
			return nil, bad("ACClf", o.ACClf, "an auxiliary classifier needs variant ac")
		}
		if cfg.Variant != contract.AC && o.ACWeight > 0 {
			return nil, bad("ACWeight", o.ACWeight, "an auxiliary classifier needs variant ac")
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if _, err := o.Schedule.Build(); err != nil && cfg.Kind == contract.Denoiser {
		return nil, fmt.Errorf("train: %w", err)
	}
	ck := &checkpoint.Checkpoint{Config: cfg, Info: o.Recorded()}
	ck.Params = models.InitParams(cfg, o.Seed)
	ck.Stats = models.InitNormStats(cfg)
	if cfg.Variant == contract.AC && cfg.Kind == contract.Denoiser && o.ACWeight > 0 {
		var frozen *checkpoint.Checkpoint
		if o.ACClf != "" {
			c, err := checkpoint.Load(o.ACClf)
			if err != nil {
				return nil, fmt.Errorf("train: ac classifier: %w", err)
			}
			if c.Config.Kind != contract.Classifier || c.Config.NumClasses != cfg.NumClasses || c.Config.ImageSize != cfg.ImageSize || c.Config.Channels != cfg.Channels {
				return nil, bad("ACClf", o.ACClf, "a %s for %d classes at %d×%d×%d does not fit this %d-class %d×%d×%d data",
					c.Config.Kind, c.Config.NumClasses, c.Config.Channels, c.Config.ImageSize, c.Config.ImageSize,
					cfg.NumClasses, cfg.Channels, cfg.ImageSize, cfg.ImageSize)
			}
			frozen = c
		}
		addClassifier(ck, o.ACWeight, frozen, o.Seed+1)
	}
	if imported != nil {
		if err := startFrom(ck, imported, o.Init, ds.Name); err != nil {
			return nil, err
		}
	}
	ck.EMA = cloneMap(ck.Params)
	ck.AdamM, ck.AdamV = zerosLike(ck.Params), zerosLike(ck.Params)
	rng := rand.NewPCG(o.Seed, 0x747261696e)
	ck.RNG, _ = rng.MarshalBinary()
	return ck, nil
}

// addClassifier gives an M_AC run its auxiliary classifier: the EMA weights
// of frozen, or (frozen nil) a fresh default classifier trained jointly,
// initialised from seed. Its weights are "clf."-prefixed in ck.Params.
func addClassifier(ck *checkpoint.Checkpoint, weight float64, frozen *checkpoint.Checkpoint, seed uint64) {
	cfg := ck.Config
	var clf map[string]models.Array
	var clfCfg models.Config
	if frozen != nil {
		clf, clfCfg, ck.Info.ACMode = frozen.EMA, frozen.Config, checkpoint.ACFrozen
	} else {
		clfCfg = models.DefaultClassifier()
		clfCfg.ImageSize, clfCfg.Channels, clfCfg.NumClasses, clfCfg.ClassNames = cfg.ImageSize, cfg.Channels, cfg.NumClasses, cfg.ClassNames
		clf, ck.Info.ACMode = models.InitParams(clfCfg, seed), checkpoint.ACJoint
	}
	for k, v := range clf {
		ck.Params["clf."+k] = v.Clone()
	}
	ck.Info.ACWeight, ck.Info.ClfConfig = weight, &clfCfg
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
func loop(o Options, ck *checkpoint.Checkpoint, ds *data.Set, ckPath string) (*checkpoint.Checkpoint, error) {
	cfg := ck.Config
	if ds.C != cfg.Channels || ds.Size != cfg.ImageSize || len(ds.ClassNames) != cfg.NumClasses {
		return nil, fmt.Errorf("train: dataset %s (%d classes, %d×%d×%d) does not match the checkpoint's config", ds.Name, len(ds.ClassNames), ds.C, ds.Size, ds.Size)
	}
	B := o.Batch
	if ck.Info.Batch > 0 {
		B = ck.Info.Batch
	}
	tr, err := newTrainer(ck, B)
	if err != nil {
		return nil, err
	}
	defer tr.close()
	if o.RecordBatches != nil {
		if cfg.Kind != contract.Denoiser || ck.Info.Distill != nil {
			return nil, bad("RecordBatches", "", "records a denoiser's training batches; this run is a %s", map[bool]string{true: "distillation", false: string(cfg.Kind)}[ck.Info.Distill != nil])
		}
		tr.rec = bufio.NewWriter(o.RecordBatches)
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(ck.RNG); err != nil {
		return nil, fmt.Errorf("train: checkpoint RNG state: %w", err)
	}
	rng := rand.New(pcg)

	logf, err := os.OpenFile(filepath.Join(o.Out, checkpoint.LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: log: %w", err)
	}
	defer logf.Close()

	bar := progress.NewFrom(o.Progress, ck.Step, ck.Info.Steps, "train")
	defer bar.Close()
	saved := -1 // the step the checkpoint on disk holds; -1: none
	if o.Resume {
		saved = ck.Step
	}
	onDisk := func() string {
		if saved < 0 {
			return "no checkpoint was written"
		}
		return fmt.Sprintf("checkpoint %s holds step %d", ckPath, saved)
	}
	save := func() error {
		if name, ok := ck.Finite(); !ok {
			return fmt.Errorf("train: step %d: %w (parameter %s); not checkpointed, %s", ck.Step, ErrDiverged, name, onDisk())
		}
		b, err := pcg.MarshalBinary()
		if err != nil {
			return err
		}
		ck.RNG = b
		if err := ck.Save(ckPath); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		saved = ck.Step
		return nil
	}
	if saved < 0 {
		// A fresh run checkpoints its starting point, so that a kill at any
		// moment (even before the first --save-every) leaves a checkpoint to
		// resume; resuming truncates the log to it.
		if err := save(); err != nil {
			return nil, err
		}
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
		e, err := tr.step(rng, ds)
		if err != nil {
			if errors.Is(err, ErrDiverged) {
				return nil, fmt.Errorf("train: %w; %s", err, onDisk())
			}
			return nil, fmt.Errorf("train: %w", err)
		}
		done++
		segSteps++
		e.ImgPerS = float64(B*segSteps) / time.Since(segStart).Seconds()
		ck.WallTime += time.Since(stepStart).Seconds()
		ck.ImgPerS = e.ImgPerS
		b, _ := json.Marshal(e)
		if _, err := logf.Write(append(b, '\n')); err != nil {
			return nil, fmt.Errorf("train: log: %w", err)
		}
		bar.Describe(fmt.Sprintf("train loss %.4f %5.1f img/s", e.Loss, e.ImgPerS))
		bar.Set(ck.Step)
		if o.SaveEvery > 0 && ck.Step%o.SaveEvery == 0 && ck.Step < ck.Info.Steps {
			if err := save(); err != nil {
				return nil, err
			}
		}
	}
	if err := save(); err != nil {
		return nil, err
	}
	if tr.rec != nil {
		if err := tr.rec.Flush(); err != nil { // bufio keeps the first write error
			return nil, fmt.Errorf("train: recording the batches: %w", err)
		}
	}
	bar.Finish()
	if interrupted {
		return ck, fmt.Errorf("train: %w at step %d of %d; checkpoint %s holds it; resuming the run continues from it", ErrInterrupted, ck.Step, ck.Info.Steps, ckPath)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "train: %s: step %d/%d in %s (%.1f img/s), checkpoint %s\n", cfg.Kind, ck.Step, ck.Info.Steps,
			time.Since(start).Round(time.Second), ck.ImgPerS, ckPath)
	}
	return ck, nil
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
