package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/condiff/condiff/internal/fsutil"
)

// ReadReports reads eval reports (report.json files); a report without a
// label is labelled by its path.
func ReadReports(paths []string) ([]Report, error) {
	var reps []Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", p, err)
		}
		if r.Label == "" {
			r.Label = p
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// Compare writes a table (markdown) and a bar chart (PNG) of several reports.
func Compare(paths []string, out string) (string, error) {
	reps, err := ReadReports(paths)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| model | trained steps | samples | sampler | accuracy | IS (real) | FD (real floor) | FD / floor | t-SNE 5-NN | images/s |\n|---|---|---|---|---|---|---|---|---|---|\n")
	withCAS := false
	for _, r := range reps {
		trained := "–"
		if r.TrainedSteps > 0 {
			trained = strconv.Itoa(r.TrainedSteps)
		}
		smp := "–"
		if r.Sampler != "" {
			smp = fmt.Sprintf("%s %d", r.Sampler, r.Steps)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %.2f (%.2f) | %.3f (%.3f) | %s | %s | %s |\n", r.Label, trained, r.Samples, smp,
			pct(r.Accuracy), r.IS, r.RealIS, r.FD, r.RealFD, ratio(r.FD, r.RealFD), pct(r.KNN), speed(r.ImagesPerSecond))
		withCAS = withCAS || r.CAS != nil
	}
	if withCAS {
		b.WriteString("\n| model | CAS (generated only) | real only, same count | CAS / real |")
		var subsets []int
		for _, r := range reps {
			if r.CAS != nil {
				for _, a := range r.CAS.Augment {
					if !slices.Contains(subsets, a.Real) {
						subsets = append(subsets, a.Real)
					}
				}
			}
		}
		for _, s := range subsets {
			fmt.Fprintf(&b, " gain at %d real/class |", s)
		}
		b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(subsets)) + "\n")
		for _, r := range reps {
			if r.CAS == nil {
				continue
			}
			c := r.CAS
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f× |", r.Label, c.Generated, c.Real, c.Ratio)
			for _, s := range subsets {
				cell := "–"
				for _, a := range c.Augment {
					if a.Real == s {
						cell = signedPct(a.Gain, a.GainSD)
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
	}
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return "", err
		}
		p := plot.New()
		p.Title.Text = "conditioning accuracy"
		vals := make(plotter.Values, len(reps))
		names := make([]string, len(reps))
		for i, r := range reps {
			vals[i], names[i] = 100*float64(r.Accuracy), r.Label
			if math.IsNaN(vals[i]) {
				vals[i] = 0 // unconditional: no label to follow
			}
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(20))
		if err != nil {
			return "", err
		}
		bars.Color = palette[2]
		p.Add(bars)
		p.NominalX(names...)
		p.Y.Label.Text = "% of samples classified as their label"
		if err := savePlot(p, filepath.Join(out, "compare.png"), vg.Length(max(5, len(reps)))*1.4*vg.Inch, 4*vg.Inch); err != nil {
			return "", err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(out, "compare.md"), []byte(b.String()+"\n![accuracy](compare.png)\n")); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
