package export_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/internal/testenv"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// randomCheckpoint is a checkpoint whose every weight and statistic is
// random: the He-initialised weights as drawn, the zero- and one-initialised
// ones (output layer, biases, affines) perturbed so they cannot hide errors,
// and running statistics near what normalised activations have, so outputs
// stay O(1) as in a trained model.
func randomCheckpoint(cfg models.Config, seed uint64) *checkpoint.Checkpoint {
	rng := rand.New(rand.NewPCG(seed, 9))
	w := models.InitParams(cfg, seed)
	sh, _ := models.Trace(cfg, 1)
	for _, p := range sh.Params {
		if p.Init.Kind == "normal" {
			continue
		}
		a := w[p.Name]
		for i := range a.Data {
			a.Data[i] += float32(0.2 * rng.NormFloat64())
		}
	}
	st := models.InitNormStats(cfg)
	for k, a := range st {
		for i := range a.Data {
			if filepath.Ext(k) == ".running_var" {
				a.Data[i] = float32(0.8 + 0.4*rng.Float64())
			} else {
				a.Data[i] = float32(0.1 * rng.NormFloat64())
			}
		}
	}
	sp, _ := diffusion.Default("linear", 1000)
	return &checkpoint.Checkpoint{Config: cfg, Params: w, EMA: w, Stats: st, Info: checkpoint.TrainInfo{Schedule: sp, Dataset: "synthetic"},
		AdamM: map[string]models.Array{}, AdamV: map[string]models.Array{}}
}

func tinyDenoiser(variant contract.Variant, norm models.NormKind, null bool) models.Config {
	c := models.DefaultDenoiser()
	c.Variant, c.Norm, c.NullClass = variant, norm, null && variant != contract.Uncond
	c.BaseChannels, c.ChannelMult, c.Groups, c.ImageSize, c.NumClasses = 8, []int{1, 2}, 4, 16, 3
	return c
}

