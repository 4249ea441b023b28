package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/models"
)

// The hostile-input suite runs the real binaries, each under a 4 GiB
// address-space cap (RLIMIT_AS, through the shell's ulimit) and a time
// limit, and checks what a user sees: exit status 1, one line on stderr
// naming the file, field or flag, and no output files.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "condiff-hostile")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, b := range []string{"condiff", "condiff-run"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../"+b).CombinedOutput(); err != nil {
			os.Stderr.Write(out)
			panic(err)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const memCapKB = 4 << 20 // 4 GiB of address space

type result struct {
	code   int
	stderr string
}

// run runs a binary with args under the memory cap and a 90 s limit.
func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script := `ulimit -v ` + strconv.Itoa(memCapKB) + ` && exec "$@"`
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, "sh", filepath.Join(binDir, bin)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &bytes.Buffer{}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 90 s", bin, args)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stderr.String()}
}

// refused checks a refusal: status 1, a one-line error containing every
// want, and nothing in the output directory out (if given).
func refused(t *testing.T, r result, out string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error line %q does not name %q", last, w)
		}
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("a panic:\n%s", r.stderr)
	}
	if out != "" {
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") { // lock files
				t.Errorf("output left behind: %s", filepath.Join(out, e.Name()))
			}
		}
	}
}

// hostileModel writes a small denoiser whose metadata is edited by edit,
// and whose weights are all set to fill when fill is not 0.
func hostileModel(t *testing.T, edit func(md map[string]string), fill float32) string {
	var fillAll func(w map[string]models.Array)
	if fill != 0 {
		fillAll = func(w map[string]models.Array) {
			for _, a := range w {
				for i := range a.Data {
					a.Data[i] = fill
				}
			}
		}
	}
	return graphstest.TinyDenoiser(t, t.TempDir(), "model", 50, fillAll, edit)
}

func TestHostileModels(t *testing.T) {
	infertest.ORT(t)
	nan := float32(0)
	nan = nan / nan
	cases := []struct {
		name string
		edit func(md map[string]string)
		fill float32
		args []string
		want []string
	}{
		{"channels 2", func(md map[string]string) { md[contract.KeyChannels] = "2" }, 0, nil, []string{"model.onnx", contract.KeyChannels}},
		{"channels 4", func(md map[string]string) { md[contract.KeyChannels] = "4" }, 0, nil, []string{contract.KeyChannels}},
		{"1e12 classes", func(md map[string]string) { md[contract.KeyNumClasses] = "1000000000000" }, 0, []string{"--class", "foo"}, []string{contract.KeyNumClasses}},
		{"image size 100000", func(md map[string]string) { md[contract.KeyImageSize] = "100000" }, 0, nil, []string{contract.KeyImageSize}},
		{"degenerate schedule", func(md map[string]string) {
			md[contract.KeySchedule] = `{"kind":"linear","T":1000,"beta_start":0.5,"beta_end":0.999}` // ᾱ underflows to 0
		}, 0, nil, []string{contract.KeySchedule, "degenerates"}},
		{"schedule with data after it", func(md map[string]string) {
			md[contract.KeySchedule] += ` {"kind":"cosine"}`
		}, 0, nil, []string{contract.KeySchedule, "data after the JSON value"}},
		{"NaN model", nil, nan, nil, []string{"step 1 of", "not finite", "no image of this batch"}},
		{"NaN guidance", nil, 0, []string{"--guidance", "NaN"}, []string{"--guidance NaN"}},
		{"Inf guidance", nil, 0, []string{"--guidance", "Inf"}, []string{"--guidance +Inf"}},
		{"NaN eta", nil, 0, []string{"--eta", "NaN"}, []string{"--eta NaN"}},
		{"ddpm 50 steps of 50", nil, 0, []string{"--sampler", "ddpm", "--steps", "7"}, []string{"--steps 7", "ddpm"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model := hostileModel(t, c.edit, c.fill)
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"sample", "--model", model, "--out", out, "--n", "2", "--steps", "5", "--threads", "1"}, c.args...)
			refused(t, run(t, "condiff-run", args...), out, c.want...)
		})
	}
	// A batch flag of a billion allocates by the images, not by the flag.
	model := hostileModel(t, nil, 0)
	out := filepath.Join(t.TempDir(), "big-batch")
	if r := run(t, "condiff-run", "sample", "--model", model, "--out", out, "--n", "2", "--steps", "3", "--batch", "1000000000", "--threads", "1"); r.code != 0 {
		t.Fatalf("--batch 1e9 with 6 images: status %d\n%s", r.code, r.stderr)
	}
	// A classifier is not a denoiser; an empty file is not a model.
	refused(t, run(t, "condiff-run", "sample", "--model", "../../assets/pretrained/mnist-clf.onnx", "--out", filepath.Join(t.TempDir(), "o")), "", "--model", "classifier, not a denoiser")
	empty := filepath.Join(t.TempDir(), "empty.onnx")
	os.WriteFile(empty, nil, 0o644)
	refused(t, run(t, "condiff-run", "inspect", empty), "", "empty.onnx", "empty")
}

