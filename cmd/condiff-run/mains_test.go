package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMainsStart: every binary starts in an empty environment. onnx-go
// registers the ONNX protobuf messages; a second registration of the same
// names (a generated ONNX package linked beside it) would panic at start-up.
func TestMainsStart(t *testing.T) {
	for _, c := range []struct{ name, pkg, arg string }{{"condiff", "../condiff", "help"}, {"condiff-run", ".", "help"}, {"condiff-bench", "../condiff-bench", "-h"}} {
		bin := binaryOf(t, c.pkg)
		cmd := exec.Command(bin, c.arg)
		cmd.Env = []string{}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "already registered") || strings.Contains(string(out), "panic") {
			t.Errorf("%s %s in an empty environment: %v\n%s", filepath.Base(bin), c.arg, err, out)
		}
	}
}
