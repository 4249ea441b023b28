package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
)

// TestShardKilledAndRetried is what a Kubernetes Indexed Job does to a
// pod: shard 3/8 is killed (SIGKILL) partway and its replacement runs the
// same command; it resumes and exits 0, and a third run of the finished
// shard exits 0 at once ("already done"). A shard of another plan into the
// directory is refused, and the refusal names --replace.
func TestShardKilledAndRetried(t *testing.T) {
	infertest.ORT(t)
	out := filepath.Join(t.TempDir(), "shared")
	args := []string{"sample", "--model", shippedModel, "--threads", "1", "--out", out, "--n", "16", "--batch", "4", "--steps", "10", "--shard", "auto/8"}
	env := append(os.Environ(), "JOB_COMPLETION_INDEX=3")
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(out, "manifest.shard-3-of-8.json")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m, err := infer.ReadSampleDir(out)
		if err == nil && len(m.Images) > 0 {
			if m.Complete {
				t.Fatal("shard 3/8 finished before it could be killed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no image in 2 minutes: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	run := func() string {
		t.Helper()
		c := exec.Command(binary(t), args...)
		c.Env = env
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("the retried shard: %v\n%s", err, b)
		}
		return string(b)
	}
	if log := run(); !strings.Contains(log, "resuming:") {
		t.Errorf("the replacement pod does not say it resumes:\n%s", log)
	}
	m, err := infer.ReadSampleDir(out)
	if err != nil || len(m.Images) != 20 { // 160 images, every 8th
		t.Fatalf("after the retry: %v, %d images", err, len(m.Images))
	}
	ref := sampleDir(t, "--n", "16", "--batch", "16", "--steps", "10", "--shard", "3/8")
	for _, e := range m.Images {
		a, _ := os.ReadFile(filepath.Join(out, e.File))
		b, _ := os.ReadFile(filepath.Join(ref, e.File))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from an uninterrupted shard's", e.File)
		}
	}
	before, _ := os.ReadFile(manifest)
	if log := run(); !strings.Contains(log, "already done") {
		t.Errorf("a finished shard run again:\n%s", log)
	}
	if after, _ := os.ReadFile(manifest); !bytes.Equal(before, after) {
		t.Error("running a finished shard again changed its manifest")
	}
	other := exec.Command(binary(t), append(args, "--seed", "2")...)
	other.Env = env
	b, err := other.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "already holds sampling outputs") || !strings.Contains(string(b), "--replace") {
		t.Errorf("a shard of another plan: %v\n%s", err, b)
	}
}