func TestHostileTraining(t *testing.T) {
	tiny := []string{"--size", "8", "--base", "8", "--mult", "1,2", "--groups", "4", "--norm", "group", "--steps", "2", "--synthetic-per-class", "8"}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--lr", "inf"}, []string{"--lr +Inf"}},
		{[]string{"--ema", "2"}, []string{"--ema 2"}},
		{[]string{"--cfg-drop", "NaN"}, []string{"--cfg-drop NaN"}},
		{[]string{"--variant", "ac", "--ac-weight", "NaN"}, []string{"--ac-weight NaN"}},
		{[]string{"--grad-clip", "-Inf"}, []string{"--grad-clip -Inf"}},
		{[]string{"--size", "100000"}, []string{"--size 100000"}},
		{[]string{"--synthetic-per-class", "1000000000"}, []string{"--synthetic-per-class 1000000000"}},
	} {
		out := filepath.Join(t.TempDir(), "run")
		refused(t, run(t, "condiff", append(append([]string{"train", "--out", out}, tiny...), c.args...)...), out, c.want...)
	}
	// An IDX header claiming 2^24 images of 4096×4096 over 100 bytes.
	dir := t.TempDir()
	gz := filepath.Join(dir, "train-images-idx3-ubyte.gz")
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, [4]uint32{0x803, 1 << 24, 4096, 4096})
	b.Write(make([]byte, 100))
	os.WriteFile(gz+".raw", b.Bytes(), 0o644)
	if out, err := exec.Command("sh", "-c", "gzip -c "+gz+".raw > "+gz).CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v %s", err, out)
	}
	out := filepath.Join(t.TempDir(), "run")
	refused(t, run(t, "condiff", append([]string{"train", "--out", out, "--data", "mnist", "--data-dir", dir}, tiny...)...), out, gz)
	b.Reset()
	binary.Write(&b, binary.BigEndian, [4]uint32{0x803, 4, 8, 8})
	b.Write(make([]byte, 10)) // 256 bytes promised
	os.WriteFile(gz+".raw", b.Bytes(), 0o644)
	exec.Command("sh", "-c", "gzip -c "+gz+".raw > "+gz).Run()
	refused(t, run(t, "condiff", append([]string{"train", "--out", out, "--data", "mnist", "--data-dir", dir}, tiny...)...), out, gz, "truncated")

	// A PNG whose header claims 60000×60000 is not decoded, even with --skip-bad.
	folder := t.TempDir()
	for _, cls := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(folder, cls), 0o755)
		var p bytes.Buffer
		png.Encode(&p, image.NewGray(image.Rect(0, 0, 60000, 1)))
		raw := p.Bytes()
		raw[20], raw[21], raw[22], raw[23] = 0, 0, 0xea, 0x60 // IHDR height = 60000
		binary.BigEndian.PutUint32(raw[29:33], crc32.ChecksumIEEE(raw[12:29]))
		os.WriteFile(filepath.Join(folder, cls, "bomb.png"), raw, 0o644)
	}
	refused(t, run(t, "condiff", append([]string{"train", "--out", out, "--data", "folder:" + folder, "--skip-bad"}, tiny...)...), out, "holds no readable")
	refused(t, run(t, "condiff", append([]string{"train", "--out", out, "--data", "folder:" + folder}, tiny...)...), out, "bomb.png", "60000×60000", "--skip-bad")
}