// TestParity: gorgonia's inference forward, ONNX Runtime and the Go
// backend agree on the same weights. Tolerance 1e-4 absolute: both compute in float32 with different
// summation orders (im2col GEMM vs ORT's conv kernels, fused vs unfused
// normalisation); over ~15 layers of O(1) activations the rounding differences
// stay around 1e-6..1e-5, so 1e-4 catches any real lowering error (a wrong
// axis, epsilon or padding moves outputs by 1e-2 or more).
func TestParity(t *testing.T) {
	infertest.ORT(t)
	cases := []models.Config{}
	for _, v := range contract.Variants {
		for _, n := range []models.NormKind{models.BatchNorm, models.GroupNorm} {
			cases = append(cases, tinyDenoiser(v, n, true))
		}
	}
	attn := tinyDenoiser(contract.CBN, models.GroupNorm, true)
	attn.AttnRes = []int{16, 8} // both levels and the middle
	cases = append(cases, attn)
	clf := models.DefaultClassifier()
	clf.BaseChannels, clf.ImageSize, clf.NumClasses, clf.Groups = 8, 16, 3, 4
	cases = append(cases, clf)
	batches := []int{1, 7, 64}
	if testing.Short() {
		batches = []int{7}
	}
	for ci, cfg := range cases {
		name := string(cfg.Kind) + "-" + string(cfg.Variant) + "-" + string(cfg.Norm)
		if len(cfg.AttnRes) > 0 {
			name += "-attention"
		}
		t.Run(name, func(t *testing.T) {
			ck := randomCheckpoint(cfg, uint64(ci+1))
			dir := t.TempDir()
			if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "model.onnx")
			if err := export.Export(dir, path, export.Options{}); err != nil {
				t.Fatal(err)
			}
			testenv.CheckONNX(t, path)
			s, err := infer.Open(path, infer.Options{Threads: 1, Backend: infer.BackendORT})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			gs, err := infer.Open(path, infer.Options{Threads: 1, Backend: infer.BackendGo})
			if err != nil {
				t.Fatal(err)
			}
			defer gs.Close()
			rng := rand.New(rand.NewPCG(3, uint64(ci)))
			for _, n := range batches {
				d := cfg.Channels * cfg.ImageSize * cfg.ImageSize
				x := make([]float32, n*d)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				ts, ys := make([]int, n), make([]int, n)
				t64, y64 := make([]int64, n), make([]int64, n)
				for i := range ts {
					ts[i], ys[i] = rng.IntN(1000), rng.IntN(cfg.LabelRows()+boolInt(cfg.Kind == "classifier"))
					t64[i], y64[i] = int64(ts[i]), int64(ys[i])
				}
				want, wantFeat, err := train.Forward(cfg, ck.EMA, ck.Stats, x, ts, ys)
				if err != nil {
					t.Fatal(err)
				}
				for _, sess := range []*infer.Session{s, gs} {
					var got, gotFeat []float32
					if cfg.Kind == "classifier" {
						got, gotFeat, _, err = sess.Classify(x, n)
					} else {
						got = make([]float32, n*d)
						err = sess.Eps(x, t64, y64, got)
					}
					if err != nil {
						t.Fatal(err)
					}
					diff := maxAbsDiff(want, got)
					if gotFeat != nil {
						diff = math.Max(diff, maxAbsDiff(wantFeat, gotFeat))
					}
					t.Logf("batch %d: max |gorgonia - %s| = %.2g (max |out| %.3g)", n, sess.Backend, diff, maxAbs(want))
					if diff > 1e-4 || math.IsNaN(diff) {
						t.Fatalf("batch %d, %s backend: max abs difference %g > 1e-4", n, sess.Backend, diff)
					}
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return -1
	}
	return 0
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model.onnx")
	if err := export.Export(dir, out, export.Options{}); err == nil {
		t.Fatal("export of a run without a checkpoint succeeded")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s behind", out)
	}
	ck := randomCheckpoint(tinyDenoiser(contract.CBN, models.BatchNorm, false), 1)
	delete(ck.EMA, "conv_in.weight")
	if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	if err := export.Export(dir, out, export.Options{}); err == nil {
		t.Fatal("export of an inconsistent checkpoint succeeded")
	}
	// The output may not be the run's checkpoint or log.
	ck = randomCheckpoint(tinyDenoiser(contract.CBN, models.BatchNorm, false), 1)
	ckPath := filepath.Join(dir, checkpoint.File)
	if err := ck.Save(ckPath); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(ckPath)
	for _, bad := range []string{ckPath, filepath.Join(dir, ".", checkpoint.File), filepath.Join(dir, checkpoint.LogFile)} {
		if err := export.Export(dir, bad, export.Options{}); err == nil || !strings.Contains(err.Error(), "is the run's own") {
			t.Errorf("export --out %s: %v", bad, err)
		}
	}
	if after, _ := os.ReadFile(ckPath); !bytes.Equal(before, after) {
		t.Fatal("a refused export changed the checkpoint")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s behind", out)
	}
}

func maxAbs(a []float32) float64 {
	m := 0.0
	for _, v := range a {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestMetadataRoundTrip: what export writes, the sampler reads back.
func TestMetadataRoundTrip(t *testing.T) {
	infertest.ORT(t)
	cfg := tinyDenoiser(contract.CBN, models.GroupNorm, true)
	cfg.ClassNames = []string{"cat", "dog", "emu"}
	ck := randomCheckpoint(cfg, 4)
	ck.Info.CFGDrop, ck.Info.Steps, ck.Step = 0.1, 7, 7
	ck.Info.Schedule, _ = diffusion.Default("cosine", 500)
	dir := t.TempDir()
	if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.onnx")
	if err := export.Export(dir, path, export.Options{Raw: true}); err != nil {
		t.Fatal(err)
	}
	md, err := infer.ReadMetadata(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := infer.ReadInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, ok, err := models.FromContract(path, info)
	if err != nil || !ok || rebuilt.Variant != cfg.Variant || rebuilt.Norm != cfg.Norm || rebuilt.BaseChannels != cfg.BaseChannels || !rebuilt.NullClass {
		t.Fatalf("config rebuilt from the metadata: %+v %v %v", rebuilt, ok, err)
	}
	if info.Variant != contract.CBN || info.NumClasses != 3 || !info.HasNull || info.Null() != 3 || info.Step != 7 || info.ImageSize != 16 || info.Channels != 1 ||
		info.Schedule != ck.Info.Schedule || info.ClassName(1) != "dog" || info.Prediction != "epsilon" {
		t.Fatalf("read back %+v", info)
	}
	var tr checkpoint.TrainInfo
	if err := json.Unmarshal(info.Train, &tr); err != nil || tr.CFGDrop != 0.1 || tr.Steps != 7 || tr.Norm != "" && tr.Norm != ck.Info.Norm {
		t.Fatalf("%s %s: %v", contract.KeyTrain, info.Train, err)
	}
	for k, v := range export.Metadata(ck) {
		if md[k] != v {
			t.Errorf("metadata %s: wrote %q, read %q", k, v, md[k])
		}
	}
}

// TestInspect: condiff's exports and a PyTorch export follow the contract;
// a file that is not ONNX, or a model without metadata, does not.
func TestInspect(t *testing.T) {
	var out strings.Builder
	if err := infer.Inspect("../infer/testdata/torch_cbn.onnx", &out); err != nil || !strings.Contains(out.String(), "contract: yes") ||
		!strings.Contains(out.String(), "y          int64 [N]") {
		t.Fatalf("torch model: %v\n%s", err, out.String())
	}
	dir := t.TempDir()
	// condiff's own export: its config is rebuilt and every weight checked.
	ck := randomCheckpoint(tinyDenoiser(contract.CBN, models.GroupNorm, true), 3)
	if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(dir, "own.onnx")
	if err := export.Export(dir, own, export.Options{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := infer.Inspect(own, &out); err != nil || !strings.Contains(out.String(), "every parameter of its network present") {
		t.Fatalf("own export: %v\n%s", err, out.String())
	}
	// A config that disagrees with the rest of the metadata is refused.
	md := export.Metadata(ck)
	var c models.Config
	json.Unmarshal([]byte(md[contract.KeyConfig]), &c)
	c.NumClasses = 4
	c.ClassNames = nil
	cb, _ := json.Marshal(c)
	md[contract.KeyConfig] = string(cb)
	liar := graphstest.WriteModel(t, filepath.Join(dir, "liar.onnx"), ck.Config, ck.EMA, ck.Stats, 1000, md)
	out.Reset()
	if err := infer.Inspect(liar, &out); err == nil || !strings.Contains(err.Error(), "num_classes") {
		t.Fatalf("disagreeing config: %v\n%s", err, out.String())
	}
	if _, err := infer.ReadInfo(liar); err == nil || !strings.Contains(err.Error(), contract.KeyConfig) {
		t.Fatalf("the sampler reads a disagreeing config: %v", err)
	}
	empty := filepath.Join(dir, "empty.onnx")
	os.WriteFile(empty, nil, 0o644)
	if err := infer.Inspect(empty, &out); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty file: %v", err)
	}
	bad := filepath.Join(dir, "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if err := infer.Inspect(bad, &out); err == nil {
		t.Fatal("garbage accepted")
	}
	cfg := tinyDenoiser(contract.Uncond, models.BatchNorm, false)
	ck = randomCheckpoint(cfg, 2)
	plain := graphstest.WriteModel(t, filepath.Join(dir, "plain.onnx"), cfg, ck.EMA, ck.Stats, 1000, nil)
	out.Reset()
	if err := infer.Inspect(plain, &out); err == nil || !strings.Contains(out.String(), "contract: NO") || !strings.Contains(err.Error(), contract.KeyNumClasses) {
		t.Fatalf("model without metadata: %v\n%s", err, out.String())
	}
}
