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
	one, three := uint64(1), uint64(3)
	reps := []Report{
		{Label: "cbn w=1", Classifier: "assets/pretrained/mnist-judge.onnx", SampleSeed: &one, EvalSeed: &three, Samples: 20, Accuracy: 0.95, IS: 1.9, RealIS: 2, FD: 0.5, RealFD: 0.25, KNN: 0.9, TrainedSteps: 300,
			Sampler: "ddim", Steps: 25, ImagesPerSecond: 41.25,
			RealDraws: 6, FDRatio: Ratio{Value: 2, Lo: 1.5, Hi: 2.5}, KID: Interval{Mean: 0.0021, SD: 0.0005, N: 10}, RealKID: Interval{Mean: -0.0001, SD: 0.0004, N: 10},
			FDDraws: Interval{Mean: 0.52, SD: 0.1, N: 4}, FloorDraws: Interval{Mean: 0.26, SD: 0.05, N: 4},
			Precision: 0.8, Recall: 0.7, Stray: Interval{Mean: 0.05, SD: 0.01, N: 20}, RealStray: Interval{Mean: 0.02, SD: 0.005, N: 40},
			CAS: &CAS{
				Generated: CASCell{Generated: 50, Mean: 0.9, SD: 0.01}, Real: CASCell{Real: 50, Mean: 0.95, SD: 0.02}, Ratio: 0.9 / 0.95,
				Augment: []AugmentRow{{Real: 10, Gain: 0.052, GainSD: 0.013}}}},
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
	paths[1] = "baseline=" + paths[1] // LABEL=PATH relabels
	table, err := Compare(paths, out)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 8 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows, a blank line, then the CAS header, rule and 1 row:\n%s", len(rows), table)
	}
	// The FD columns of a report measured over several draws are the means
	// the ratio divides, its interval recomputed from them (±1 standard
	// error: [0.47/0.285, 0.57/0.235]).
	if want := "| cbn w=1 | 300 | 20 | ddim 25 | mnist-judge | 1 / 3 | 95.0% | 1.90 (2.00) | 0.520 (0.260) | 2.00× [1.65, 2.43] | 2.1 ± 0.5 (-0.1 ± 0.4) | 80.0% / 70.0% | 5.0 ± 1.0% (2.0 ± 0.5%) | 90.0% | 41.2 |"; rows[2] != want {
		t.Errorf("row 1 = %q, want %q", rows[2], want)
	}
	// A report from before the distribution protocol: its missing figures are dashes, not zeros.
	if want := "| baseline | – | 20 | – | – | – / – | – | 1.20 (2.00) | 1.500 (NaN) | – | – (–) | – / – | – (–) | – | – |"; rows[3] != want {
		t.Errorf("row 2 = %q, want %q", rows[3], want)
	}
	// Only the report with a CAS measurement gets a CAS row.
	if want := "| cbn w=1 | 90.0% ± 1.0 | 95.0% ± 2.0 | 0.95× | +5.2 ± 1.3 points |"; rows[7] != want {
		t.Errorf("CAS row = %q, want %q", rows[7], want)
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

// TestFrontier: reports group by guidance and sampler, sorted by steps;
// the plots leave out untimed reports and need at least one timed one.
func TestFrontier(t *testing.T) {
	r := func(smp string, steps int, w float64, acc, fd, ips float64) Report {
		return Report{Model: "m.onnx", Sampler: smp, Steps: steps, Guidance: w, Accuracy: Num(acc), FD: Num(fd), RealFD: 0.1, ImagesPerSecond: Num(ips)}
	}
	reps := []Report{r("ddim", 50, 1, 0.99, 0.15, 20), r("ddim", 10, 1, 0.97, 0.3, 100), r("dpm++2m", 10, 1, 0.98, 0.2, 98),
		r("ddim", 10, 0, 0.9, 0.2, 190), r("ddpm", 1000, 1, 0.99, 0.14, math.NaN())}
	out := filepath.Join(t.TempDir(), "f")
	table, err := Frontier(reps, out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if lines[0] != "Model: m.onnx" {
		t.Errorf("the table does not name its model: %q", lines[0])
	}
	rows := lines[4:] // the model, a blank line, the header and its rule
	want := []string{
		"| 0 | ddim | 10 | 90.0% | 2.00× (one draw) | – | – / – | 190.0 |",
		"| 1 | ddim | 10 | 97.0% | 3.00× (one draw) | – | – / – | 100.0 |",
		"| 1 | ddim | 50 | 99.0% | 1.50× (one draw) | – | – / – | 20.0 |",
		"| 1 | ddpm | 1000 | 99.0% | 1.40× (one draw) | – | – / – | – |",
		"| 1 | dpm++2m | 10 | 98.0% | 2.00× (one draw) | – | – / – | 98.0 |",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range []string{"frontier.md", "frontier.png", "frontier_acc.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	if _, err := Frontier([]Report{reps[4]}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "images/s") {
		t.Errorf("no timed report: err = %v, want one about the missing timing", err)
	}
}

// TestMarkdownCells: a class name or label holding '|' or a line break
// stays in its cell and row.
func TestMarkdownCells(t *testing.T) {
	r := Report{Model: "m|odel\n.onnx", Classes: []ClassResult{{Name: "a|b\nc", Samples: 1, Accuracy: 1}}}
	for _, line := range strings.Split(r.Markdown(), "\n") {
		if strings.HasPrefix(line, "| a") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 4 {
			t.Errorf("class row %q does not have 3 cells", line)
		}
	}
	if !strings.Contains(r.Markdown(), `a\|b c`) {
		t.Errorf("the class name is not escaped:\n%s", r.Markdown())
	}
}

// TestFrontierIntervals: reports measured over real draws show FD / floor
// with its interval (flagged when wider than the ratio), KID ×10³ and
// precision / recall in the frontier's table, and the frontier plot gets
// error bars.
func TestFrontierIntervals(t *testing.T) {
	mk := func(steps int, ips, v, lo, hi float64) Report {
		return Report{Model: "m.onnx", Sampler: "ddim", Steps: steps, Guidance: 1, Accuracy: 0.9, FD: 1, RealFD: 0.5, ImagesPerSecond: Num(ips),
			RealDraws: 6, FDRatio: Ratio{Value: Num(v), Lo: Num(lo), Hi: Num(hi)},
			KID: Interval{Mean: 0.0042, SD: 0.0013, N: 10}, Precision: 0.85, Recall: 0.7}
	}
	reps := []Report{mk(10, 50, 2, 1.8, 2.3), mk(20, 25, 3, 1, 6)}
	out := filepath.Join(t.TempDir(), "f")
	table, err := Frontier(reps, out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "| 2.00× [1.80, 2.30] | 4.2 ± 1.3 | 85.0% / 70.0% | 50.0 |") || !strings.Contains(table, "3.00× [1.00, 6.00] (wide)") {
		t.Errorf("frontier table:\n%s", table)
	}
	if st, err := os.Stat(filepath.Join(out, "frontier.png")); err != nil || st.Size() == 0 {
		t.Errorf("frontier.png: %v", err)
	}
	if lo, hi := fdBars(reps[0]); lo != 1.8 || hi != 2.3 {
		t.Errorf("error bar %g..%g", lo, hi)
	}
}

// TestReadReportsInterval: a report written when the FD ratio's interval
// was ±1 sd of the draws reads with the interval RatioOf gives now (±1
// standard error of each mean), computed from the draws it recorded.
func TestReadReportsInterval(t *testing.T) {
	fd, floor := Interval{Mean: 0.2, SD: 0.04, N: 4}, Interval{Mean: 0.1, SD: 0.02, N: 4}
	old := Report{Label: "old", Samples: 100, RealDraws: 4, FDDraws: fd, FloorDraws: floor,
		FDRatio: Ratio{Value: 2, Lo: 0.16 / 0.12, Hi: 0.24 / 0.08}}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	reps, err := ReadReports([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	got, want := reps[0].FDRatio, RatioOf(fd, floor)
	if got != want || math.Abs(float64(got.Lo)-0.18/0.11) > 1e-12 {
		t.Errorf("read interval %+v, want %+v ([0.18/0.11, 0.22/0.09])", got, want)
	}
}

// TestCellShowsMarkup: a class name holding markup or table syntax stays
// text in a report's Markdown.
func TestCellShowsMarkup(t *testing.T) {
	for in, want := range map[string]string{
		`<img src=x onerror=alert(1)>`: `&lt;img src=x onerror=alert(1)&gt;`,
		"a|b\nc":                       `a\|b c`,
		"[x](javascript:y) `z` & w":    "\\[x\\](javascript:y) \\`z\\` &amp; w",
		"T-shirt/top":                  "T-shirt/top",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
