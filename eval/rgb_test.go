package eval_test

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// rgbFolder writes a folder dataset of two colour classes at 80×72 (so
// loading resizes and crops): red discs and blue bars on grey, n each.
func rgbFolder(t *testing.T, n int) string {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 5))
	for ci, cls := range []string{"red", "blue"} {
		os.MkdirAll(filepath.Join(dir, cls), 0o755)
		for i := 0; i < n; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 80, 72))
			cx, cy := 20+r.IntN(40), 20+r.IntN(32)
			for y := 0; y < 72; y++ {
				for x := 0; x < 80; x++ {
					c := color.RGBA{128, 128, 128, 255}
					if ci == 0 && (x-cx)*(x-cx)+(y-cy)*(y-cy) < 150 {
						c = color.RGBA{220, 30, 30, 255}
					}
					if ci == 1 && x > cx-6 && x < cx+6 {
						c = color.RGBA{30, 30, 220, 255}
					}
					img.Set(x, y, c)
				}
			}
			f, _ := os.Create(filepath.Join(dir, cls, string(rune('a'+i%26))+string(rune('a'+i/26))+".png"))
			png.Encode(f, img)
			f.Close()
		}
	}
	return dir
}

// TestRGB64: a 3-channel folder dataset at 64×64 goes through the whole
// pipeline — train (a few steps), export (checked by the ONNX checker),
// sample with guidance, evaluate — and every artifact is 3-channel 64×64.
func TestRGB64(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	ds := data.Options{Name: "folder:" + rgbFolder(t, 12), Size: 64, Channels: 3, Seed: 1}
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.BaseChannels, m.ChannelMult, m.Groups = contract.CBN, models.GroupNorm, 8, []int{1, 2, 2}, 4
	sp, _ := diffusion.Default("linear", 100)
	c := models.DefaultClassifier()
	c.BaseChannels, c.Groups = 8, 4
	model, clf := trainAndExport(t, dir,
		train.Options{Model: m, Data: ds, TrainInfo: checkpoint.TrainInfo{Steps: 6, Batch: 4, LR: 1e-3, Seed: 3, Schedule: sp, CFGDrop: 0.2, EMADecay: 0.9, GradClip: 1}},
		train.Options{Model: c, Data: ds, TrainInfo: checkpoint.TrainInfo{Steps: 6, Batch: 8, LR: 1e-3, Seed: 4, EMADecay: 0.9, GradClip: 1}})
	info, err := infer.ReadInfo(model)
	if err != nil || info.Channels != 3 || info.ImageSize != 64 || info.ClassName(0) != "blue" {
		t.Fatalf("model info %+v %v", info, err)
	}
	r, err := eval.Evaluate(context.Background(), eval.Options{Classifier: clf, Data: ds,
		Out: filepath.Join(dir, "eval"), Seed: 1,
		Sample: infer.SampleOptions{Model: model, N: 3, Sampler: diffusion.DPMSolver2M, Steps: 5, Guidance: 1, Batch: 6, Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Samples != 6 || !r.Complete {
		t.Fatalf("%d samples, complete %v", r.Samples, r.Complete)
	}
	// A folder has no test split: the report must say its real side is
	// not held out (hostile round two, class 10).
	md, _ := os.ReadFile(filepath.Join(dir, "eval", "report.md"))
	if !r.RealNotHeldOut || !strings.Contains(string(md), "the real images are not held out") {
		t.Errorf("a folder dataset's report does not warn that its real images are the training images")
	}
	f, err := os.Open(filepath.Join(dir, "eval", "samples", "000000_blue.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil || format != "png" || cfg.Width != 64 || cfg.Height != 64 || cfg.ColorModel == color.GrayModel {
		t.Fatalf("sample PNG: %v %s %dx%d %v", err, format, cfg.Width, cfg.Height, cfg.ColorModel)
	}
}
