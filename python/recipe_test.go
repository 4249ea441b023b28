package condifftorch_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// TestRecipeParity: the same recipe (label dropout, Min-SNR-5, Adam,
// gradient clipping, EMA) from the same weights on the same batches —
// condiff train records its batches (--record-batches), the torch trainer
// replays them (--replay) — gives the same losses step by step and the same
// model: the torch trainer is condiff's recipe, not a look-alike. On MNIST
// (which torch reads itself) and on the synthetic set, which torch reads
// from `condiff dataset`'s file (--data-file): equal losses there also
// mean equal images.
func TestRecipeParity(t *testing.T) {
	py := torchPython(t)
	for _, name := range []string{"mnist", "synthetic"} {
		t.Run(name, func(t *testing.T) { recipeParity(t, py, name) })
	}
}

func recipeParity(t *testing.T, py, dataset string) {
	dir := t.TempDir()
	const steps, batch = 200, 16
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.Groups, m.BaseChannels, m.ChannelMult = contract.CBN, models.GroupNorm, 4, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 1000)
	recipe := checkpoint.TrainInfo{Steps: 1, Batch: batch, LR: 1e-3, Seed: 9, Schedule: sp, CFGDrop: 0.1, MinSNRGamma: 5, EMADecay: 0.999, GradClip: 1}
	do := data.Options{Name: dataset, Size: 8, Channels: 1, PerClass: 64, Seed: recipe.Seed}
	first := filepath.Join(dir, "first")
	if _, err := train.Run(train.Options{Out: first, Model: m, Data: do, TrainInfo: recipe}); err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "init.onnx")
	if err := export.Export(first, init, export.Options{}); err != nil {
		t.Fatal(err)
	}

	rec := filepath.Join(dir, "batches.bin")
	f, err := os.Create(rec)
	if err != nil {
		t.Fatal(err)
	}
	goRun := filepath.Join(dir, "go")
	recipe.Steps, recipe.Init = steps, init
	if _, err := train.Run(train.Options{Out: goRun, Model: models.DefaultDenoiser(), Data: do, TrainInfo: recipe, RecordBatches: f}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	torchRun := filepath.Join(dir, "torch")
	args := []string{"--init", init, "--out", torchRun, "--data", dataset, "--steps", "200", "--batch", "16", "--lr", "1e-3", "--seed", "9",
		"--cfg-drop", "0.1", "--loss-weight", "min-snr:5", "--ema", "0.999", "--grad-clip", "1", "--save-every", "0", "--replay", rec}
	if dataset != "mnist" {
		// What `condiff dataset --data synthetic --size 8 --synthetic-per-class 64 --synthetic-seed 9 --out FILE` writes.
		set, err := data.Load(do)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "set.npz")
		if err := fsutil.WriteAtomic(file, set.WriteNPZ); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--data-file", file)
	}
	pyModule(t, py, "train", args...)

	read := func(run string) []checkpoint.LogEntry {
		b, err := os.ReadFile(filepath.Join(run, checkpoint.LogFile))
		if err != nil {
			t.Fatal(err)
		}
		var out []checkpoint.LogEntry
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e checkpoint.LogEntry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	lg, lt := read(goRun), read(torchRun)
	if len(lg) != steps || len(lt) != steps {
		t.Fatalf("logs of %d and %d steps, want %d", len(lg), len(lt), steps)
	}
	var worst, worst10 float64
	for i := range lg {
		if lg[i].Step != lt[i].Step || lg[i].Step != i+1 {
			t.Fatalf("line %d: steps %d (Go) and %d (torch)", i, lg[i].Step, lt[i].Step)
		}
		d := math.Abs(lg[i].Loss-lt[i].Loss) / lg[i].Loss
		worst = max(worst, d)
		if i < 10 {
			worst10 = max(worst10, d)
		}
	}
	t.Logf("loss |Go − torch| / Go: at most %.2g over the first 10 steps, %.2g over %d", worst10, worst, steps)
	// float32 rounding only (x_t made in float64 by Go, in float32 by
	// torch; other summation orders): measured 1.3e-6 over the first 10
	// steps and 1.4e-6 over 200 (the loss changes by tens of percent from
	// step to step). The bounds are ten times that; a recipe difference
	// (Min-SNR off, another clipping) moves the losses by percents.
	if worst10 > 1e-5 || worst > 1e-5 {
		t.Errorf("the losses differ by up to %.3g (first 10 steps) and %.3g (all); want ≤ 1e-5", worst10, worst)
	}

	// The models: ε of both exports (EMA) on the same inputs, against how
	// far training moved them from where they started.
	tm := filepath.Join(dir, "torch.onnx")
	pyModule(t, py, "export", torchRun, "--out", tm)
	gm := filepath.Join(dir, "go.onnx")
	if err := export.Export(goRun, gm, export.Options{}); err != nil {
		t.Fatal(err)
	}
	const n, d = 4, 64
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(math.Sin(float64(3 * i)))
	}
	ts, ys := []int64{10, 300, 600, 990}, []int64{1, 2, 3, 0}
	eps := func(model string) []float32 {
		s, err := infer.Open(model, infer.Options{Backend: infer.BackendGo, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := make([]float32, n*d)
		if err := s.Eps(x, ts, ys, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	e0, eg, et := eps(init), eps(gm), eps(tm)
	var apart, moved float64
	for i := range eg {
		apart += float64(eg[i]-et[i]) * float64(eg[i]-et[i])
		moved += float64(eg[i]-e0[i]) * float64(eg[i]-e0[i])
	}
	ratio := math.Sqrt(apart / moved)
	t.Logf("‖ε(Go) − ε(torch)‖ / ‖ε(Go) − ε(start)‖ = %.2g", ratio)
	// Measured 4.2e-7; the bound is a hundred times that.
	if !(moved > 0) || ratio > 1e-4 {
		t.Errorf("the two runs end %.3g apart relative to how far they moved; want ≤ 1e-4", ratio)
	}
}
