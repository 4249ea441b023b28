// Package testenv tells tests whether they run under CI and what that
// means for a missing tool (under CI=true a missing one fails the test
// instead of skipping it), and runs the ONNX checker. It imports nothing of
// condiff: the helpers that need condiff's packages live beside them
// (infer/infertest, graphs/graphstest).
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test under CI, where what is missing must be
// installed, and skips it elsewhere; both say how to install it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing; CI must install it (scripts/setup.sh)", what)
	}
	t.Skipf("%s is missing; run `make setup`", what)
}

// CheckONNX runs onnx.checker.check_model(full_check=True) on a file.
// Without the checker it fails under CI; elsewhere it says so in the test
// log and returns, so that the rest of the test (parity through ONNX
// Runtime, sampling) still runs.
func CheckONNX(t testing.TB, path string) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		if CI() {
			t.Fatalf("python3-onnx (the ONNX checker) is missing; CI must install it (scripts/setup.sh)")
		}
		t.Logf("python3-onnx is missing: %s was not run through the ONNX checker (run `make setup`)", path)
		return
	}
	out, err := exec.Command(py, "-c", `import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("ok")`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker rejected %s: %v\n%s", path, err, out)
	}
}
