package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
)

const torchModel = "../../../infer/testdata/torch_cbn.onnx"

// tinyUncond writes an unconditional U-Net with T=20.
func tinyUncond(t *testing.T) string {
	cfg := models.DefaultDenoiser()
	cfg.Variant, cfg.ImageSize, cfg.BaseChannels, cfg.ChannelMult = contract.Uncond, 8, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 20)
	in := cfg.Contract()
	in.Schedule, in.Prediction = sp, contract.PredictionEpsilon
	return graphstest.WriteModel(t, filepath.Join(t.TempDir(), "uncond.onnx"), cfg, models.InitParams(cfg, 1), models.InitNormStats(cfg), 20, in.Metadata())
}

// TestSampleFlags: the library's field errors come back in flag terms;
// --class takes a name; ddpm without --steps takes all T steps.
func TestSampleFlags(t *testing.T) {
	infertest.ORT(t)
	out := t.TempDir()
	common := []string{"--model", torchModel, "--threads", "1", "--batch", "2"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "1001"}, "diffusion: --steps 1001: out of 1..1000"},
		{[]string{"--sampler", "euler"}, `diffusion: --sampler "euler": not ` + diffusion.SamplerNames()},
		{[]string{"--sampler", "dpm++2m", "--eta", "1"}, "diffusion: --eta 1: the dpm++2m sampler is not stochastic"},
		{[]string{"--shard", "2/2"}, `infer: --shard "2/2": not k/n with 0 <= k < n`},
		{[]string{"--n", "0"}, "infer: --n 0: must be > 0"},
		{[]string{"--guidance", "-1"}, "diffusion: --guidance -1: must be a number >= 0 and finite as float32"},
		{[]string{"--guidance", "1e300"}, "diffusion: --guidance 1e+300: must be a number >= 0 and finite as float32"},
		{[]string{"--device", "tpu"}, `infer: --device "tpu": not cpu, cuda, cuda:ID or auto`},
		{[]string{"--class", "zebra"}, "--class: class \"zebra\" does not exist; valid classes: a, b, c"},
		{[]string{"--sampler", "ddpm", "--steps", "10"}, "diffusion: --steps 10: the ddpm sampler takes all 1000 steps"},
	} {
		err := Sample(append(append([]string{"--out", filepath.Join(out, "x")}, common...), c.args...))
		if err == nil || err.Error() != c.want && !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: %v; want %q", c.args, err, c.want)
		}
	}
	dir := filepath.Join(out, "b")
	if err := Sample(append([]string{"--out", dir, "--class", "b", "--n", "2", "--steps", "3"}, common...)); err != nil {
		t.Fatal(err)
	}
	var m infer.Manifest
	raw, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Images) != 2 || m.Images[0].ClassName != "b" || m.Images[1].Class != 1 {
		t.Fatalf("--class b: %v %+v", err, m.Images)
	}
	unc := tinyUncond(t)
	dir = filepath.Join(out, "ddpm")
	if err := Sample([]string{"--model", unc, "--out", dir, "--sampler", "ddpm", "--n", "1", "--threads", "1"}); err != nil {
		t.Fatalf("ddpm with the default --steps: %v", err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(raw, &m); err != nil || m.Steps != 20 || m.Sampler != "ddpm" {
		t.Fatalf("ddpm manifest: %v steps %d", err, m.Steps)
	}
}

// TestDefaultModel: the shipped model is found from the repository, from
// any directory inside it, whatever the working directory's depth.
func TestDefaultModel(t *testing.T) {
	t.Setenv("CONDIFF_MODEL", "")
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	for _, dir := range []string{wd, filepath.Join(wd, "..", "..", "..", "docs")} {
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		p, err := FindDefaultModel()
		if err != nil {
			t.Fatalf("from %s: %v", dir, err)
		}
		if _, err := os.Stat(p); err != nil || !strings.HasSuffix(p, DefaultModel) {
			t.Fatalf("from %s: found %s (%v)", dir, p, err)
		}
	}
	if err := os.Chdir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if p, err := FindDefaultModel(); err == nil && !strings.HasSuffix(p, DefaultModel) {
		t.Fatalf("outside the repository: %s", p)
	}
	t.Setenv("CONDIFF_MODEL", "/elsewhere/m.onnx")
	if p, _ := FindDefaultModel(); p != "/elsewhere/m.onnx" {
		t.Fatalf("CONDIFF_MODEL ignored: %s", p)
	}
}

// TestAutoShard: --shard auto reads the shard from a Slurm array's or a
// Kubernetes Indexed Job's environment, and says what is missing.
func TestAutoShard(t *testing.T) {
	for _, c := range []struct {
		spec string
		env  map[string]string
		want string // a shard, or an error's text
	}{
		{"2/5", nil, "2/5"},
		{"", nil, ""},
		// --array=1-8: task 4 is the fourth of eight.
		{"auto", slurm(4, 1, 8, 1, 8), "3/8"},
		{"auto", slurm(0, 0, 1, 1, 2), "0/2"},
		// --array=0-14:2: eight tasks, task 6 is the fourth.
		{"auto", slurm(6, 0, 14, 2, 8), "3/8"},
		{"auto", slurm(14, 0, 14, 2, 8), "7/8"},
		// --array=1,3,7: not evenly spaced (Slurm's step is 1 there).
		{"auto", slurm(3, 1, 7, 1, 3), "not evenly spaced"},
		{"auto", slurm(3, 0, 14, 2, 8), "not evenly spaced"},
		{"auto/8", map[string]string{"JOB_COMPLETION_INDEX": "7"}, "7/8"},
		{"auto", map[string]string{"JOB_COMPLETION_INDEX": "7"}, "give --shard auto/N"},
		{"auto", nil, "neither $JOB_COMPLETION_INDEX"},
		{"auto/0", nil, "not auto/N"},
		{"auto", map[string]string{"SLURM_ARRAY_TASK_ID": "x"}, `$SLURM_ARRAY_TASK_ID="x"`},
		{"auto", map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT is not set"},
		// auto/N: the indices are the shards, a sparse rerun included.
		{"auto/8", slurm(5, 3, 5, 2, 2), "5/8"},
		{"auto/8", slurm(3, 3, 5, 2, 2), "3/8"},
		{"auto/4", slurm(4, 0, 4, 1, 5), "$SLURM_ARRAY_TASK_ID=4 is not a shard of 4"},
		{"auto/8", map[string]string{"JOB_COMPLETION_INDEX": "8"}, "$JOB_COMPLETION_INDEX=8 is not below the 8 completions"},
	} {
		got, err := AutoShard(c.spec, func(k string) string { return c.env[k] })
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) || err == nil && got != c.want {
			t.Errorf("%q %v: %q, want %q", c.spec, c.env, got, c.want)
		}
	}
	// Through the command: the environment of a Slurm task picks the shard.
	infertest.ORT(t)
	for k, v := range slurm(1, 0, 1, 1, 2) {
		t.Setenv(k, v)
	}
	dir := filepath.Join(t.TempDir(), "s")
	if err := Sample([]string{"--model", torchModel, "--out", dir, "--class", "a", "--n", "4", "--steps", "2", "--threads", "1", "--shard", "auto"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.shard-1-of-2.json")); err != nil {
		t.Fatalf("--shard auto with Slurm task 1 of 2 wrote no shard 1 manifest: %v", err)
	}
}

// slurm is the environment of a Slurm array task.
func slurm(id, lo, hi, step, count int) map[string]string {
	return map[string]string{"SLURM_ARRAY_TASK_ID": fmt.Sprint(id), "SLURM_ARRAY_TASK_MIN": fmt.Sprint(lo),
		"SLURM_ARRAY_TASK_MAX": fmt.Sprint(hi), "SLURM_ARRAY_TASK_STEP": fmt.Sprint(step), "SLURM_ARRAY_TASK_COUNT": fmt.Sprint(count)}
}

// TestServeTokenFile: a token no client can send (two lines, a space, a
// control character) is refused naming the file, before anything starts.
func TestServeTokenFile(t *testing.T) {
	for _, tok := range []string{"abc\ndef\n", "two words", "tab\there"} {
		f := filepath.Join(t.TempDir(), "token")
		os.WriteFile(f, []byte(tok), 0o600)
		err := Serve([]string{"--model", torchModel, "--token-file", f, "--listen", "127.0.0.1:0"})
		if err == nil || !strings.Contains(err.Error(), "--token-file "+f) || !strings.Contains(err.Error(), "visible ASCII") {
			t.Errorf("token %q: %v", tok, err)
		}
	}
}

// TestModelDefaults: a model's sidecar (NAME.sampling.json) sets what
// sample does when a flag is not given: sampler, steps, guidance, interval
// and guide (relative to the sidecar); flags win; --guide none drops the
// guide; a bad sidecar is refused naming the file and the field.
func TestModelDefaults(t *testing.T) {
	dir := t.TempDir()
	model := graphstest.TinyDenoiser(t, dir, "m", 50, graphstest.PatternWeights(1), nil)
	graphstest.TinyDenoiser(t, dir, "g", 50, graphstest.PatternWeights(0.7), nil)
	side := infer.SamplingFile(model)
	write := func(s string) {
		if err := os.WriteFile(side, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := func(args ...string) (*infer.Manifest, error) {
		out := filepath.Join(t.TempDir(), "s")
		if err := Sample(append([]string{"--model", model, "--backend", "go", "--threads", "1", "--n", "1", "--out", out}, args...)); err != nil {
			return nil, err
		}
		return infer.ReadSampleDir(out)
	}
	m, err := manifest()
	if err != nil || m.Sampler != "ddim" || m.Steps != 20 || m.Guidance != 1 || m.Guide != "" || m.GuidanceInterval != "" {
		t.Fatalf("built-in defaults: %+v %v", m, err)
	}
	write(`{"sampler": "dpm++2m", "steps": 6, "guidance": 2, "guidance_interval": "0.5,10", "guide": "g.onnx", "source": "test"}`)
	m, err = manifest()
	if err != nil || m.Sampler != "dpm++2m" || m.Steps != 6 || m.Guidance != 2 || m.Guide != filepath.Join(dir, "g.onnx") || m.GuidanceInterval != "0.5,10" {
		t.Fatalf("the sidecar's defaults: %+v %v", m, err)
	}
	m, err = manifest("--guidance", "0.5", "--guide", "none", "--guidance-interval", "none", "--sampler", "ddim")
	if err != nil || m.Sampler != "ddim" || m.Steps != 20 || m.Guidance != 0.5 || m.Guide != "" || m.GuidanceInterval != "" {
		t.Fatalf("flags over the sidecar: %+v %v", m, err)
	}
	if m, err = manifest("--guidance", "0"); err != nil || m.Guide != "" || m.Guidance != 0 {
		t.Fatalf("--guidance 0 with a sidecar guide: %+v %v", m, err)
	}
	for body, field := range map[string]string{
		`{"sampler": "euler"}`:                            "sampler",
		`{"sampler": "ddim", "guidance_interval": "2,1"}`: "guidance_interval",
		`{"sampler": "ddim", "guide": "../g.onnx"}`:       "guide",
		`{"sampler": "ddim", "guide": "missing.onnx"}`:    "guide",
		`{"sampler": "ddim", "cfg": 2}`:                   "cfg",
	} {
		write(body)
		if _, err := manifest(); err == nil || !strings.Contains(err.Error(), side) || !strings.Contains(err.Error(), field) {
			t.Errorf("sidecar %s: %v; want a refusal naming %s and %s", body, err, side, field)
		}
	}
}
