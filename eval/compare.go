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

// MaxReportBytes bounds a report.json (a regular file; anything else is
// refused before it is read).
const MaxReportBytes = 16 << 20

// check refuses a report whose figures are out of their range (null, for a
// figure that does not apply, is allowed).
func (r *Report) check() error {
	for _, f := range []struct {
		name   string
		v      Num
		lo, hi float64
	}{
		{"accuracy", r.Accuracy, 0, 1}, {"real_accuracy", r.RealAccuracy, 0, 1},
		{"tsne_knn_separability", r.KNN, 0, 1}, {"real_tsne_knn_separability", r.RealKNN, 0, 1},
		{"inception_score", r.IS, 0, 1e6}, {"real_inception_score", r.RealIS, 0, 1e6},
		{"frechet_distance", r.FD, 0, 1e12}, {"real_vs_real_frechet_distance", r.RealFD, 0, 1e12},
		{"images_per_second", r.ImagesPerSecond, 0, 1e12},
		{"precision", r.Precision, 0, 1}, {"recall", r.Recall, 0, 1},
		{"real_precision", r.RealPrecision, 0, 1}, {"real_recall", r.RealRecall, 0, 1},
	} {
		if v := float64(f.v); !math.IsNaN(v) && !(v >= f.lo && v <= f.hi) {
			return fmt.Errorf("%s %g is out of [%g, %g]", f.name, v, f.lo, f.hi)
		}
	}
	if r.Samples < 0 || r.Steps < 0 {
		return fmt.Errorf("negative samples (%d) or steps (%d)", r.Samples, r.Steps)
	}
	return nil
}

// precision and recall format the report's figures, "–" in a report from
// before they were measured.
func (r Report) precision() string { return pct(r.measured(r.Precision)) }
func (r Report) recall() string    { return pct(r.measured(r.Recall)) }

// kid formats a KID interval as the tables show it: ×10³, one decimal.
func kid(v Interval) string { return pm(scale(v, 1e3), 1) }

func (r Report) measured(n Num) Num {
	if r.RealDraws == 0 {
		return Num(math.NaN())
	}
	return n
}

// overDraws reports whether the report holds FD over several real draws
// and the floor over pairs of them (reports from before the protocol do
// not).
func (r Report) overDraws() bool {
	return r.RealDraws > 0 && r.FDDraws.N > 0 && r.FloorDraws.N > 0
}

// stem is a file's name without its directory and extension.
func stem(path string) string { return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) }

// seed is a recorded seed, "–" where the report predates it.
func seed(s *uint64) string {
	if s == nil {
		return "–"
	}
	return strconv.FormatUint(*s, 10)
}

// cell makes text safe in a Markdown table cell: a '|' would end the cell
// and a line break the row. A class name or a label is the model author's
// or the user's text: markup is shown, never rendered.
func cell(s string) string {
	return cellText.Replace(s)
}

var cellText = strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ", "&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\\`", "[", `\[`, "]", `\]`)

// ReadReport reads one eval report (report.json), refusing one whose
// figures are out of their ranges.
func ReadReport(path string) (*Report, error) {
	b, err := fsutil.ReadSmallFile(path, MaxReportBytes)
	if err != nil {
		return nil, fmt.Errorf("eval: report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("eval: report %s: %w", path, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("eval: report %s: %w", path, err)
	}
	return &r, nil
}

// ReadReports reads eval reports (report.json files); a report without a
// label is labelled by its path. An argument LABEL=PATH (where the whole
// argument names no file) gives the report at PATH the label LABEL.
func ReadReports(paths []string) ([]Report, error) {
	var reps []Report
	for _, p := range paths {
		label := ""
		if i := strings.IndexByte(p, '='); i > 0 {
			if _, err := os.Stat(p); err != nil {
				label, p = p[:i], p[i+1:]
			}
		}
		r, err := ReadReport(p)
		if err != nil {
			return nil, err
		}
		if label != "" {
			r.Label = label
		}
		if r.Label == "" {
			r.Label = p
		}
		if r.overDraws() {
			// The interval from the draws themselves, as RatioOf gives it
			// now: a report written when it was ±1 sd reads the same as
			// one written today.
			r.FDRatio = RatioOf(r.FDDraws, r.FloorDraws)
		}
		reps = append(reps, *r)
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
	b.WriteString("| model | trained steps | samples | sampler | judge | seeds (samples / real) | accuracy | IS (real) | FD (real floor) | FD / floor | KID ×10³ (real) | precision / recall | stray (real) | t-SNE 5-NN | images/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
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
		fd, floor := r.FD, r.RealFD
		if r.overDraws() { // the means over the draws the ratio divides
			fd, floor = r.FDDraws.Mean, r.FloorDraws.Mean
		}
		judge := "–"
		if r.Classifier != "" {
			judge = stem(r.Classifier)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s / %s | %s | %.2f (%.2f) | %.3f (%.3f) | %s | %s (%s) | %s / %s | %s (%s) | %s | %s |\n", cell(r.Label), trained, r.Samples, smp,
			cell(judge), seed(r.SampleSeed), seed(r.EvalSeed),
			pct(r.Accuracy), r.IS, r.RealIS, fd, floor, r.fdRatio(), kid(r.KID), kid(r.RealKID),
			r.precision(), r.recall(), pctPM(r.Stray), pctPM(r.RealStray), pct(r.KNN), speed(r.ImagesPerSecond))
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
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f× |", cell(r.Label), c.Generated, c.Real, c.Ratio)
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
