// Package deploy holds the recipes that run condiff-run elsewhere (the
// container image, Kubernetes manifests, a Slurm script) and the tests
// that run them as written, with the clients people already use (OpenAI's
// SDKs). It is a module of its own, so that what those tests need
// (go-containerregistry, Kubernetes' API types, OpenAI's Go SDK) stays out
// of condiff's go.mod.
package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The static condiff-run (no cgo: the Go backend, no ONNX Runtime) every
// test here runs, built once.
var (
	runBin   string
	imageBin string
	tmpRoot  string
)

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "condiff-deploy"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runBin, imageBin = filepath.Join(tmpRoot, "condiff-run"), filepath.Join(tmpRoot, "image")
	for _, b := range []*exec.Cmd{
		exec.Command("go", "build", "-trimpath", "-o", runBin, "./cmd/condiff-run"),
		exec.Command("go", "build", "-o", imageBin, "./image"),
	} {
		if b.Args[len(b.Args)-1] == "./cmd/condiff-run" {
			b.Dir = ".."
			b.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := b.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "%v: %v\n%s", b.Args, err, out)
			os.RemoveAll(tmpRoot)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// need fails the test under CI=true (CI must install what it needs) and
// skips it elsewhere.
func need(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; CI must install it (scripts/setup.sh)", what)
	}
	t.Skipf("%s is missing; run `make setup`", what)
}

const shippedModel = "../assets/pretrained/mnist-cbn.onnx"

// server is a running condiff-run serve.
type server struct {
	url string
	cmd *exec.Cmd
	mu  sync.Mutex
	log bytes.Buffer
}

// serve runs bin with args (a serve command line) and waits for its
// address.
func serve(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if i := strings.Index(line, "http://"); i >= 0 && strings.HasPrefix(line, "serve: ") {
				addr <- strings.TrimSuffix(strings.Fields(line[i:])[0], "/")
			}
		}
		close(addr)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	select {
	case u, ok := <-addr:
		if !ok {
			cmd.Wait()
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("serve %v exited before listening:\n%s", args, s.log.String())
		}
		s.url = u
	case <-time.After(30 * time.Second):
		t.Fatalf("serve %v did not listen within 30 s", args)
	}
	return s
}

func (s *server) get(t *testing.T, path string, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// flagsOf is the flags a condiff-run command takes, from its -h.
func flagsOf(t *testing.T, command string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(runBin, command, "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-{1,2}([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("condiff-run %s -h lists %d flags:\n%s", command, len(flags), out)
	}
	return flags
}

// checkArgs checks a recipe's condiff-run command line: a command the
// binary has, and flags that command takes.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	flags := flagsOf(t, args[0])
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("%s: condiff-run %s has no flag --%s", where, args[0], name)
			}
		}
	}
}

// flagValue is the last value of --name in args (the one Go's flag
// package keeps).
func flagValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			v = args[i+1]
		} else if s, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = s
		}
	}
	return v
}

// remap rewrites the absolute paths of a recipe's command line onto this
// machine (the container's /models, a volume's mount path).
func remap(args []string, roots map[string]string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		for from, to := range roots {
			if a == from || strings.HasPrefix(a, from+"/") {
				out[i] = to + strings.TrimPrefix(a, from)
			}
		}
	}
	return out
}

// manifest is the part of a sample manifest these tests read.
type manifest struct {
	Complete bool `json:"complete"`
	Images   []struct {
		Index int    `json:"index"`
		File  string `json:"file"`
	} `json:"images"`
}

// readShards reads the shard manifests of a directory: shard k -> its
// manifest.
func readShards(t *testing.T, dir string) map[string]manifest {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "manifest.shard-*-of-*.json"))
	out := map[string]manifest{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "manifest.shard-"), ".json")] = m
	}
	return out
}

