package condifftorch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// TestEndToEnd: a short run of the torch trainer under torchrun (two
// processes) on MNIST at 16×16, exported by condiff_torch.export, is
// sampled by condiff (the Go backend, guidance 1) and judged by a
// classifier condiff trained apart: the samples' classes are right at
// least twice as often as chance (10%) would make them (measured 29.0%
// after these 700 steps, 20 samples per class, against a judge 89.0% right
// on real images; 26.5% on another draw of 600 steps with a weaker judge),
// and the judge itself is better than chance on real images by far
// (≥ 50%).
func TestEndToEnd(t *testing.T) {
	infertest.ORT(t)
	py := torchPython(t)
	dir := t.TempDir()
	d16 := data.Options{Name: "mnist", Size: 16, Channels: 1}
	clf := models.DefaultClassifier()
	clf.BaseChannels = 8
	clfRun := filepath.Join(dir, "clf")
	if _, err := train.Run(train.Options{Out: clfRun, Model: clf, Data: d16,
		TrainInfo: checkpoint.TrainInfo{Steps: 600, Batch: 32, LR: 2e-3, Seed: 2, EMADecay: 0.99, GradClip: 1}}); err != nil {
		t.Fatal(err)
	}
	judge := filepath.Join(dir, "clf.onnx")
	if err := export.Export(clfRun, judge, export.Options{}); err != nil {
		t.Fatal(err)
	}
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.Groups, m.BaseChannels, m.ChannelMult = contract.CBN, models.GroupNorm, 4, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 1000)
	cfg := filepath.Join(dir, "run.json")
	runJSON(t, cfg, train.Options{Model: m, Data: d16,
		TrainInfo: checkpoint.TrainInfo{Steps: 700, Batch: 32, LR: 2e-3, Seed: 4, Schedule: sp, CFGDrop: 0.1, EMADecay: 0.999, GradClip: 1}})
	run, model := filepath.Join(dir, "torch"), filepath.Join(dir, "torch.onnx")
	if out, err := torchrun(2, "--config", cfg, "--out", run, "--save-every", "0").CombinedOutput(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	pyModule(t, py, "export", run, "--out", model)
	r, err := eval.Evaluate(context.Background(), eval.Options{Classifier: judge, Data: d16, Out: filepath.Join(dir, "eval"), Seed: 1,
		Sample: infer.SampleOptions{Model: model, N: 20, Batch: 64, Seed: 1, Sampler: diffusion.DDIM, Steps: 20, Guidance: 1,
			Session: infer.Options{Backend: infer.BackendGo, Threads: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the torch model's samples: accuracy %.1f%% (the judge on real images %.1f%%), FD/floor %.2f×, recall %.1f%%",
		100*float64(r.Accuracy), 100*float64(r.RealAccuracy), r.FDRatio.Value, 100*float64(r.Recall))
	if !(r.RealAccuracy >= 0.5) {
		t.Fatalf("the judge is %.1f%% right on real images: it cannot judge", 100*float64(r.RealAccuracy))
	}
	if !(r.Accuracy >= 0.2) {
		t.Errorf("the torch model's samples are %.1f%% right: not above chance (10%%) by the stated margin", 100*float64(r.Accuracy))
	}
	if _, err := os.Stat(filepath.Join(dir, "eval", "report.json")); err != nil {
		t.Error(err)
	}
}