func TestHostileRuns(t *testing.T) {
	tiny := []string{"--size", "8", "--base", "8", "--mult", "1,2", "--groups", "4", "--norm", "group", "--synthetic-per-class", "8"}
	out := filepath.Join(t.TempDir(), "run")
	if r := run(t, "condiff", append([]string{"train", "--out", out, "--steps", "2"}, tiny...)...); r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	ck := filepath.Join(out, "checkpoint.gob")
	good, _ := os.ReadFile(ck)
	// Resume takes the checkpoint's target and refuses contradicting flags.
	refused(t, run(t, "condiff", "train", "--out", out, "--resume", "--size", "16", "--variant", "ac"), "", "--size 16", "--variant ac")
	// Export never overwrites the checkpoint.
	refused(t, run(t, "condiff", "export", "--run", out, "--out", ck), "", "--out", "checkpoint.gob")
	if now, _ := os.ReadFile(ck); !bytes.Equal(now, good) {
		t.Fatal("the refused export changed the checkpoint")
	}
	// A flipped byte is noticed.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(ck, bad, 0o644)
	model := filepath.Join(t.TempDir(), "m.onnx")
	refused(t, run(t, "condiff", "export", "--run", out, "--out", model), "", "checkpoint.gob")
	if _, err := os.Stat(model); err == nil {
		t.Fatal("export of a damaged checkpoint wrote a model")
	}
	os.WriteFile(ck, good, 0o644)

	// Two trainers on one --out: the second is refused while the first runs.
	busy := filepath.Join(t.TempDir(), "busy")
	first := exec.Command(filepath.Join(binDir, "condiff"), append([]string{"train", "--out", busy, "--steps", "100000"}, tiny...)...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(busy, "log.jsonl")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first trainer did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := run(t, "condiff", append([]string{"train", "--out", busy, "--resume", "--steps", "5"}, tiny...)...)
	refused(t, r, "", busy, "in use by another condiff process")
}

func TestHostileSamples(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	m := `{"model":"m.onnx","sampler":"ddim","steps":5,"complete":true,"images":[%s]}`
	for _, c := range []struct{ images, want string }{
		{`{"index":0,"class":-1,"file":"a.png"}`, "negative class"},
		{`{"index":0,"class":0,"file":"../../etc/passwd"}`, "own directory"},
		{`{"index":0,"class":0,"file":"a.png"},{"index":0,"class":0,"file":"a.png"}`, "listed twice"},
		{`]} {"images": [`, "data after the JSON value"},
	} {
		d := filepath.Join(dir, strings.ReplaceAll(c.want, " ", "-"))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "manifest.json"), []byte(strings.Replace(m, "%s", c.images, 1)), 0o644)
		out := filepath.Join(t.TempDir(), "eval")
		refused(t, run(t, "condiff-run", "eval", "--samples", d, "--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist", "--out", out), out, "manifest.json", c.want)
	}
}