// TestSlurmScript runs deploy/slurm/sample.sbatch as sbatch would: with
// bash, once per task of its array (its own --array, and a step array
// given on the sbatch command line), in the environment Slurm gives an
// array task. Every shard is made once, the union is complete, and
// resubmitting the script finishes at once.
func TestSlurmScript(t *testing.T) {
	const script = "slurm/sample.sbatch"
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if lines[0] != "#!/bin/bash" {
		t.Fatalf("%s: first line %q; sbatch wants a #! line (\"This does not look like a batch script\")", script, lines[0])
	}
	own := ""
	sawCommand := false
	for _, l := range lines[1:] {
		if opt, ok := strings.CutPrefix(l, "#SBATCH "); ok {
			if sawCommand {
				t.Errorf("%s: %q after the first command: sbatch ignores it", script, l)
			}
			if v, ok := strings.CutPrefix(opt, "--array="); ok {
				own = v
			}
		} else if l != "" && !strings.HasPrefix(l, "#") {
			sawCommand = true
		}
	}
	if own == "" {
		t.Fatalf("%s: no #SBATCH --array", script)
	}
	// The flags the script gives condiff-run exist.
	cmdLine := regexp.MustCompile(`(?s)exec condiff-run (.*?)\n[^ ]`).FindStringSubmatch(string(b) + "\nX")
	if cmdLine == nil {
		t.Fatalf("%s: no `exec condiff-run` line", script)
	}
	checkArgs(t, script, strings.Fields(strings.ReplaceAll(cmdLine[1], "\\\n", " ")))

	path := filepath.Dir(runBin) + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, array := range []string{own, "0-14:2"} {
		out := filepath.Join(t.TempDir(), "samples")
		ids, err := arrayIndices(array)
		if err != nil {
			t.Fatalf("--array=%s: %v", array, err)
		}
		run := func(id int) string {
			env := append(os.Environ(), "PATH="+path, "MODEL="+shippedModel, "OUT="+out, "N=3", "STEPS=2", "SLURM_CPUS_PER_TASK=1",
				"SLURM_ARRAY_TASK_ID="+strconv.Itoa(id), "SLURM_ARRAY_TASK_COUNT="+strconv.Itoa(len(ids)),
				"SLURM_ARRAY_TASK_MIN="+strconv.Itoa(ids[0]), "SLURM_ARRAY_TASK_MAX="+strconv.Itoa(ids[len(ids)-1]),
				"SLURM_ARRAY_TASK_STEP="+strconv.Itoa(step(ids)), "SLURM_ARRAY_JOB_ID=42", "SLURM_JOB_ID="+strconv.Itoa(43+id))
			cmd := exec.Command("bash", script)
			cmd.Env = env
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("--array=%s task %d: %v\n%s", array, id, err, b)
			}
			return string(b)
		}
		for _, id := range ids {
			run(id)
		}
		shards := readShards(t, out)
		seen := map[int]bool{}
		for k, m := range shards {
			if !m.Complete {
				t.Errorf("--array=%s: shard %s incomplete", array, k)
			}
			for _, im := range m.Images {
				if seen[im.Index] {
					t.Errorf("--array=%s: image %d made twice", array, im.Index)
				}
				seen[im.Index] = true
			}
		}
		if len(shards) != len(ids) || len(seen) != 30 { // 3 per class, 10 classes
			t.Errorf("--array=%s: %d shard manifests for %d tasks, %d of 30 images", array, len(shards), len(ids), len(seen))
		}
		if log := run(ids[len(ids)-1]); !strings.Contains(log, "already done") {
			t.Errorf("--array=%s: the last task resubmitted:\n%s", array, log)
		}
	}
}

// arrayIndices expands sbatch's --array value (1-7:2, 1,3,5, 0-15%4).
func arrayIndices(spec string) ([]int, error) {
	spec, _, _ = strings.Cut(spec, "%")
	var ids []int
	for _, part := range strings.Split(spec, ",") {
		rng, st, hasStep := strings.Cut(part, ":")
		s := 1
		if hasStep {
			var err error
			if s, err = strconv.Atoi(st); err != nil || s < 1 {
				return nil, fmt.Errorf("step %q", st)
			}
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for i := a; i <= b; i += s {
			ids = append(ids, i)
		}
	}
	sort.Ints(ids)
	return ids, nil
}

// step is the spacing Slurm reports for an array (1 unless even).
func step(ids []int) int {
	if len(ids) < 2 {
		return 1
	}
	s := ids[1] - ids[0]
	for i := 2; i < len(ids); i++ {
		if ids[i]-ids[i-1] != s {
			return 1
		}
	}
	return s
}

// extract writes the regular files and directories of a layer tar under
// root, keeping their modes.
func extract(t *testing.T, r io.Reader, root string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("the image holds %q, outside its root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, os.FileMode(h.Mode)&0o777); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("the image holds %q of type %c", h.Name, h.Typeflag)
		}
	}
}
