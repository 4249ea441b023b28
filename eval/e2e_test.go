package eval_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/internal/testenv"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// TestEndToEnd: a tiny synthetic run (two maximally different classes) →
// export → sample with guidance through ONNX Runtime → eval. It checks the
// files, the model contract and that the samples follow their labels far
// better than chance (50%).
func TestEndToEnd(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	ds := data.Options{Name: "synthetic", Size: 16, Channels: 1, Seed: 3, PerClass: 200, Classes: []string{"disc", "hstripes"}}
	m, c, sp := tinyModels()
	steps := 150
	if testing.Short() {
		steps = 60
	}
	model, clf := trainAndExport(t, dir,
		train.Options{Model: m, Data: ds, SaveEvery: 50, TrainInfo: checkpoint.TrainInfo{Steps: steps, Batch: 32, LR: 2e-3, Seed: 3, Schedule: sp, CFGDrop: 0.15, EMADecay: 0.99, GradClip: 1}},
		train.Options{Model: c, Data: ds, TrainInfo: checkpoint.TrainInfo{Steps: 60, Batch: 32, LR: 2e-3, Seed: 4, EMADecay: 0.9, GradClip: 1}})
	var insp strings.Builder
	if err := infer.Inspect(model, &insp); err != nil || !strings.Contains(insp.String(), "contract: yes") {
		t.Fatalf("inspect: %v\n%s", err, insp.String())
	}
	r, err := eval.Evaluate(context.Background(), eval.Options{Classifier: clf, Data: ds,
		Out: filepath.Join(dir, "eval"), Run: filepath.Join(dir, "run"), Seed: 1,
		Sample: infer.SampleOptions{Model: model, N: 24, Sampler: diffusion.DDIM, Steps: 20, Guidance: 2, Batch: 16, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.json", "tsne.png", "loss.png", "samples/grid.png", "samples/manifest.json",
		"samples/grid_disc.png", "samples/000000_disc.png", "samples/000047_hstripes.png"} {
		if _, err := os.Stat(filepath.Join(dir, "eval", f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	t.Logf("accuracy %.3f (real %.3f), IS %.2f, FD %.3f (floor %.3f), knn %.2f", r.Accuracy, r.RealAccuracy, r.IS, r.FD, r.RealFD, r.KNN)
	if r.Samples != 48 || r.RealAccuracy < 0.9 {
		t.Fatalf("%d samples, classifier accuracy on real images %.2f", r.Samples, r.RealAccuracy)
	}
	if r.Accuracy < 0.8 {
		t.Fatalf("conditioning accuracy %.2f; want >= 0.8 (chance is 0.5)", r.Accuracy)
	}
}

// tinyModels are the end-to-end tests' networks: a cbn denoiser (group
// norm, base width 8) on the linear schedule of 1000 steps, and a
// classifier of base width 8.
func tinyModels() (denoiser, classifier models.Config, schedule diffusion.Spec) {
	denoiser = models.DefaultDenoiser()
	denoiser.Variant, denoiser.Norm, denoiser.BaseChannels, denoiser.ChannelMult, denoiser.Groups = contract.CBN, models.GroupNorm, 8, []int{1, 2}, 4
	classifier = models.DefaultClassifier()
	classifier.BaseChannels, classifier.Groups = 8, 4
	schedule, _ = diffusion.Default("linear", 1000)
	return denoiser, classifier, schedule
}

// trainAndExport trains a denoiser (run dir/run) and a classifier (dir/clf),
// exports them to dir/model.onnx and dir/clf.onnx, and checks the
// denoiser's file with the ONNX checker.
func trainAndExport(t *testing.T, dir string, denoiser, classifier train.Options) (model, clf string) {
	t.Helper()
	denoiser.Out, classifier.Out = filepath.Join(dir, "run"), filepath.Join(dir, "clf")
	model, clf = filepath.Join(dir, "model.onnx"), filepath.Join(dir, "clf.onnx")
	for _, o := range []struct {
		opt  train.Options
		file string
	}{{denoiser, model}, {classifier, clf}} {
		if _, err := train.Run(o.opt); err != nil {
			t.Fatal(err)
		}
		if err := export.Export(o.opt.Out, o.file, export.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.CheckONNX(t, model)
	return model, clf
}