// TestSignals: SIGINT during training checkpoints the step in progress and
// exits 1 naming the step and how to resume; the run resumes from there.
func TestSignals(t *testing.T) {
	tiny := []string{"--size", "8", "--base", "8", "--mult", "1,2", "--groups", "4", "--norm", "group", "--synthetic-per-class", "8"}
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(filepath.Join(binDir, "condiff"), append([]string{"train", "--out", out, "--steps", "100000", "--save-every", "0"}, tiny...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(out, "log.jsonl")); bytes.Count(b, []byte("\n")) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no 3 steps in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted at step") || !strings.Contains(stderr.String(), "--resume --out "+out) {
		t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
	}
	b, _ := os.ReadFile(filepath.Join(out, "log.jsonl"))
	k := bytes.Count(b, []byte("\n"))
	if r := run(t, "condiff", "train", "--out", out, "--resume", "--steps", strconv.Itoa(k+2)); r.code != 0 {
		t.Fatalf("resume: %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "log.jsonl")); bytes.Count(b, []byte("\n")) != k+2 {
		t.Fatalf("after resuming from step %d to %d the log has %d lines", k, k+2, bytes.Count(b, []byte("\n")))
	}
}

// TestHostileCAS: cas refuses a missing or broken evaluation, a broken
// flag and a report whose classifier is gone, naming each, and leaves the
// evaluation's report as it was.
func TestHostileCAS(t *testing.T) {
	dir := t.TempDir()
	refused(t, run(t, "condiff", "cas"), "", "--eval")
	refused(t, run(t, "condiff", "cas", "--eval", dir), dir, "report.json")
	report := filepath.Join(dir, "report.json")
	for _, tc := range []struct {
		body string
		args []string
		want []string
	}{
		{"{not json", nil, []string{"report.json"}},
		{`{"classifier": "", "dataset": "mnist"}`, nil, []string{"names no classifier"}},
		{`{"classifier": "c.onnx", "dataset": "mnist", "accuracy": null}`, nil, []string{"unconditional"}},
		{`{"classifier": "` + filepath.Join(dir, "gone.onnx") + `", "dataset": "mnist", "accuracy": 0.9}`, nil, []string{"gone.onnx"}},
		{`{"classifier": "x.onnx", "dataset": "mnist", "accuracy": 0.9}`, []string{"--subsets", "10,x"}, []string{"--subsets"}},
	} {
		if err := os.WriteFile(report, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, "condiff", append([]string{"cas", "--eval", dir}, tc.args...)...)
		refused(t, r, "", tc.want...)
		if b, _ := os.ReadFile(report); string(b) != tc.body {
			t.Errorf("%v: the report was rewritten: %q", tc.args, b)
		}
	}
}

// TestHostileLockLinks: a lock file planted as a symbolic link is refused,
// naming it, and nothing is written through it (class 3 of the hostile
// round two).
func TestHostileLockLinks(t *testing.T) {
	infertest.ORT(t)
	for _, c := range []struct {
		lock string
		args func(out string) []string
	}{
		{".samples.lock", func(out string) []string {
			return []string{"sample", "--model", "../../infer/testdata/torch_cbn.onnx", "--n", "1", "--steps", "2", "--threads", "1", "--out", out}
		}},
		{".train.lock", func(out string) []string {
			return []string{"train", "--out", out, "--steps", "1", "--size", "8", "--base", "8", "--mult", "1", "--synthetic-per-class", "2", "--batch", "2"}
		}},
	} {
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim.txt")
		os.WriteFile(victim, []byte("precious data\n"), 0o644)
		out := filepath.Join(dir, "out")
		os.MkdirAll(out, 0o755)
		if err := os.Symlink(victim, filepath.Join(out, c.lock)); err != nil {
			t.Fatal(err)
		}
		refused(t, run(t, "condiff", c.args(out)...), out, c.lock, "symbolic link")
		if b, _ := os.ReadFile(victim); string(b) != "precious data\n" {
			t.Errorf("%s: the link's target was written: %q", c.lock, b)
		}
	}
}

// TestHostileClassifier: a contract-valid classifier whose outputs are NaN
// is refused by eval, naming the output, instead of scoring (class 5).
func TestHostileClassifier(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	cfg := models.DefaultClassifier()
	cfg.ImageSize, cfg.BaseChannels, cfg.Groups, cfg.NumClasses, cfg.ClassNames = 8, 8, 4, 4, []string{"disc", "square", "hstripes", "vstripes"}
	w := models.InitParams(cfg, 1)
	nan := float32(0)
	nan /= nan
	for _, a := range w {
		for i := range a.Data {
			a.Data[i] = nan
		}
	}
	clf := graphstest.WriteModel(t, filepath.Join(dir, "clf.onnx"), cfg, w, models.InitNormStats(cfg), 0, cfg.Contract().Metadata())
	samples := filepath.Join(dir, "samples")
	os.MkdirAll(samples, 0o755)
	var entries []string
	for i := 0; i < 4; i++ {
		var b bytes.Buffer
		png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)))
		name := "s" + strconv.Itoa(i) + ".png"
		os.WriteFile(filepath.Join(samples, name), b.Bytes(), 0o644)
		entries = append(entries, `{"index":`+strconv.Itoa(i)+`,"class":`+strconv.Itoa(i)+`,"file":"`+name+`"}`)
	}
	os.WriteFile(filepath.Join(samples, "manifest.json"), []byte(`{"model":"m.onnx","sampler":"ddim","steps":2,"complete":true,"images":[`+strings.Join(entries, ",")+`]}`), 0o644)
	out := filepath.Join(dir, "eval")
	refused(t, run(t, "condiff-run", "eval", "--samples", samples, "--classifier", clf, "--data", "synthetic", "--synthetic-per-class", "8", "--out", out, "--threads", "1"),
		"", "clf.onnx", "not finite")
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		t.Error("a report was written from NaN outputs")
	}
}

