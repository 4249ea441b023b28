// Package infertest gives tests the ONNX Runtime library: loaded, or the
// test skipped (failed under CI, testenv.Missing).
package infertest

import (
	"testing"

	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/testenv"
)

// ORT loads the ONNX Runtime library or skips (fails under CI).
func ORT(t testing.TB) {
	t.Helper()
	if _, err := infer.LibraryPath(""); err != nil {
		testenv.Missing(t, "the ONNX Runtime library")
	}
	if err := infer.Init(""); err != nil {
		t.Fatal(err)
	}
}
