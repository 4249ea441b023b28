package condifftorch_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// runConfig writes what `condiff train --print-config` would for a tiny
// MNIST denoiser (8×8, base 8, group norm, label dropout, Min-SNR-5).
func runConfig(t *testing.T, path string, steps, batch int) {
	runConfigOf(t, path, contract.CBN, steps, batch)
}

// runConfigOf is runConfig for a variant (ac: joint auxiliary classifier,
// weight 0.1).
func runConfigOf(t *testing.T, path string, variant contract.Variant, steps, batch int) {
	t.Helper()
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.Groups, m.BaseChannels, m.ChannelMult = variant, models.GroupNorm, 4, 8, []int{1, 2}
	if variant == cbnBatch { // M_CBN as the study built it: conditional batch norm
		m.Variant, m.Norm = contract.CBN, models.BatchNorm
	}
	sp, _ := diffusion.Default("linear", 1000)
	o := train.Options{Model: m, Data: data.Options{Name: "mnist", Size: 8, Channels: 1},
		TrainInfo: checkpoint.TrainInfo{Steps: steps, Batch: batch, LR: 1e-3, Seed: 3, Schedule: sp, CFGDrop: 0.1, MinSNRGamma: 5, EMADecay: 0.999, GradClip: 1}}
	if variant == contract.AC {
		o.ACWeight = 0.1
	}
	runJSON(t, path, o)
}

// cbnBatch is runConfigOf's M_CBN with batch norm (the others: group norm).
const cbnBatch contract.Variant = "cbn-batch"

// runJSON writes the checkpoint.RunConfig of o (train.Plan), as `condiff
// train --print-config` does.
func runJSON(t *testing.T, path string, o train.Options) {
	t.Helper()
	rc, err := train.Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rc)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// torchrun is the command that starts n processes of the torch trainer on