// TestHostileEvalDirShared: while one process holds an evaluation
// directory, cas and eval on it are refused and its report is left as it
// was (class 9).
func TestHostileEvalDirShared(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	body := `{"classifier": "x.onnx", "dataset": "mnist", "accuracy": 0.9}`
	os.WriteFile(report, []byte(body), 0o644)
	unlock, err := fsutil.Lock(dir, eval.LockName)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	refused(t, run(t, "condiff", "cas", "--eval", dir), "", "--eval", "in use by another condiff process")
	refused(t, run(t, "condiff-run", "eval", "--samples", dir, "--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist", "--out", dir),
		"", "in use by another condiff process")
	if b, _ := os.ReadFile(report); string(b) != body {
		t.Errorf("the report was rewritten: %q", b)
	}
}

// TestHostileCounts: every count is checked with overflow-safe arithmetic
// and refused in one line naming its flag (class 7).
func TestHostileCounts(t *testing.T) {
	infertest.ORT(t)
	torch := "../../infer/testdata/torch_cbn.onnx"
	cfg := models.DefaultDenoiser()
	cfg.Variant, cfg.ImageSize, cfg.BaseChannels, cfg.ChannelMult = contract.Uncond, 32, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 20)
	in := cfg.Contract()
	in.Schedule, in.Prediction = sp, contract.PredictionEpsilon
	uncond := graphstest.WriteModel(t, filepath.Join(t.TempDir(), "uncond.onnx"), cfg, models.InitParams(cfg, 1), models.InitNormStats(cfg), 20, in.Metadata())
	for _, c := range []struct {
		bin  string
		args []string
		want string
	}{
		{"condiff-run", []string{"sample", "--model", torch, "--class", "a", "--n", "99999999999"}, "--n 99999999999"},
		{"condiff-run", []string{"sample", "--model", torch, "--threads", "100000"}, "--threads 100000"},
		{"condiff-run", []string{"sample", "--model", torch, "--threads", "2147483648"}, "--threads 2147483648"},
		{"condiff-run", []string{"eval", "--model", uncond, "--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist",
			"--n-per-class", "4611686018427387908"}, "--n-per-class 4611686018427387908"},
		{"condiff", []string{"train", "--steps", "1", "--batch", "100000000"}, "--batch 100000000"},
		{"condiff", []string{"cas", "--eval", t.TempDir(), "--batch", "100000000"}, "--batch 100000000"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		args := append(c.args, "--out", out)
		if c.args[0] == "cas" {
			args = c.args
		}
		refused(t, run(t, c.bin, args...), out, c.want)
	}
}

// TestHostileCheckpointDowngrade: a format-2 checkpoint relabelled as
// format 1 (which has no checksum) with a changed weight is refused
// (class 6); a checkpoint that is a FIFO is refused at once (class 1).
func TestHostileCheckpointDowngrade(t *testing.T) {
	run1 := filepath.Join(t.TempDir(), "run")
	if r := run(t, "condiff", "train", "--out", run1, "--steps", "1", "--size", "8", "--base", "8", "--mult", "1", "--synthetic-per-class", "2", "--batch", "2"); r.code != 0 {
		t.Fatalf("train: %s", r.stderr)
	}
	ck := filepath.Join(run1, "checkpoint.gob")
	b, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("condiff-checkpoint-2"))
	if i < 0 {
		t.Fatal("no format tag in the checkpoint")
	}
	b[i+len("condiff-checkpoint-")] = '1'
	b[len(b)/2] ^= 1 // a byte of the weights
	os.WriteFile(ck, b, 0o644)
	out := filepath.Join(t.TempDir(), "m.onnx")
	refused(t, run(t, "condiff", "export", "--run", run1, "--out", out), "", "checkpoint.gob")
	if _, err := os.Stat(out); err == nil {
		t.Error("an altered checkpoint was exported")
	}
	fifo := filepath.Join(t.TempDir(), "run")
	os.MkdirAll(fifo, 0o755)
	if err := syscall.Mkfifo(filepath.Join(fifo, "checkpoint.gob"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, run(t, "condiff", "export", "--run", fifo, "--out", out), "", "not a regular file")
}

