package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTrainingStack: the deployment binary links neither gorgonia nor
// OpenBLAS. `go list -deps` names no gorgonia.org package other than
// gorgonia.org/tensor (the tensor type onnx-go decodes initializers into,
// pure Go, with its vecf32/vecf64 helpers) and no gonum.org/v1/netlib
// package, and the built binary needs no shared library beyond the C
// library (ONNX Runtime is opened at run time).
func TestNoTrainingStack(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps printed %d packages; expected the whole dependency tree", len(deps))
	}
	for _, p := range deps {
		onnxGo := p == "gorgonia.org/tensor" || strings.HasPrefix(p, "gorgonia.org/tensor/") || p == "gorgonia.org/vecf32" || p == "gorgonia.org/vecf64"
		if (strings.HasPrefix(p, "gorgonia.org/") && !onnxGo) || strings.HasPrefix(p, "gonum.org/v1/netlib") {
			t.Errorf("condiff-run depends on %s", p)
		}
	}
	bin := binary(t)
	ldd, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd: %v\n%s", err, ldd)
	}
	// The C library is libc.so.6 with its loader and the kernel's vDSO;
	// glibc ≥ 2.34 holds libpthread and libdl inside libc.so.6.
	allowed := []string{"linux-vdso.so", "libc.so.6", "ld-linux", "libpthread.so.0", "libdl.so.2"}
	libs := 0
	for _, line := range strings.Split(strings.TrimSpace(string(ldd)), "\n") {
		name := strings.Fields(line)[0]
		libs++
		ok := false
		for _, a := range allowed {
			ok = ok || strings.Contains(name, a)
		}
		if !ok {
			t.Errorf("condiff-run links %s (ldd: %s)", name, strings.TrimSpace(line))
		}
	}
	if libs == 0 || !strings.Contains(string(ldd), "libc.so.6") {
		t.Fatalf("ldd output lists no C library:\n%s", ldd)
	}
	// The same check must fail on the training binary: it proves the test can.
	full := binaryOf(t, "../condiff")
	if l, _ := exec.Command("ldd", full).CombinedOutput(); !strings.Contains(string(l), "libopenblas") {
		t.Fatalf("condiff (with training) does not link OpenBLAS; the check above would not notice it either:\n%s", l)
	}
}

// TestOnlyTrainingImportsGorgonia: of condiff's packages, only train/,
// augment/ (which trains classifiers) and the mains that train (condiff,
// condiff-bench) reach gorgonia, cgo OpenBLAS or condiff's own train/;
// checkpoints, export, evaluation and everything that deploys (infer/,
// serve/, condiff-run, condiff-web) do not. Code both trees run lives
// below them (internal/kernel).
func TestOnlyTrainingImportsGorgonia(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "github.com/condiff/condiff/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const trainPkg = "github.com/condiff/condiff/train"
	training := map[string]bool{trainPkg: true, "github.com/condiff/condiff/cmd/condiff": true,
		"github.com/condiff/condiff/cmd/condiff-bench": true, "github.com/condiff/condiff/augment": true}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, deps := f[0], f[1:]
		seen++
		heavy := false
		for _, d := range deps {
			heavy = heavy || d == "gorgonia.org/gorgonia" || strings.HasPrefix(d, "gonum.org/v1/netlib") ||
				d == trainPkg || strings.HasPrefix(d, trainPkg+"/")
		}
		if heavy != training[pkg] {
			t.Errorf("%s: reaches gorgonia, OpenBLAS or train/: %v, want %v", pkg, heavy, training[pkg])
		}
	}
	if seen < 15 {
		t.Fatalf("go list named %d packages", seen)
	}
}
