package infer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
)

// torchModel is a U-Net exported by PyTorch (testdata/torch_export.py).
const torchModel = "testdata/torch_cbn.onnx"

func sample(t *testing.T, o infer.SampleOptions) (*infer.Manifest, error) {
	t.Helper()
	if o.Out == "" {
		o.Out = t.TempDir()
	}
	if o.Sampler == nil {
		o.Sampler, o.Steps = diffusion.DDIM, 8
	}
	o.Session.Threads = 1
	return infer.SampleToDir(context.Background(), o)
}

func readPixels(t *testing.T, dir string, m *infer.Manifest) map[int][]uint8 {
	t.Helper()
	out := map[int][]uint8{}
	for _, e := range m.Images {
		f, err := os.Open(filepath.Join(dir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		var px []uint8
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, _, _, _ := img.At(x, y).RGBA()
				px = append(px, uint8(r>>8))
			}
		}
		out[e.Index] = px
	}
	return out
}

// TestTorchModelBatchesAndShards: a model from another trainer samples; the
// images are the same (±1 grey level, ONNX Runtime's kernels may round
// differently per batch size) for batch 3 and 8, and shards 0/2 ∪ 1/2 equal
// the whole run.
func TestTorchModelBatchesAndShards(t *testing.T) {
	infertest.ORT(t)
	dirA, dirB, dirS := t.TempDir(), t.TempDir(), t.TempDir()
	a, err := sample(t, infer.SampleOptions{Model: torchModel, Out: dirA, N: 3, Batch: 3, Seed: 4, Guidance: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sample(t, infer.SampleOptions{Model: torchModel, Out: dirB, N: 3, Batch: 8, Seed: 4, Guidance: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	var shard []*infer.Manifest
	for _, s := range []infer.Shard{{K: 0, N: 2}, {K: 1, N: 2}} {
		m, err := sample(t, infer.SampleOptions{Model: torchModel, Out: dirS, N: 3, Batch: 2, Seed: 4, Guidance: 1.5, Shard: s})
		if err != nil {
			t.Fatal(err)
		}
		shard = append(shard, m)
	}
	if len(a.Images) != 9 || !a.Complete || len(shard[0].Images)+len(shard[1].Images) != 9 {
		t.Fatalf("%d images, shards %d+%d", len(a.Images), len(shard[0].Images), len(shard[1].Images))
	}
	pa, pb := readPixels(t, dirA, a), readPixels(t, dirB, b)
	ps := readPixels(t, dirS, shard[0])
	for k, v := range readPixels(t, dirS, shard[1]) {
		ps[k] = v
	}
	for i := 0; i < 9; i++ {
		for j := range pa[i] {
			if d := int(pa[i][j]) - int(pb[i][j]); d > 1 || d < -1 {
				t.Fatalf("image %d pixel %d: %d with batch 3, %d with batch 8", i, j, pa[i][j], pb[i][j])
			}
			if d := int(pa[i][j]) - int(ps[i][j]); d > 1 || d < -1 {
				t.Fatalf("image %d pixel %d: %d unsharded, %d sharded", i, j, pa[i][j], ps[i][j])
			}
		}
	}
	for _, f := range []string{"grid.png", "grid_a.png", "manifest.json", "000008_c.png"} {
		if _, err := os.Stat(filepath.Join(dirA, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	var m infer.Manifest
	raw, _ := os.ReadFile(filepath.Join(dirA, "manifest.json"))
	if err := json.Unmarshal(raw, &m); err != nil || len(m.ModelHash) != 64 || m.Images[4].ClassName != "b" {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	if _, err := os.Stat(filepath.Join(dirS, "manifest.shard-1-of-2.json")); err != nil {
		t.Fatal("shard manifest missing")
	}
}

// uncondModel writes an unconditional model without a null class.
func uncondModel(t *testing.T) string {
	cfg := models.DefaultDenoiser()
	cfg.Variant, cfg.ImageSize, cfg.BaseChannels, cfg.ChannelMult = contract.Uncond, 8, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 50)
	return graphstest.WriteModel(t, filepath.Join(t.TempDir(), "uncond.onnx"), cfg, models.InitParams(cfg, 1), models.InitNormStats(cfg), 50, contract.Info{
		Kind: contract.Denoiser, Variant: contract.Uncond, ImageSize: 8, Channels: 1, Schedule: sp, Prediction: contract.PredictionEpsilon}.Metadata())
}

func TestSampleBadInput(t *testing.T) {
	infertest.ORT(t)
	unc := uncondModel(t)
	if _, err := sample(t, infer.SampleOptions{Model: unc, N: 2, Batch: 2}); err != nil {
		t.Fatalf("unconditional model: %v", err)
	}
	ro := filepath.Join(t.TempDir(), "file")
	os.WriteFile(ro, nil, 0o644)
	cases := []struct {
		o    infer.SampleOptions
		want string
	}{
		{infer.SampleOptions{Model: unc, N: 2, Batch: 2, Guidance: 1}, "needs a model trained with label dropout"},
		{infer.SampleOptions{Model: unc, N: 2, Batch: 2, Class: infer.OneClass(3)}, "unconditional"},
		{infer.SampleOptions{Model: torchModel, N: 0, Batch: 2}, "infer: N 0"},
		{infer.SampleOptions{Model: torchModel, N: 1, Batch: 2, Class: infer.OneClass(3)}, "infer: Class 3: out of 0..2"},
		{infer.SampleOptions{Model: torchModel, N: 1, Batch: 2, Sampler: diffusion.DDIM, Steps: 1001}, "diffusion: Steps 1001: out of 1..1000"},
		{infer.SampleOptions{Model: torchModel, N: 1, Batch: 2, Sampler: diffusion.DDPM, Steps: 10}, "takes all 1000 steps"},
		{infer.SampleOptions{Model: torchModel, N: 1, Batch: 2, Out: filepath.Join(ro, "sub")}, "infer: Out"},
		{infer.SampleOptions{Model: "missing.onnx", N: 1, Batch: 2}, "missing.onnx"},
		{infer.SampleOptions{Model: torchModel, N: 1, Batch: 2, Session: infer.Options{Device: "tpu"}}, `infer: Device "tpu": not cpu, cuda, cuda:ID or auto`},
	}
	for _, c := range cases {
		dir := c.o.Out
		if dir == "" {
			dir = t.TempDir()
			c.o.Out = dir
		}
		_, err := sample(t, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v; want %q", c.o, err, c.want)
			continue
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 && !strings.Contains(c.want, "infer: Out") {
			t.Errorf("%q: left %d files in the output directory", c.want, len(entries))
		}
	}
}

// TestDeviceAutoFallsBack: --device auto on a CPU-only ONNX Runtime warns
// once and samples on the CPU; --device cuda is a clear error there.
func TestDeviceAutoFallsBack(t *testing.T) {
	infertest.ORT(t)
	var warned []string
	s, err := infer.Open(torchModel, infer.Options{Device: "auto", Threads: 1, Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Device == "cpu" && len(warned) != 1 {
		t.Fatalf("fell back to the CPU with %d warnings", len(warned))
	}
	if s.Device == "cpu" {
		if _, err := infer.Open(torchModel, infer.Options{Device: "cuda:0", Threads: 1}); err == nil || !strings.Contains(err.Error(), "CUDA execution provider") {
			t.Fatalf("--device cuda:0 on a CPU-only library: %v", err)
		}
	}
}

// TestInterrupt: cancelling (Ctrl-C) after the first batch leaves exactly
// that batch's images, complete, listed in the manifest.
func TestInterrupt(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := infer.SampleToDir(ctx, infer.SampleOptions{Model: torchModel, Out: dir, N: 4, Batch: 5, Seed: 1,
		Sampler: diffusion.DDIM, Steps: 4, Session: infer.Options{Threads: 1}, OnBatch: func(int) { cancel() }})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err %v; want the cancellation", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var disk infer.Manifest
	if err := json.Unmarshal(raw, &disk); err != nil {
		t.Fatal(err)
	}
	if disk.Complete || len(disk.Images) != 5 || len(m.Images) != 5 {
		t.Fatalf("manifest lists %d images (complete %v); want the first batch of 5", len(disk.Images), disk.Complete)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) != 5 {
		t.Fatalf("%d PNGs on disk, manifest lists 5", len(pngs))
	}
	readPixels(t, dir, &disk) // every listed image decodes
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// TestOutputDirectory: a used --out is refused (nothing written), Replace
// clears what the new run would mix with, shards share a directory without
// overwriting each other's grids or manifests, and a shard cannot be run
// twice into one directory.
func TestOutputDirectory(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	o := infer.SampleOptions{Model: torchModel, Out: dir, N: 2, Batch: 6, Seed: 1}
	if _, err := sample(t, o); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	o.Seed = 2
	if _, err := sample(t, o); !errors.Is(err, infer.ErrUsed) || !strings.Contains(err.Error(), "infer: Out") {
		t.Fatalf("second run into a used directory: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "manifest.json")); !bytes.Equal(first, again) {
		t.Fatal("the refused run changed the manifest")
	}
	o.Replace = true
	m, err := sample(t, o)
	if err != nil {
		t.Fatal(err)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "0*.png"))
	if len(pngs) != len(m.Images) || m.Seed != 2 {
		t.Fatalf("after replace: %d PNGs for %d listed images", len(pngs), len(m.Images))
	}

	shared := t.TempDir()
	for _, sh := range []infer.Shard{{K: 0, N: 2}, {K: 1, N: 2}} {
		if _, err := sample(t, infer.SampleOptions{Model: torchModel, Out: shared, N: 2, Batch: 6, Seed: 1, Shard: sh}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"manifest.shard-0-of-2.json", "manifest.shard-1-of-2.json", "grid.shard-0-of-2.png", "grid.shard-1-of-2.png", "grid_a.shard-1-of-2.png"} {
		if _, err := os.Stat(filepath.Join(shared, f)); err != nil {
			t.Errorf("shards: missing %s", f)
		}
	}
	before, _ := os.ReadFile(filepath.Join(shared, "manifest.shard-1-of-2.json"))
	var resumed [2]int
	if _, err := sample(t, infer.SampleOptions{Model: torchModel, Out: shared, N: 2, Batch: 6, Seed: 1, Shard: infer.Shard{K: 1, N: 2},
		OnResume: func(k, n int) { resumed = [2]int{k, n} }, OnBatch: func(int) { t.Error("shard 1/2 run again sampled a batch") }}); err != nil {
		t.Fatalf("shard 1/2 twice: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(shared, "manifest.shard-1-of-2.json")); resumed[0] != resumed[1] || resumed[1] == 0 || !bytes.Equal(before, after) {
		t.Fatalf("shard 1/2 twice: kept %d of %d; manifest changed %v", resumed[0], resumed[1], !bytes.Equal(before, after))
	}
	if _, err := sample(t, infer.SampleOptions{Model: torchModel, Out: shared, N: 2, Batch: 6, Seed: 3, Shard: infer.Shard{K: 1, N: 2}}); !errors.Is(err, infer.ErrUsed) {
		t.Fatalf("shard 1/2 of another plan: %v", err)
	}
	if _, err := sample(t, infer.SampleOptions{Model: torchModel, Out: shared, N: 2, Batch: 6, Seed: 1}); !errors.Is(err, infer.ErrUsed) {
		t.Fatalf("a whole run over shards: %v", err)
	}
	if _, err := sample(t, infer.SampleOptions{Model: torchModel, Out: shared, N: 2, Batch: 6, Seed: 1, Shard: infer.Shard{K: 0, N: 3}}); !errors.Is(err, infer.ErrUsed) {
		t.Fatalf("a shard of another count: %v", err)
	}
}

// TestResume: a run (whole or a shard) cancelled after its first batch,
// then run again with the same plan, keeps the images it wrote, remakes
// one damaged since, makes the rest, and ends with files byte-identical
// to an uninterrupted run's; a third run is already done.
func TestResume(t *testing.T) {
	infertest.ORT(t)
	for _, sh := range []infer.Shard{{}, {K: 1, N: 3}} {
		o := infer.SampleOptions{Model: torchModel, N: 6, Batch: 5, Seed: 1, Sampler: diffusion.DDIM, Steps: 4, Shard: sh, Session: infer.Options{Threads: 1}}
		ref := o
		ref.Out = t.TempDir()
		want, err := infer.SampleToDir(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		o.Out = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cut := o
		cut.OnBatch = func(int) { cancel() }
		if m, err := infer.SampleToDir(ctx, cut); err == nil || len(m.Images) != 5 || len(want.Images) <= 5 {
			t.Fatalf("shard %v: the cut run: %v, %d images of %d", sh, err, len(m.Images), len(want.Images))
		}
		cancel()
		// One kept image damaged after the cut: it is made again.
		damaged := ""
		for _, e := range want.Images[:1] {
			damaged = filepath.Join(o.Out, e.File)
		}
		if err := os.WriteFile(damaged, []byte("\x89PNG\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var kept, total int
		o.OnResume = func(k, n int) { kept, total = k, n }
		m, err := infer.SampleToDir(context.Background(), o)
		if err != nil || !m.Complete || kept != 4 || total != len(want.Images) {
			t.Fatalf("shard %v: the resumed run: %v, complete %v, kept %d of %d (want 4 of %d)", sh, err, m != nil && m.Complete, kept, total, len(want.Images))
		}
		got, err := infer.ReadSampleDir(o.Out)
		if err != nil || len(got.Images) != len(want.Images) {
			t.Fatalf("shard %v: %v, %d images", sh, err, len(got.Images))
		}
		for i, e := range got.Images {
			if e != want.Images[i] {
				t.Errorf("shard %v: entry %d %+v, uninterrupted %+v", sh, i, e, want.Images[i])
			}
			a, _ := os.ReadFile(filepath.Join(o.Out, e.File))
			b, _ := os.ReadFile(filepath.Join(ref.Out, e.File))
			if !bytes.Equal(a, b) {
				t.Errorf("shard %v: %s differs from the uninterrupted run's", sh, e.File)
			}
		}
		kept, total = 0, 0
		o.OnBatch = func(int) { t.Errorf("shard %v: a finished run sampled again", sh) }
		if _, err := infer.SampleToDir(context.Background(), o); err != nil || kept != total || total == 0 {
			t.Fatalf("shard %v: a finished run again: %v, kept %d of %d", sh, err, kept, total)
		}
	}
}

// TestGridNamesUnique: classes whose names sanitise alike get distinct grids.
func TestGridNamesUnique(t *testing.T) {
	dir := t.TempDir()
	info := contract.Info{Kind: contract.Denoiser, Variant: contract.CBN, NumClasses: 2, ClassNames: []string{"a/b", "a b"}}
	m := &infer.Manifest{}
	for c := 0; c < 2; c++ {
		f := fmt.Sprintf("%06d_a_b.png", c)
		if err := infer.WritePNG(filepath.Join(dir, f), infer.ToImage(make([]float32, 16), 1, 4)); err != nil {
			t.Fatal(err)
		}
		m.Images = append(m.Images, infer.ManifestEntry{Index: c, Class: c, File: f})
	}
	if err := infer.WriteGrids(dir, "", m, info, 1, 4); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"grid_0_a_b.png", "grid_1_a_b.png", "grid.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
}

// TestStopOn: once the context is cancelled, ONNX Runtime's Run is
// terminated (here: refused at once), so a signal never waits for a long
// model call.
func TestStopOn(t *testing.T) {
	infertest.ORT(t)
	s, err := infer.Open(torchModel, infer.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize
	x, out := make([]float32, 2*d), make([]float32, 2*d)
	if err := s.Eps(x, []int64{1, 2}, []int64{0, 1}, out); err != nil {
		t.Fatalf("before cancelling: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := s.StopOn(ctx)
	defer stop()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Eps(x, []int64{1, 2}, []int64{0, 1}, out)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run still succeeds 5 s after the cancellation")
		}
		time.Sleep(10 * time.Millisecond) // AfterFunc runs in its own goroutine
	}
}

// TestGuideAndInterval: a model guided by itself (autoguidance with ε_guide
// = ε) makes the unguided images (within one grey level: (1+W)·ε − W·ε is
// ε up to float32 rounding), while a guide that predicts otherwise makes
// other images; a guide of
// another schedule or class count is refused naming the difference, and so
// is a guide at guidance 0; an interval that excludes every step gives the
// unguided images exactly; the manifest records the interval and the
// guide, and a resumed plan must match them.
func TestGuideAndInterval(t *testing.T) {
	dir := t.TempDir()
	weights := graphstest.PatternWeights
	model := graphstest.TinyDenoiser(t, dir, "m", 50, weights(1), nil)
	otherT := graphstest.TinyDenoiser(t, dir, "t60", 60, weights(1), nil)
	otherClasses := graphstest.TinyDenoiser(t, dir, "names", 50, weights(1), func(md map[string]string) { md["condiff.class_names"] = `["x","y","z"]` })
	weaker := graphstest.TinyDenoiser(t, dir, "weaker", 50, weights(0.7), nil) // a guide that predicts otherwise
	run := func(o infer.SampleOptions) (*infer.Manifest, map[int][]uint8, error) {
		o.Model, o.N, o.Batch, o.Seed, o.Sampler, o.Steps = model, 2, 4, 1, diffusion.DDIM, 6
		o.Session = infer.Options{Backend: infer.BackendGo, Threads: 1}
		if o.Out == "" {
			o.Out = t.TempDir()
		}
		m, err := infer.SampleToDir(context.Background(), o)
		if err != nil {
			return nil, nil, err
		}
		return m, readPixels(t, o.Out, m), nil
	}
	_, plain, err := run(infer.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, self, err := run(infer.SampleOptions{Guidance: 2, Guide: model})
	if err != nil {
		t.Fatal(err)
	}
	if m.Guide != model || m.GuideHash == "" || m.GuidanceInterval != "" {
		t.Errorf("manifest: guide %q hash %q interval %q", m.Guide, m.GuideHash, m.GuidanceInterval)
	}
	_, guided, err := run(infer.SampleOptions{Guidance: 2, Guide: weaker})
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i, px := range plain {
		for k := range px {
			if d := int(px[k]) - int(self[i][k]); d > 1 || d < -1 {
				t.Fatalf("image %d, pixel %d: self-guided %d, unguided %d", i, k, self[i][k], px[k])
			}
			if px[k] != guided[i][k] {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Error("a guide that predicts otherwise made the unguided images")
	}
	m, none, err := run(infer.SampleOptions{Guidance: 2, Interval: diffusion.Interval{Lo: 1e6, Hi: 2e6}})
	if err != nil {
		t.Fatal(err)
	}
	for i, px := range plain {
		if !bytes.Equal(px, none[i]) {
			t.Errorf("image %d: an interval no step's σ lies in changed it", i)
		}
	}
	if m.GuidanceInterval != "1e+06,2e+06" {
		t.Errorf("manifest interval %q", m.GuidanceInterval)
	}
	for guide, want := range map[string]string{otherT: "schedule", otherClasses: "class 0"} {
		if _, _, err := run(infer.SampleOptions{Guidance: 1, Guide: guide}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Guide") {
			t.Errorf("guide %s: %v; want a refusal naming the %s", filepath.Base(guide), err, want)
		}
	}
	if _, _, err := run(infer.SampleOptions{Guide: model}); err == nil || !strings.Contains(err.Error(), "guidance 0") {
		t.Errorf("a guide at guidance 0: %v", err)
	}
	out := t.TempDir()
	if _, _, err := run(infer.SampleOptions{Out: out, Guidance: 2, Interval: diffusion.Interval{Lo: 0.5, Hi: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(infer.SampleOptions{Out: out, Guidance: 2, Interval: diffusion.Interval{Lo: 0.5, Hi: 6}}); !errors.Is(err, infer.ErrUsed) {
		t.Errorf("another interval into the same directory: %v", err)
	}
}

// TestShippedDefaults: each shipped denoiser's sidecar reads (its guide,
// if it names one, is a compatible denoiser beside it), and its defaults
// are guided where the model can be.
func TestShippedDefaults(t *testing.T) {
	for _, name := range []string{"mnist", "fashion"} {
		model := "../assets/pretrained/" + name + "-cbn.onnx"
		info, err := infer.ReadInfo(model)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(infer.SamplingFile(model)); err != nil {
			t.Fatalf("%s has no sidecar: %v", model, err)
		}
		d, err := infer.ModelDefaults(model, info)
		if err != nil {
			t.Fatal(err)
		}
		if d.Guidance <= 0 || d.Source == "" {
			t.Errorf("%s: defaults %+v: want a guidance weight and the frontier they come from", model, d)
		}
		if d.Guide != "" {
			g, err := infer.ReadInfo(d.Guide)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.CheckGuide(info); err != nil {
				t.Errorf("%s: its guide %s: %v", model, d.Guide, err)
			}
		}
	}
}

// TestShippedStudents: each shipped student is a student of its shipped
// teacher (same schedule, shape and classes; distilled for 4 steps of
// ddim-trailing in the teacher's guidance interval, at a weight), its
// defaults are that chain unguided, and it samples in 4 denoiser calls to
// images in [−1, 1] on the Go backend.
func TestShippedStudents(t *testing.T) {
	for _, name := range []string{"mnist", "fashion"} {
		teacher, student := "../assets/pretrained/"+name+"-cbn.onnx", "../assets/pretrained/"+name+"-cbn-student.onnx"
		ti, err := infer.ReadInfo(teacher)
		if err != nil {
			t.Fatal(err)
		}
		td, err := infer.ModelDefaults(teacher, ti)
		if err != nil {
			t.Fatal(err)
		}
		si, err := infer.ReadInfo(student)
		if err != nil {
			t.Fatal(err)
		}
		ds := si.Distilled
		if ds == nil || ds.Sampler != diffusion.DDIMTrailing.Name() || ds.Steps != 4 || !(ds.Guidance > 0) || ds.GuidanceInterval != td.GuidanceInterval {
			t.Fatalf("%s: distilled %+v; want 4 ddim-trailing steps at a guidance weight in its teacher's interval %q", student, ds, td.GuidanceInterval)
		}
		// A student's prediction target (v) is its own; CheckGuide compares
		// the rest of what makes two denoisers model the same images.
		si.Prediction = ti.Prediction
		if err := si.CheckGuide(ti); err != nil {
			t.Errorf("%s against its teacher: %v", student, err)
		}
		s, err := infer.Open(student, infer.Options{Backend: infer.BackendGo, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		sm, images := infertest.SampleByDefault(t, s, student, 2)
		if sm.Sampler != diffusion.DDIMTrailing || sm.Steps != 4 || sm.Guidance != 0 || images != 2 || s.Calls != 4 {
			t.Errorf("%s: sampled %d images in %d calls by default (%+v); want 2 in 4, ddim-trailing, unguided", student, images, s.Calls, sm)
		}
		s.Close()
	}
}