// TestHostileCompare: compare refuses reports whose figures are out of
// range, naming the report and the figure, and a frontier of two models;
// class names cannot break its Markdown tables (class 11).
func TestHostileCompare(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	a := write("a.json", `{"model": "a.onnx", "sampler": "ddim", "steps": 10, "accuracy": 0.9, "frechet_distance": 1, "real_vs_real_frechet_distance": 0.5, "images_per_second": 10, "samples": 4}`)
	b := write("b.json", `{"model": "b.onnx", "sampler": "ddim", "steps": 20, "accuracy": 0.9, "frechet_distance": 1, "real_vs_real_frechet_distance": 0.5, "images_per_second": 5, "samples": 4}`)
	huge := write("huge.json", `{"model": "a.onnx", "accuracy": 1e307}`)
	out := filepath.Join(dir, "out")
	refused(t, run(t, "condiff-run", "compare", "--out", out, a, huge), out, "huge.json", "accuracy")
	refused(t, run(t, "condiff-run", "compare", "--frontier", "--out", out, a, b), out, "two models", "a.onnx", "b.onnx")
	pipe := write("pipe.json", `{"model": "a|b\nc.onnx", "label": "x|y", "accuracy": 0.5, "samples": 1}`)
	r := run(t, "condiff-run", "compare", pipe)
	if r.code != 0 {
		t.Fatalf("compare: %s", r.stderr)
	}
	fifo := filepath.Join(dir, "fifo.json")
	syscall.Mkfifo(fifo, 0o644)
	refused(t, run(t, "condiff-run", "compare", fifo), "", "fifo.json", "not a regular file")
}

