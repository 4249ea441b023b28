package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/models"
)

// tinyOptions is a small synthetic run: 16×16, base width 8.
func tinyOptions(t *testing.T, variant contract.Variant, norm models.NormKind) Options {
	t.Helper()
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.BaseChannels, m.ChannelMult, m.Groups = variant, norm, 8, []int{1, 2}, 4
	sp, _ := diffusion.Default("linear", 1000)
	return Options{Out: t.TempDir(), Model: m, SaveEvery: 10,
		Data:      data.Options{Name: "synthetic", Size: 16, Channels: 1, Seed: 7, PerClass: 64},
		TrainInfo: checkpoint.TrainInfo{Steps: 30, Batch: 16, LR: 2e-3, Seed: 7, Schedule: sp, EMADecay: 0.999, GradClip: 1}}
}

func TestTrainLossFalls(t *testing.T) {
	for _, tc := range []struct {
		variant contract.Variant
		norm    models.NormKind
	}{{"uncond", "batch"}, {"cbn", "batch"}, {"cbn", "group"}, {"ac", "batch"}} {
		t.Run(string(tc.variant)+"-"+string(tc.norm), func(t *testing.T) {
			o := tinyOptions(t, tc.variant, tc.norm)
			if tc.variant == "ac" {
				o.ACWeight = 0.1
			}
			if tc.variant == "cbn" {
				o.CFGDrop = 0.2
			}
			ck, err := Run(o)
			if err != nil {
				t.Fatal(err)
			}
			log, err := checkpoint.ReadLog(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != 30 || ck.Step != 30 {
				t.Fatalf("log has %d lines, checkpoint step %d; want 30", len(log), ck.Step)
			}
			first, last := 0.0, 0.0
			for _, e := range log[:5] {
				first += e.MSE / 5
			}
			for _, e := range log[25:] {
				last += e.MSE / 5
			}
			t.Logf("mse %.3f -> %.3f", first, last)
			if !(last < first) || math.IsNaN(last) {
				t.Fatalf("mse did not fall: %.4f -> %.4f", first, last)
			}
			if _, err := os.Stat(filepath.Join(o.Out, checkpoint.File)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestResumeEquivalence: N steps straight equal k steps, a stop, a resume
// and N−k more, bit for bit (same seed, same data order, same noise), for
// M_CBN, M_AC and a distillation (its teacher's steps included).
func TestResumeEquivalence(t *testing.T) {
	for _, variant := range []contract.Variant{contract.CBN, contract.AC, "distill", "consistency"} {
		t.Run(string(variant), func(t *testing.T) {
			var straight Options
			switch variant {
			case "distill", "consistency":
				straight = studentOptions(t, distillTeacher(t, 5), 2, 1)
				straight.Steps = 12
				if variant == "consistency" {
					// Its target is the student's own weights: they resume too.
					straight.Distill.Method = contract.DistillConsistency
				}
			default:
				straight = tinyOptions(t, variant, models.BatchNorm)
				straight.Steps, straight.CFGDrop = 12, 0.2
			}
			if variant == contract.AC {
				straight.ACWeight = 0.1
				// The learning rate's course resumes too (warm-up over the split).
				straight.LRSchedule, straight.LRWarmup = LRCosine, 7
			}
			a, err := Run(straight)
			if err != nil {
				t.Fatal(err)
			}
			split := straight
			split.Out = t.TempDir()
			split.StopAfter = 5
			if _, err := Run(split); err != nil {
				t.Fatal(err)
			}
			split.StopAfter, split.Resume = 0, true
			b, err := Run(split)
			if err != nil {
				t.Fatal(err)
			}
			if a.Step != 12 || b.Step != 12 {
				t.Fatalf("steps %d and %d, want 12", a.Step, b.Step)
			}
			for _, set := range []struct {
				what string
				x, y map[string]models.Array
			}{{"params", a.Params, b.Params}, {"ema", a.EMA, b.EMA}, {"stats", a.Stats, b.Stats}, {"adam", a.AdamV, b.AdamV}} {
				for name, arr := range set.x {
					if !slicesEqual(arr.Data, set.y[name].Data) {
						t.Fatalf("%s %q differs between the straight and the resumed run", set.what, name)
					}
				}
			}
			la, _ := checkpoint.ReadLog(straight.Out)
			lb, _ := checkpoint.ReadLog(split.Out)
			if len(la) != 12 || len(lb) != 12 {
				t.Fatalf("logs have %d and %d lines, want 12", len(la), len(lb))
			}
			for i := range la {
				if la[i].Loss != lb[i].Loss {
					t.Fatalf("step %d: loss %g straight, %g resumed", i+1, la[i].Loss, lb[i].Loss)
				}
			}
		})
	}
}

// freshCheckpoint is the checkpoint Run starts a new run of o from: o
// prepared (the model it starts from read), its data loaded.
func freshCheckpoint(t *testing.T, o Options) (*checkpoint.Checkpoint, *data.Set) {
	t.Helper()
	imp, err := o.prepare()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(o.Data)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := newCheckpoint(o, ds, imp)
	if err != nil {
		t.Fatal(err)
	}
	return ck, ds
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTrainBadInput(t *testing.T) {
	cases := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"steps", func(o *Options) { o.Steps = 0 }, "train: Steps 0"},
		{"batch", func(o *Options) { o.Batch = 1 }, "train: Batch 1"},
		{"variant", func(o *Options) { o.Model.Variant = "gan" }, "variant"},
		{"norm", func(o *Options) { o.Model.Norm = "layer" }, "norm"},
		{"size", func(o *Options) { o.Data.Size = 18; o.Model.ChannelMult = []int{1, 2, 2} }, "cannot be halved"},
		{"dataset", func(o *Options) { o.Data.Name = "cifar" }, "unknown dataset"},
		{"classes", func(o *Options) { o.Data.Classes = []string{"disc", "zebra"} }, `data: Classes "zebra": not a class`},
		{"cfg-drop uncond", func(o *Options) { o.Model.Variant = contract.Uncond; o.CFGDrop = 0.1 }, "train: CFGDrop 0.1: label dropout needs a conditional variant"},
		{"cfg-drop range", func(o *Options) { o.CFGDrop = 1 }, "train: CFGDrop 1"},
		{"ac classifier", func(o *Options) { o.Model.Variant = contract.AC; o.ACWeight = 0.1; o.ACClf = "/nonexistent" }, "train: ac classifier: checkpoint: /nonexistent"},
		{"resume nothing", func(o *Options) { o.Resume = true }, "train: resume: checkpoint:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := tinyOptions(t, contract.CBN, models.BatchNorm)
			c.edit(&o)
			_, err := Run(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want one mentioning %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(o.Out, checkpoint.File)); err == nil {
				t.Fatal("a failed run left a checkpoint")
			}
		})
	}
	// An existing run is not overwritten without --resume.
	o := tinyOptions(t, contract.CBN, models.BatchNorm)
	o.Steps = 2
	if _, err := Run(o); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "already holds a checkpoint") {
		t.Fatalf("second run into the same --out: %v", err)
	}
}

// TestDivergenceKeepsCheckpoint: non-finite hyper-parameters are refused
// before anything is written; a NaN loss stops training with the step
// number, and the message says truly which step the checkpoint on disk
// holds (it stays loadable and finite).
func TestDivergenceKeepsCheckpoint(t *testing.T) {
	for _, c := range []struct {
		edit func(o *Options)
		want string
	}{
		{func(o *Options) { o.LR = math.Inf(1) }, "train: LR +Inf"},
		{func(o *Options) { o.LR = math.NaN() }, "train: LR NaN"},
		{func(o *Options) { o.EMADecay = 2 }, "train: EMADecay 2"},
		{func(o *Options) { o.CFGDrop = math.NaN() }, "train: CFGDrop NaN"},
		{func(o *Options) { o.Model.Variant = contract.AC; o.ACWeight = math.NaN() }, "train: ACWeight NaN"},
		{func(o *Options) { o.GradClip = math.Inf(1) }, "train: GradClip +Inf"},
	} {
		o := tinyOptions(t, contract.CBN, models.GroupNorm)
		c.edit(&o)
		if _, err := Run(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v; want %q", err, c.want)
		}
		if entries, _ := os.ReadDir(o.Out); len(entries) != 0 {
			t.Errorf("%q: the refused run wrote %d files", c.want, len(entries))
		}
	}
	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Steps, o.SaveEvery = 5, 5
	if _, err := Run(o); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	ck.Params["conv_in.weight"].Data[0] = float32(math.NaN()) // poison the weights the next step starts from
	if err := ck.Save(filepath.Join(o.Out, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	o.Resume, o.Steps = true, 10
	_, err = Run(o)
	if err == nil || !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "step 6") || !strings.Contains(err.Error(), "holds step 5") {
		t.Fatalf("err %v; want divergence at step 6 with the checkpoint at step 5", err)
	}
	if ck, err = checkpoint.Load(o.Out); err != nil || ck.Step != 5 {
		t.Fatalf("checkpoint after divergence: %v", err)
	}
	if name, ok := ck.Finite(); ok || name != "conv_in.weight" {
		t.Fatalf("Finite() = %q, %v; want the poisoned parameter", name, ok)
	}
}

// TestInterruptKeepsStep cancels a run's context while it trains: the run
// stops after the step in progress, its checkpoint holds exactly the steps in
// the log, and resuming from it gives the same weights as a run that was
// never interrupted.
func TestInterruptKeepsStep(t *testing.T) {
	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Steps, o.CFGDrop = 1000, 0.2
	ctx, cancel := context.WithCancel(context.Background())
	o.Context = ctx
	type result struct {
		ck  *checkpoint.Checkpoint
		err error
	}
	res := make(chan result, 1)
	go func() { ck, err := Run(o); res <- result{ck, err} }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if l, _ := checkpoint.ReadLog(o.Out); len(l) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 3 logged steps within 2 minutes")
		}
	}
	cancel()
	r := <-res
	if !errors.Is(r.err, ErrInterrupted) || !strings.Contains(r.err.Error(), "resuming the run continues") {
		t.Fatalf("err = %v, want ErrInterrupted telling how to continue", r.err)
	}
	k := r.ck.Step
	if k < 3 || k >= o.Steps {
		t.Fatalf("stopped at step %d, want ≥ 3 and < %d", k, o.Steps)
	}
	saved, err := checkpoint.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := checkpoint.ReadLog(o.Out); saved.Step != k || len(l) != k {
		t.Fatalf("checkpoint step %d, log %d lines, run stopped at %d: want all equal", saved.Step, len(l), k)
	}

	resumed := o
	resumed.Context, resumed.Resume, resumed.StopAfter = nil, true, 2
	b, err := Run(resumed)
	if err != nil {
		t.Fatal(err)
	}
	straight := o
	straight.Out, straight.Context, straight.StopAfter = t.TempDir(), nil, k+2
	a, err := Run(straight)
	if err != nil {
		t.Fatal(err)
	}
	for name, arr := range a.Params {
		if !slicesEqual(arr.Data, b.Params[name].Data) {
			t.Fatalf("param %q differs between the straight run and the interrupted-then-resumed one", name)
		}
	}
}

func TestLearningRate(t *testing.T) {
	in := checkpoint.TrainInfo{LR: 1e-3, Steps: 110, LRWarmup: 10}
	for _, c := range []struct {
		schedule string
		step     int
		want     float64
	}{
		{LRConstant, 1, 1e-4}, {LRConstant, 5, 5e-4}, {LRConstant, 10, 1e-3}, {LRConstant, 110, 1e-3},
		{"", 60, 1e-3}, // checkpoints from before the schedule was recorded
		{LRCosine, 10, 1e-3}, {LRCosine, 60, 0.5e-3}, {LRCosine, 35, 1e-3 * (0.5 + 0.5*math.Cos(math.Pi/4))}, {LRCosine, 110, 0},
	} {
		in.LRSchedule = c.schedule
		if got := learningRate(in, c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%q step %d: lr %g, want %g", c.schedule, c.step, got, c.want)
		}
	}
	if got := learningRate(checkpoint.TrainInfo{LR: 2e-4, Steps: 5}, 1); got != 2e-4 {
		t.Errorf("no warm-up: step 1 lr %g, want 2e-4", got)
	}
}

// TestMinSNR: with γ above every timestep's SNR the weights are all 1 and
// the run is bit-identical to the unweighted one (the weighting is wired,
// and neutral where it should be); γ = 5 changes the losses from the first
// step on (where some drawn t has SNR above 5) and still learns; the
// weights are min(SNR, γ)/SNR; γ is kept by the checkpoint; bad γ and a
// classifier are refused.
func TestMinSNR(t *testing.T) {
	run := func(gamma float64) []checkpoint.LogEntry {
		o := tinyOptions(t, contract.CBN, models.GroupNorm)
		o.Steps, o.MinSNRGamma = 12, gamma
		ck, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Info.MinSNRGamma != gamma {
			t.Errorf("the checkpoint keeps γ %g, want %g", ck.Info.MinSNRGamma, gamma)
		}
		log, err := checkpoint.ReadLog(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		return log
	}
	plain, neutral, weighted := run(0), run(1e12), run(5)
	for i := range plain {
		if plain[i].Loss != neutral[i].Loss {
			t.Fatalf("step %d: loss %v with γ above every SNR, %v unweighted", i+1, neutral[i].Loss, plain[i].Loss)
		}
	}
	// Step 1 sees the same weights and batch in both runs: the weighted
	// loss is below the plain one (weights ≤ 1, some < 1); later steps
	// follow other parameters.
	if !(weighted[0].Loss < plain[0].Loss) {
		t.Errorf("step 1: weighted loss %v, unweighted %v; want it lower (weights ≤ 1)", weighted[0].Loss, plain[0].Loss)
	}
	if weighted[0].MSE != plain[0].MSE {
		t.Errorf("step 1: the logged MSE %v differs from the unweighted run's %v (it is the plain MSE in both)", weighted[0].MSE, plain[0].MSE)
	}
	sch, _ := diffusion.Spec{Kind: "linear", T: 1000, BetaStart: 1e-4, BetaEnd: 0.02}.Build()
	for _, t0 := range []int{0, 100, 500, 999} {
		snr := sch.AlphaBar[t0] / (1 - sch.AlphaBar[t0])
		want := math.Min(snr, 5) / snr
		if got := MinSNRWeight(sch, t0, 5); math.Abs(got-want) > 1e-12 || got > 1 {
			t.Errorf("t=%d: weight %v, want %v", t0, got, want)
		}
	}
	for _, g := range []float64{-1, math.Inf(1), math.NaN()} {
		o := tinyOptions(t, contract.CBN, models.GroupNorm)
		o.MinSNRGamma = g
		if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "MinSNRGamma") {
			t.Errorf("γ %v: %v", g, err)
		}
	}
	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Model, o.MinSNRGamma = models.DefaultClassifier(), 5
	if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "MinSNRGamma") {
		t.Errorf("a classifier with γ: %v", err)
	}
}

// TestInitFromExport: a run started from an exported model (Init) begins
// with exactly the weights the model was exported with (the source run's
// EMA, bit for bit, as its weights and their EMA), takes the model's
// architecture and schedule over its own options, records where it
// started, and trains; a batch-norm model, a label-dropout mismatch and
// data with other classes are refused, naming the option.
func TestInitFromExport(t *testing.T) {
	src := tinyOptions(t, contract.CBN, models.GroupNorm)
	src.Steps, src.CFGDrop = 3, 0.2
	srcCk, err := Run(src)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "m.onnx")
	if err := export.Export(src.Out, model, export.Options{}); err != nil {
		t.Fatal(err)
	}

	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Init, o.CFGDrop, o.Steps = model, 0.2, 1
	o.Model.BaseChannels = 16 // replaced by the model's
	o.Schedule, _ = diffusion.Default("cosine", 500)
	ck, _ := freshCheckpoint(t, o)
	if len(ck.Params) != len(srcCk.EMA) || len(ck.Params) < 10 {
		t.Fatalf("%d parameters, the source run %d", len(ck.Params), len(srcCk.EMA))
	}
	for name, want := range srcCk.EMA {
		for _, set := range []map[string]models.Array{ck.Params, ck.EMA} {
			got := set[name]
			if len(got.Data) != len(want.Data) {
				t.Fatalf("%s: %d values, want %d", name, len(got.Data), len(want.Data))
			}
			for i := range want.Data {
				if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
					t.Fatalf("%s[%d] = %g, the exported weight %g", name, i, got.Data[i], want.Data[i])
				}
			}
		}
	}

	o = tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Init, o.CFGDrop, o.Steps = model, 0.2, 1
	o.Model.BaseChannels = 16
	o.Schedule, _ = diffusion.Default("cosine", 500)
	run, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Init != model || run.Config.BaseChannels != srcCk.Config.BaseChannels || run.Info.Schedule != srcCk.Info.Schedule {
		t.Errorf("the run records init %q, base %d, schedule %+v; want %q, %d, %+v", run.Info.Init, run.Config.BaseChannels, run.Info.Schedule,
			model, srcCk.Config.BaseChannels, srcCk.Info.Schedule)
	}

	bn := tinyOptions(t, contract.CBN, models.BatchNorm)
	bn.Steps = 1
	if _, err := Run(bn); err != nil {
		t.Fatal(err)
	}
	bnModel := filepath.Join(t.TempDir(), "bn.onnx")
	if err := export.Export(bn.Out, bnModel, export.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"batch norm", func(o *Options) { o.Init = bnModel }, "batch norm"},
		{"no label dropout", func(o *Options) { o.CFGDrop = 0 }, "CFGDrop 0"},
		{"other classes", func(o *Options) { o.Data.Classes = []string{"0", "1"} }, "has the classes"},
	} {
		o := tinyOptions(t, contract.CBN, models.GroupNorm)
		o.Init, o.CFGDrop, o.Steps = model, 0.2, 1
		c.edit(&o)
		if _, err := Run(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal saying %q", c.name, err, c.want)
		}
	}
}
