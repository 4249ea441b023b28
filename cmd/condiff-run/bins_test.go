package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The mains the tests run, each built once per test binary (binaryOf)
// into one directory that TestMain removes, with anything else a test
// left for it (cleanups).
var (
	binsMu   sync.Mutex
	bins     = map[string]string{} // package → built binary
	binsErr  = map[string]error{}
	binsDir  string
	cleanups []func()
)

// binaryOf builds the main package pkg (".", "../condiff",
// "../condiff-bench") for this machine, once, and returns its path.
func binaryOf(t testing.TB, pkg string) string {
	t.Helper()
	binsMu.Lock()
	defer binsMu.Unlock()
	if p, ok := bins[pkg]; ok {
		return p
	}
	if err, ok := binsErr[pkg]; ok {
		t.Fatal(err)
	}
	if binsDir == "" {
		d, err := os.MkdirTemp("", "condiff-run-tests-")
		if err != nil {
			t.Fatal(err)
		}
		binsDir = d
	}
	abs, _ := filepath.Abs(pkg)
	out := filepath.Join(binsDir, filepath.Base(abs))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		binsErr[pkg] = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		t.Fatal(binsErr[pkg])
	}
	bins[pkg] = out
	return out
}

// binary is condiff-run, built once.
func binary(t testing.TB) string { return binaryOf(t, ".") }

func TestMain(m *testing.M) {
	code := m.Run()
	if binsDir != "" {
		os.RemoveAll(binsDir)
	}
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}
