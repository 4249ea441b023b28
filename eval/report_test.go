package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompare writes two reports — a conditional model and an unconditional
// one whose accuracy does not apply — and checks the table's rows and files.
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	reps := []Report{
		{Label: "cbn w=1", Samples: 20, Accuracy: 0.95, IS: 1.9, RealIS: 2, FD: 0.5, RealFD: 0.25, KNN: 0.9, TrainedSteps: 300},
		{Label: "uncond", Samples: 20, Accuracy: Num(math.NaN()), IS: 1.2, RealIS: 2, FD: 1.5, RealFD: Num(math.NaN()), KNN: Num(math.NaN())},
	}
	var paths []string
	for i, r := range reps {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, []string{"a.json", "b.json"}[i])
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "cmp")
	table, err := Compare(paths, out)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 4 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows:\n%s", len(rows), table)
	}
	if want := "| cbn w=1 | 300 | 20 | 95.0% | 1.90 (2.00) | 0.500 (0.250) | 2.00× | 90.0% |"; rows[2] != want {
		t.Errorf("row 1 = %q, want %q", rows[2], want)
	}
	if want := "| uncond | – | 20 | – | 1.20 (2.00) | 1.500 (NaN) | – | – |"; rows[3] != want {
		t.Errorf("row 2 = %q, want %q", rows[3], want)
	}
	for _, f := range []string{"compare.md", "compare.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	if _, err := Compare([]string{filepath.Join(dir, "missing.json")}, ""); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing report: err = %v, want one naming the file", err)
	}
}