// TestHostileReplace: --replace removes only the .png files a valid
// manifest lists; a manifest that lists anything else is refused and
// nothing is removed (class 4).
func TestHostileReplace(t *testing.T) {
	infertest.ORT(t)
	out := t.TempDir()
	notes := filepath.Join(out, "notes.txt")
	os.WriteFile(notes, []byte("mine\n"), 0o644)
	os.WriteFile(filepath.Join(out, "manifest.json"), []byte(`{"model":"m.onnx","sampler":"ddim","steps":2,"complete":true,"images":[{"index":0,"class":0,"file":"notes.txt"}]}`), 0o644)
	r := run(t, "condiff-run", "sample", "--model", "../../infer/testdata/torch_cbn.onnx", "--n", "1", "--steps", "2", "--threads", "1", "--out", out, "--replace")
	if r.code != 1 || !strings.Contains(r.stderr, "not a valid sample manifest") {
		t.Errorf("status %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(notes); err != nil {
		t.Errorf("--replace deleted a file that is not a sample: %v", err)
	}
}

// TestHostileSharedSampleDir: two runs of different plans never mix in
// one sample directory; a whole run or a --replace has it to itself while
// it runs; eval refuses a directory holding both kinds of manifest
// (class 2).
func TestHostileSharedSampleDir(t *testing.T) {
	infertest.ORT(t)
	model := "../../infer/testdata/torch_cbn.onnx"
	sample := func(out string, args ...string) result {
		return run(t, "condiff-run", append([]string{"sample", "--model", model, "--threads", "1", "--steps", "2", "--out", out}, args...)...)
	}
	out := t.TempDir()
	if r := sample(out, "--n", "2", "--class", "all", "--shard", "0/2"); r.code != 0 {
		t.Fatalf("shard 0/2: %s", r.stderr)
	}
	r := sample(out, "--n", "30", "--class", "a", "--shard", "1/2")
	if r.code != 1 || !strings.Contains(r.stderr, "manifest.shard-0-of-2.json") {
		t.Errorf("a shard of another plan: status %d %s", r.code, r.stderr)
	}
	if r := sample(out, "--n", "2", "--class", "all", "--shard", "1/2"); r.code != 0 {
		t.Errorf("the other shard of the same plan: %s", r.stderr)
	}
	// A whole run holds the directory: a shard and a --replace are refused.
	busy := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "condiff-run"), "sample", "--model", model, "--threads", "1", "--n", "20", "--steps", "1000", "--out", busy)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 100; i++ { // until it holds the lock
		if _, err := os.Stat(filepath.Join(busy, ".samples.lock")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{{"--n", "2", "--shard", "1/2"}, {"--n", "2", "--shard", "1/2", "--replace"}, {"--n", "2", "--replace"}} {
		r := sample(busy, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "another run is writing there") {
			t.Errorf("%v while a whole run writes: status %d %s", args, r.code, r.stderr)
		}
	}
	// Both kinds of manifest in one directory: eval refuses it.
	both := t.TempDir()
	for _, name := range []string{"manifest.json", "manifest.shard-0-of-2.json"} {
		os.WriteFile(filepath.Join(both, name), []byte(`{"model":"m.onnx","sampler":"ddim","steps":2,"complete":true,"images":[]}`), 0o644)
	}
	refused(t, run(t, "condiff-run", "eval", "--samples", both, "--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist", "--out", filepath.Join(t.TempDir(), "e")),
		"", "both manifest.json and shard manifests")
}

// TestHostileResume: a kill -9 before the first --save-every leaves a
// checkpoint to resume (class 13); --resume refuses data options that
// contradict the checkpoint and a target below its step (classes 8, 12),
// and resumes on the data the run began with.
func TestHostileResume(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--out", out, "--size", "8", "--base", "8", "--mult", "1", "--synthetic-per-class", "5", "--batch", "2"}
	cmd := exec.Command(filepath.Join(binDir, "condiff"), append(args, "--steps", "1000000", "--save-every", "1000000")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // until a few steps are logged
		b, _ := os.ReadFile(filepath.Join(out, "log.jsonl"))
		if bytes.Count(b, []byte("\n")) >= 3 {
			break
		}
		if i > 600 {
			cmd.Process.Kill()
			t.Fatal("no steps logged within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if r := run(t, "condiff", "train", "--resume", "--out", out, "--steps", "4"); r.code != 0 {
		t.Fatalf("resume after a kill before the first save: status %d\n%s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(out, "log.jsonl"))
	if n := bytes.Count(b, []byte("\n")); n != 4 {
		t.Errorf("the log holds %d steps after resuming to step 4", n)
	}
	refused(t, run(t, "condiff", "train", "--resume", "--out", out, "--steps", "2"), "", "--steps 2", "below the step the checkpoint holds (4)")
	refused(t, run(t, "condiff", "train", "--resume", "--out", out, "--synthetic-per-class", "7"), "", "--synthetic-per-class 7")
	refused(t, run(t, "condiff", "train", "--resume", "--out", out, "--data-dir", "/tmp"), "", "--data-dir /tmp")
	refused(t, run(t, "condiff", "train", "--resume", "--out", out, "--attention", "8"), "", `--attention 8 (the checkpoint has "")`)
}

// interrupt starts bin with args, sends SIGINT after wait, and returns the
// exit status and the last line of stderr.
func interrupt(t *testing.T, wait time.Duration, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(wait)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %v: still running 60 s after SIGINT", bin, args)
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	return cmd.ProcessState.ExitCode(), lines[len(lines)-1]
}

// TestHostileInterruptMessages: Ctrl-C during eval and cas says what is
// true, in one line: eval's report is as it was, cas adds nothing and does
// not resume (class 12); a FIFO listed as a sample is refused at once
// instead of hanging eval (class 1).
func TestHostileInterruptMessages(t *testing.T) {
	infertest.ORT(t)
	out := filepath.Join(t.TempDir(), "eval")
	code, last := interrupt(t, 4*time.Second, "condiff-run", "eval", "--model", "../../assets/pretrained/mnist-cbn.onnx",
		"--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist", "--n-per-class", "50", "--steps", "500", "--threads", "1", "--out", out)
	if code != 1 || !strings.Contains(last, "interrupted: "+out+"/report.json and report.md are as they were") {
		t.Errorf("eval after Ctrl-C: status %d, %q", code, last)
	}
	ev := tinyEval(t)
	report, _ := os.ReadFile(filepath.Join(ev, "report.json"))
	code, last = interrupt(t, 3*time.Second, "condiff", "cas", "--eval", ev, "--steps", "1000000", "--repeats", "1", "--subsets", "1", "--batch", "4", "--synthetic-per-class", "4")
	if code != 1 || !strings.Contains(last, "interrupted; the report is unchanged (cas does not resume") {
		t.Errorf("cas after Ctrl-C: status %d, %q", code, last)
	}
	if b, _ := os.ReadFile(filepath.Join(ev, "report.json")); !bytes.Equal(b, report) {
		t.Error("cas changed the report although interrupted")
	}
	fifo := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifo, "a.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fifo, "manifest.json"), []byte(`{"model":"m.onnx","sampler":"ddim","steps":2,"complete":true,"images":[{"index":0,"class":0,"file":"a.png"}]}`), 0o644)
	refused(t, run(t, "condiff-run", "eval", "--samples", fifo, "--classifier", "../../assets/pretrained/mnist-clf.onnx", "--data", "mnist",
		"--out", filepath.Join(t.TempDir(), "e")), "", "a.png", "not a regular file")
}
