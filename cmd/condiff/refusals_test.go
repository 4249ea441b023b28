package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/condiff/condiff/infer/infertest"
)

// helpFlags lists the flags a command's -h prints, with the type Go's flag
// package shows ("int", "float", "uint", "string", "" for booleans, or the
// back-quoted value name).
func helpFlags(t *testing.T, bin, cmd string) map[string]string {
	t.Helper()
	r := run(t, bin, cmd, "-h")
	if r.code != 0 {
		t.Fatalf("%s %s -h: status %d\n%s", bin, cmd, r.code, r.stderr)
	}
	flags := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-zA-Z][a-zA-Z0-9-]*)(?: (\S+))?$`).FindAllStringSubmatch(r.stderr, -1) {
		flags[m[1]] = m[2]
	}
	return flags
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// prefixWord is a segment of an error's leading "prog cmd: stage: ..."
// chain: lower-case words, no values.
var prefixWord = regexp.MustCompile(`^[a-z][a-z-]*( [a-z][a-z-]*)?$`)

// stutter returns a word an error line's prefix chain repeats
// ("condiff-run eval: eval: ..." → "eval"), or "".
func stutter(line string) string {
	seen := map[string]bool{}
	for _, seg := range strings.Split(line, ": ") {
		if !prefixWord.MatchString(seg) {
			break
		}
		for _, w := range strings.Fields(seg) {
			if seen[w] {
				return w
			}
			seen[w] = true
		}
	}
	return ""
}

// namedFlags is every flag an error line names: --name or -name after a
// space, quote, parenthesis or the line's start.
var namedFlags = regexp.MustCompile(`(?:^|[\s"'(,])--?([a-zA-Z][a-zA-Z0-9-]*)`)

// badValues are the values tried for each flag of a type: each is out of
// range, malformed or missing for most flags of that type. (A huge count
// is a valid request for some flags, --steps of train, and runs for ever.)
var badValues = map[string][]string{
	"int":      {"-1"},
	"float":    {"-1", "nan"},
	"uint":     {"-1"},
	"string":   {"/dev/null/x"},
	"path":     {"/dev/null/x"},
	"duration": {"-1s"},
}

// TestRefusalsNameOwnFlags runs every command of condiff with each of its
// flags set to values of badValues (the other flags valid, chosen so that
// a value the command accepts runs in seconds), and checks that every
// refusal names only flags the command has (its -h), and the refusals of
// issue reports name the right flag.
func TestRefusalsNameOwnFlags(t *testing.T) {
	infertest.ORT(t)
	dir := t.TempDir()
	const (
		torch = "../../infer/testdata/torch_cbn.onnx"
		mnist = "../../assets/pretrained/mnist-cbn.onnx"
		clf   = "../../assets/pretrained/mnist-clf.onnx"
	)
	ev := tinyEval(t)
	teacher := filepath.Join(dir, "teacher.onnx")
	for _, args := range [][]string{
		{"train", "--out", filepath.Join(dir, "teach"), "--data", "synthetic", "--size", "8", "--base", "8", "--mult", "1", "--norm", "group", "--groups", "4",
			"--cfg-drop", "0.2", "--steps", "1", "--batch", "2", "--synthetic-per-class", "2"},
		{"export", "--run", filepath.Join(dir, "teach"), "--out", teacher},
	} {
		if r := run(t, "condiff", args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}

	train := []string{"--steps", "1", "--size", "8", "--base", "8", "--synthetic-per-class", "2", "--batch", "2", "--save-every", "0"}
	bases := map[string]func(out string) []string{
		"train":            func(out string) []string { return append([]string{"--out", out, "--mult", "1"}, train...) },
		"train-classifier": func(out string) []string { return append([]string{"--out", out}, train...) },
		"dataset": func(out string) []string {
			return []string{"--out", out + ".npz", "--data", "synthetic", "--size", "8", "--synthetic-per-class", "2"}
		},
		"distill": func(out string) []string {
			return []string{"--out", out, "--teacher", teacher, "--student-steps", "2", "--steps", "1", "--synthetic-per-class", "2", "--batch", "2", "--save-every", "0"}
		},
		"export": func(out string) []string {
			return []string{"--run", filepath.Join(dir, "no-run"), "--out", filepath.Join(out, "m.onnx")}
		},
		"cas": func(string) []string {
			return []string{"--eval", ev, "--steps", "1", "--repeats", "1", "--subsets", "1", "--batch", "8"}
		},
		"sample": func(out string) []string {
			return []string{"--model", torch, "--out", out, "--n", "1", "--steps", "2", "--threads", "1"}
		},
		"eval": func(out string) []string {
			return []string{"--model", mnist, "--classifier", clf, "--data", "mnist", "--n-per-class", "1", "--steps", "2", "--threads", "1", "--out", out}
		},
		"compare": func(out string) []string { return []string{"--out", out} },
		// A model that cannot open: a value serve accepts fails there
		// instead of serving for ever.
		"serve":   func(string) []string { return []string{"--model", "/dev/null/x", "--listen", "127.0.0.1:0"} },
		"inspect": func(string) []string { return nil },
	}
	// Refusals reported against earlier versions, with the flag each must name.
	named := []struct {
		cmd  string
		args []string
		flag string
	}{
		{"eval", []string{"--n-per-class", "2000000"}, "--n-per-class"},
		{"train", []string{"--lr", "1e9"}, "--lr"},
		{"train", []string{"--ac-weight", "0.5"}, "--ac-weight"},
		{"distill", []string{"--student-steps", "600"}, "--student-steps"},
		{"distill", []string{"--cfg-drop", "0.1"}, "--cfg-drop"},
		{"sample", []string{"--threads", "100000"}, "--threads"},
		{"sample", []string{"--sampler", "dpm++2m", "--eta", "1"}, "--eta"},
		{"eval", []string{"--run", "/dev/null/x"}, "--run"},
		{"eval", []string{"--synthetic-per-class", "-5", "--data", "synthetic"}, ""},
	}
	var mu sync.Mutex
	seen := map[string]int{}
	check := func(t *testing.T, cmd string, flags map[string]string, args []string, r result) {
		if r.code == 0 {
			return // accepted: nothing to name
		}
		last := lastLine(r.stderr)
		if w := stutter(last); w != "" {
			t.Errorf("%s %v: the error repeats its prefix %q: %s", cmd, args, w, last)
		}
		for _, m := range namedFlags.FindAllStringSubmatch(last, -1) {
			if _, ok := flags[m[1]]; !ok && m[1] != "h" && m[1] != "help" {
				t.Errorf("%s %v: the error names --%s, which %s has not: %s", cmd, args, m[1], cmd, last)
			}
		}
		mu.Lock()
		seen[cmd]++
		mu.Unlock()
	}
	for cmd, base := range bases {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			flags := helpFlags(t, "condiff", cmd)
			if len(flags) == 0 && cmd != "inspect" {
				t.Fatalf("%s -h lists no flag", cmd)
			}
			names := make([]string, 0, len(flags))
			for f := range flags {
				names = append(names, f)
			}
			slices.Sort(names)
			for _, f := range names {
				for _, v := range badValues[flags[f]] {
					out := filepath.Join(t.TempDir(), "out")
					args := append(append([]string{cmd}, base(out)...), "--"+f, v)
					start := time.Now()
					r := run(t, "condiff", args...)
					t.Logf("%.1fs status %d: --%s %s: %s", time.Since(start).Seconds(), r.code, f, v, lastLine(r.stderr))
					check(t, cmd, flags, args, r)
				}
			}
			for _, c := range named {
				if c.cmd != cmd {
					continue
				}
				args := append(append([]string{cmd}, base(filepath.Join(t.TempDir(), "out"))...), c.args...)
				r := run(t, "condiff", args...)
				t.Logf("%v: %s", c.args, strings.TrimSpace(r.stderr))
				check(t, cmd, flags, args, r)
				if r.code != 1 || c.flag != "" && !strings.Contains(r.stderr, c.flag+" ") {
					t.Errorf("%v: status %d, want a refusal naming %s:\n%s", args, r.code, c.flag, r.stderr)
				}
			}
		})
	}
	t.Cleanup(func() {
		for cmd := range bases {
			if cmd != "inspect" && seen[cmd] == 0 {
				t.Errorf("%s refused none of the bad values: the test checked nothing there", cmd)
			}
		}
	})
}

// tinyEval writes an evaluation directory for cas, all of it tiny so that
// cas runs in seconds: a classifier of the synthetic set at 8×8 (trained
// one step) and two sample PNGs of each class.
func tinyEval(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ev := filepath.Join(dir, "ev")
	clfRun, clf8 := filepath.Join(dir, "clf"), filepath.Join(dir, "clf.onnx")
	for _, args := range [][]string{
		{"train-classifier", "--out", clfRun, "--data", "synthetic", "--size", "8", "--base", "8", "--steps", "1", "--batch", "4", "--synthetic-per-class", "4"},
		{"export", "--run", clfRun, "--out", clf8},
	} {
		if r := run(t, "condiff", args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	os.MkdirAll(filepath.Join(ev, "samples"), 0o755)
	var entries []string
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("%06d.png", i)
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		img.Pix[i] = 255
		var b bytes.Buffer
		png.Encode(&b, img)
		os.WriteFile(filepath.Join(ev, "samples", name), b.Bytes(), 0o644)
		entries = append(entries, fmt.Sprintf(`{"index": %d, "class": %d, "file": %q}`, i, i/2, name))
	}
	os.WriteFile(filepath.Join(ev, "samples", "manifest.json"), []byte(`{"model": "m.onnx", "sampler": "ddim", "steps": 2, "complete": true, "images": [`+strings.Join(entries, ",")+`]}`), 0o644)
	os.WriteFile(filepath.Join(ev, "report.json"), []byte(`{"classifier": "`+clf8+`", "dataset": "synthetic", "accuracy": 1}`), 0o644)

	return ev
}

// TestStutter: the prefix check finds a repeated stage and passes lines
// whose stages differ or whose repetition is past the prefix.
func TestStutter(t *testing.T) {
	for line, want := range map[string]string{
		"condiff-run eval: eval: classifier: x.onnx: no such file": "eval",
		"condiff export: export: run: missing":                     "export",
		"condiff: export: run: missing":                            "",
		"condiff-run sample: infer: Steps 1001: out of 1..1000":    "",
		"condiff train: --out is required":                         "",
		"condiff-run: eval: Steps 3: eval: x":                      "",
	} {
		if got := stutter(line); got != want {
			t.Errorf("stutter(%q) = %q, want %q", line, got, want)
		}
	}
}