// this machine (gloo). torch 1.13's torchrun cannot parse its default
// --redirects/--tee of 0 under Python 3.11 (IntFlag no longer iterates
// over 0), so they are given as 1.
func torchrun(n int, args ...string) *exec.Cmd {
	cmd := exec.Command("torchrun", append([]string{"--standalone", "--nproc_per_node", strconv.Itoa(n), "--redirects", "1", "--tee", "1",
		"-m", "condiff_torch.train"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH=.", "OMP_NUM_THREADS=1")
	return cmd
}

// TestDDPEquivalence: two processes under torchrun (gloo on localhost),
// each with half of the global batch, end with the parameters one process
// with the whole batch reaches (the denoiser's, and for M_AC its jointly
// trained classifier's), after the same steps: within 1e-5 of the
// weights' scale (the gradients are averaged in another order; measured
// about 1e-7 after 6 steps). Their logs agree as closely. With batch norm
// the two processes normalise over the global batch (synced statistics),
// and their running statistics end as one process's.
func TestDDPEquivalence(t *testing.T) {
	py := torchPython(t)
	if _, err := exec.LookPath("torchrun"); err != nil {
		t.Fatal("torchrun is missing (python3-torch installs it)")
	}
	for _, variant := range []contract.Variant{contract.CBN, contract.AC, cbnBatch} {
		t.Run(string(variant), func(t *testing.T) { ddpEquivalence(t, py, variant) })
	}
}

func ddpEquivalence(t *testing.T, py string, variant contract.Variant) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.json")
	runConfigOf(t, cfg, variant, 6, 8)
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	pyModule(t, py, "train", "--config", cfg, "--out", one, "--save-every", "0")
	if out, err := torchrun(2, "--config", cfg, "--out", two, "--save-every", "0").CombinedOutput(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	out, err := exec.Command(py, "-c", `import sys, torch
a, b = torch.load(sys.argv[1] + "/checkpoint.pt"), torch.load(sys.argv[2] + "/checkpoint.pt")
assert a["step"] == b["step"] == 6, (a["step"], b["step"])
d = max((a["net"][k] - b["net"][k]).abs().max().item() for k in a["net"])
if a.get("clf"):
    d = max(d, max((a["clf"][k] - b["clf"][k]).abs().max().item() for k in a["clf"]))
stats = [k for k in a["net"] if "running_" in k]
if sys.argv[3] == "cbn-batch":
    assert stats, "a batch-norm run without running statistics"
d = max([d] + [(a["net"][k] - b["net"][k]).abs().max().item() for k in stats])
s = max(v.abs().max().item() for v in a["net"].values())
print(d, s)`, one, two, string(variant)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	diff, _ := strconv.ParseFloat(f[0], 64)
	scale, _ := strconv.ParseFloat(f[1], 64)
	t.Logf("max |2 processes − 1 process| = %.3g at weight scale %.3g", diff, scale)
	if scale == 0 || diff > 1e-5*scale {
		t.Errorf("2 processes end %g from 1 process (bound %g)", diff, 1e-5*scale)
	}
	la, _ := os.ReadFile(filepath.Join(one, "log.jsonl"))
	lb, _ := os.ReadFile(filepath.Join(two, "log.jsonl"))
	ea, eb := strings.Split(strings.TrimSpace(string(la)), "\n"), strings.Split(strings.TrimSpace(string(lb)), "\n")
	if len(ea) != 6 || len(eb) != 6 {
		t.Fatalf("logs of %d and %d lines, want 6", len(ea), len(eb))
	}
	for i := range ea {
		var a, b checkpoint.LogEntry
		json.Unmarshal([]byte(ea[i]), &a)
		json.Unmarshal([]byte(eb[i]), &b)
		if a.Step != i+1 || b.Step != i+1 || a.Loss <= 0 || abs(a.Loss-b.Loss) > 1e-5*a.Loss {
			t.Errorf("step %d: loss %g (1 process) and %g (2)", i, a.Loss, b.Loss)
		}
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestTorchResume: a torch run stopped at step 3 (its log holding a line
// past the checkpoint, as a kill leaves it) and resumed to step 6 ends with
// the parameters, EMA and log of a run straight to step 6, bit for bit (the
// checkpoint holds the weights, EMA, Adam's moments and the batch RNG).
func TestTorchResume(t *testing.T) {
	py := torchPython(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.json")
	runConfig(t, cfg, 6, 4)
	straight, split := filepath.Join(dir, "straight"), filepath.Join(dir, "split")
	pyModule(t, py, "train", "--config", cfg, "--out", straight)
	pyModule(t, py, "train", "--config", cfg, "--out", split, "--steps", "3")
	// A kill after the checkpoint leaves log lines past it: resuming drops them.
	f, _ := os.OpenFile(filepath.Join(split, "log.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step": 4, "loss": 9, "img_per_s": 1}` + "\n")
	f.Close()
	pyModule(t, py, "train", "--resume", "--out", split, "--steps", "6")
	out, err := exec.Command(py, "-c", `import sys, torch
a, b = torch.load(sys.argv[1] + "/checkpoint.pt"), torch.load(sys.argv[2] + "/checkpoint.pt")
assert a["step"] == b["step"] == 6, (a["step"], b["step"])
for part in ("net", "ema"):
    for k in a[part]:
        assert torch.equal(a[part][k], b[part][k]), (part, k)
print("same")`, straight, split).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "same" {
		t.Fatalf("the resumed run differs from the straight one: %v\n%s", err, out)
	}
	la, _ := os.ReadFile(filepath.Join(straight, "log.jsonl"))
	lb, _ := os.ReadFile(filepath.Join(split, "log.jsonl"))
	strip := func(b []byte) []string { // img_per_s differs; the rest must not
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e checkpoint.LogEntry
			json.Unmarshal([]byte(l), &e)
			e.ImgPerS = 0
			s, _ := json.Marshal(e)
			out = append(out, string(s))
		}
		return out
	}
	if a, b := strip(la), strip(lb); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("logs differ:\n%s\n--\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}
