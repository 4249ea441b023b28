// Package condifftorch_test runs the PyTorch trainer's checks from go test:
// python/condiff_torch must build exactly condiff's networks.
package condifftorch_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/internal/testenv"
	"github.com/condiff/condiff/models"
)

// torchPython is Debian's python3 with torch (python3-torch): missing, the
// test skips, and fails under CI=true.
func torchPython(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, onnx, numpy").Run(); err != nil {
		testenv.Missing(t, "python3-torch (PyTorch, with python3-onnx and numpy)")
	}
	return py
}

// pyModule runs python -m condiff_torch.MODULE ARGS with python/ on the path.
func pyModule(t *testing.T, py, module string, args ...string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-m", "condiff_torch." + module}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH=.", "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python -m condiff_torch.%s: %v\n%s", module, err, out)
	}
}

// tinyConfigs are the networks the parity test builds: every denoiser
// variant, both norms, label dropout, attention, and the classifier.
func tinyConfigs() map[string]models.Config {
	base := models.DefaultDenoiser()
	base.ImageSize, base.BaseChannels, base.ChannelMult, base.Groups = 8, 8, []int{1, 2}, 4
	base.NumClasses, base.ClassNames = 3, []string{"a", "b", "c"}
	out := map[string]models.Config{}
	for _, c := range []struct {
		name    string
		variant contract.Variant
		norm    models.NormKind
		null    bool
		attn    []int
	}{
		{"uncond-group", contract.Uncond, models.GroupNorm, false, nil},
		{"cbn-batch-null", contract.CBN, models.BatchNorm, true, nil},
		{"cbn-group-attn", contract.CBN, models.GroupNorm, true, []int{4}},
		{"ac-batch", contract.AC, models.BatchNorm, false, nil},
		{"ac-group-null", contract.AC, models.GroupNorm, true, nil},
	} {
		cfg := base
		cfg.ChannelMult = []int{1, 2}
		cfg.Variant, cfg.Norm, cfg.NullClass, cfg.AttnRes = c.variant, c.norm, c.null, c.attn
		out[c.name] = cfg
	}
	clf := models.DefaultClassifier()
	clf.ImageSize, clf.BaseChannels, clf.Groups, clf.NumClasses, clf.ClassNames = 8, 8, 4, 3, []string{"a", "b", "c"}
	out["classifier"] = clf // group norm: condiff's classifiers have no other
	return out
}

// TestForwardParity: random weights and running statistics, written by
// condiff's ONNX lowering, give the same outputs through condiff_torch's
// Net (loaded by parameter name from the file's initializers) as through
// ONNX Runtime, within 1e-4 of the output's scale (float32 sums in another
// order: about 1e-6 relative), for every network of tinyConfigs.
func TestForwardParity(t *testing.T) {
	infertest.ORT(t)
	py := torchPython(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(41, 42))
	normal := func(n int, sd float64) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64() * sd)
		}
		return s
	}
	for name, cfg := range tinyConfigs() {
		t.Run(name, func(t *testing.T) {
			w := models.InitParams(cfg, 7)
			for k, a := range w { // every weight random: zero-initialised layers would hide a mismatch
				w[k] = models.Array{Shape: a.Shape, Data: normal(len(a.Data), 0.3)}
			}
			stats := models.InitNormStats(cfg)
			statsJSON := map[string][]float32{}
			for k, a := range stats {
				v := normal(len(a.Data), 0.2)
				if filepath.Ext(k) == ".running_var" {
					for i := range v {
						v[i] = 0.5 + float32(math.Abs(float64(v[i])))
					}
				}
				stats[k] = models.Array{Shape: a.Shape, Data: v}
				statsJSON[k] = v
			}
			in := cfg.Contract()
			if cfg.Kind == contract.Denoiser {
				sp, _ := diffusion.Default("linear", 50)
				in.Schedule, in.Prediction = sp, contract.PredictionEpsilon
			}
			model := graphstest.WriteModel(t, filepath.Join(dir, name+".onnx"), cfg, w, stats, 50, in.Metadata())
			n := 3
			x := normal(n*cfg.Channels*cfg.ImageSize*cfg.ImageSize, 1)
			ts, ys := make([]int64, n), make([]int64, n)
			for i := range ts {
				ts[i], ys[i] = int64(r.IntN(50)), int64(r.IntN(cfg.LabelRows()))
			}
			s, err := infer.Open(model, infer.Options{Backend: infer.BackendORT, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var want []float32
			if cfg.Kind == contract.Denoiser {
				want = make([]float32, len(x))
				if err := s.Eps(x, ts, ys, want); err != nil {
					t.Fatal(err)
				}
			} else {
				logits, feats, _, err := s.Classify(x, n)
				if err != nil {
					t.Fatal(err)
				}
				want = append(logits, feats...)
			}
			write := func(path string, v any) {
				b, _ := json.Marshal(v)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			statsPath, inPath, outPath := filepath.Join(dir, name+".stats.json"), filepath.Join(dir, name+".in.json"), filepath.Join(dir, name+".out.json")
			write(statsPath, statsJSON)
			write(inPath, map[string]any{"x": x, "t": ts, "y": ys, "shape": []int{n, cfg.Channels, cfg.ImageSize, cfg.ImageSize}})
			pyModule(t, py, "parity", model, statsPath, inPath, outPath)
			var res map[string][]float32
			b, _ := os.ReadFile(outPath)
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			got := res["eps"]
			if cfg.Kind != contract.Denoiser {
				got = append(res["logits"], res["features"]...)
			}
			if len(got) != len(want) {
				t.Fatalf("torch gave %d values, ONNX Runtime %d", len(got), len(want))
			}
			scale, worst := 0.0, 0.0
			for i := range want {
				scale = max(scale, math.Abs(float64(want[i])))
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("max |torch − ORT| %.3g at output scale %.3g", worst, scale)
			if scale == 0 || worst > 1e-4*max(1, scale) {
				t.Errorf("max |torch − ORT| = %g at scale %g (bound %g)", worst, scale, 1e-4*max(1, scale))
			}
		})
	}
}
