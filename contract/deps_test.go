package contract

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedDeps are the non-standard packages contract may depend on.
var allowedDeps = []string{
	"github.com/condiff/condiff/contract",
	"github.com/condiff/condiff/diffusion",
	"github.com/condiff/condiff/internal/field",
	"github.com/condiff/condiff/internal/strictjson",
}

// TestDependencies: contract and everything it imports is the standard
// library or allowedDeps (what the package comment says).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list listed no package; it should list contract itself")
	}
	for _, d := range deps {
		ok := false
		for _, a := range allowedDeps {
			ok = ok || d == a
		}
		if !ok {
			t.Errorf("contract depends on %s", d)
		}
	}
	// The same listing of a package with third-party imports must fail the
	// rule: it proves the check can.
	out, err = exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../eval").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "gonum.org/") {
		t.Fatalf("go list of eval shows no third-party package (%v):\n%s", err, out)
	}
}
