package eval

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/condiff/condiff/internal/fsutil"
)

// series is one sampler at one guidance weight, over its step counts.
type series struct {
	sampler  string
	guidance float64
	reps     []Report // by steps
}

func (s series) name() string { return fmt.Sprintf("%s w=%g", s.sampler, s.guidance) }

// frontierSeries groups reports by sampler and guidance, each by steps.
func frontierSeries(reps []Report) []series {
	var out []series
	for _, r := range reps {
		i := slices.IndexFunc(out, func(s series) bool { return s.sampler == r.Sampler && s.guidance == r.Guidance })
		if i < 0 {
			out = append(out, series{sampler: r.Sampler, guidance: r.Guidance})
			i = len(out) - 1
		}
		out[i].reps = append(out[i].reps, r)
	}
	for _, s := range out {
		slices.SortFunc(s.reps, func(a, b Report) int { return cmp.Compare(a.Steps, b.Steps) })
	}
	slices.SortFunc(out, func(a, b series) int {
		return cmp.Or(cmp.Compare(a.guidance, b.guidance), cmp.Compare(a.sampler, b.sampler))
	})
	return out
}

// Frontier tabulates the quality–speed trade-off of evaluations of one
// model that differ in sampler, steps and guidance: conditioning accuracy,
// Fréchet distance as a multiple of the real floor, KID, precision and
// recall, and images/s. With out set it writes frontier.md, frontier.png
// (FD / floor against images/s) and frontier_acc.png (accuracy against
// images/s) there.
func Frontier(reps []Report, out string) (string, error) {
	if len(reps) == 0 {
		return "", fmt.Errorf("frontier: no reports")
	}
	for _, r := range reps[1:] {
		if r.Model != reps[0].Model {
			return "", fmt.Errorf("frontier: the reports evaluate two models (%s, labelled %q, and %s, labelled %q); a frontier is one model's: compare them with compare", reps[0].Model, reps[0].Label, r.Model, r.Label)
		}
	}
	ss := frontierSeries(reps)
	var b strings.Builder
	fmt.Fprintf(&b, "Model: %s\n\n", cell(reps[0].Model))
	b.WriteString("| guidance | sampler | steps | accuracy | FD / floor | KID ×10³ | precision / recall | images/s |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		for _, r := range s.reps {
			fmt.Fprintf(&b, "| %g | %s | %d | %s | %s | %s | %s / %s | %s |\n", r.Guidance, r.Sampler, r.Steps, pct(r.Accuracy), r.fdRatio(),
				kid(r.KID), r.precision(), r.recall(), speed(r.ImagesPerSecond))
		}
	}
	if out == "" {
		return b.String(), nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("frontier: %w", err)
	}
	for _, f := range []struct {
		file, y   string
		legendTop bool // where the curves are not: distances fall, accuracies rise
		v         func(Report) float64
	}{
		{"frontier.png", "Fréchet distance / real floor", true, fdOrRatio},
		{"frontier_acc.png", "conditioning accuracy (%)", false, func(r Report) float64 { return 100 * float64(r.Accuracy) }},
	} {
		var bars func(Report) (lo, hi float64)
		if f.file == "frontier.png" {
			bars = fdBars
		}
		if err := plotFrontier(filepath.Join(out, f.file), ss, f.y, f.legendTop, f.v, bars); err != nil {
			return "", fmt.Errorf("frontier: %s: %w", f.file, err)
		}
	}
	md := "# Quality–speed frontier\n\n" + b.String() + "\n![FD / floor against images/s](frontier.png)\n\n![accuracy against images/s](frontier_acc.png)\n"
	if err := fsutil.WriteFileAtomic(filepath.Join(out, "frontier.md"), []byte(md)); err != nil {
		return "", fmt.Errorf("frontier: %w", err)
	}
	return b.String(), nil
}

// plotFrontier draws one line per series through its step counts, x =
// images/s on a log axis, each point labelled with its steps. Reports
// without a timing or a finite value are left out.
func plotFrontier(path string, ss []series, ylabel string, legendTop bool, v func(Report) float64, bars func(Report) (lo, hi float64)) error {
	p := plot.New()
	p.X.Label.Text = "images/s (log scale)"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	p.Legend.Top, p.Legend.Left = legendTop, true
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PlusGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{}}
	drawn := 0
	for i, s := range ss {
		var pts plotter.XYs
		var labels []string
		for _, r := range s.reps {
			y := v(r)
			if !(r.ImagesPerSecond > 0) || math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: float64(r.ImagesPerSecond), Y: y})
			labels = append(labels, strconv.Itoa(r.Steps))
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		l.Color, l.Width = c, vg.Points(1.5)
		if s.guidance == 0 {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		sc.Color, sc.Shape, sc.Radius = c, shapes[i%len(shapes)], vg.Points(3)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
		if err != nil {
			return err
		}
		for j := range lb.TextStyle {
			lb.TextStyle[j].Color = color.Gray{Y: 60}
			lb.TextStyle[j].XAlign = draw.XCenter
		}
		lb.Offset = vg.Point{Y: vg.Points(5)}
		p.Add(l, sc, lb)
		if bars != nil {
			var eb errBars
			for _, r := range s.reps {
				y := v(r)
				if !(r.ImagesPerSecond > 0) || math.IsNaN(y) || math.IsInf(y, 0) {
					continue
				}
				lo, hi := bars(r)
				eb.XYs = append(eb.XYs, plotter.XY{X: float64(r.ImagesPerSecond), Y: y})
				eb.YErrors = append(eb.YErrors, struct{ Low, High float64 }{y - lo, hi - y})
			}
			if e, err := plotter.NewYErrorBars(eb); err == nil {
				e.Color = c
				p.Add(e)
			}
		}
		p.Legend.Add(s.name(), l, sc)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("no report has both a timing (images/s; evaluate with eval sampling, not --samples) and a finite value")
	}
	p.Add(plotter.NewGrid())
	return savePlot(p, path, 7*vg.Inch, 4.5*vg.Inch)
}

// ticks125 marks 1, 2 and 5 times each power of ten, for log axes that
// span less than a decade or two.
type ticks125 struct{}

func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}

// fdOrRatio is the FD / floor a frontier plots: the mean over real draws
// where the report has them, else the single-draw ratio.
func fdOrRatio(r Report) float64 {
	if r.RealDraws > 0 {
		return float64(r.FDRatio.Value)
	}
	return float64(r.FD / r.RealFD)
}

// fdBars is the FD ratio's interval, for error bars (the point itself where
// it was measured once; an unbounded top is drawn at twice the value).
func fdBars(r Report) (lo, hi float64) {
	v := fdOrRatio(r)
	if r.RealDraws == 0 {
		return v, v
	}
	lo, hi = float64(r.FDRatio.Lo), float64(r.FDRatio.Hi)
	if math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = 2 * v
	}
	return lo, hi
}

// errBars holds points and their vertical error bars for plotter.
type errBars struct {
	plotter.XYs
	YErrors []struct{ Low, High float64 }
}

// YError gives the bar below and above point i.
func (e errBars) YError(i int) (float64, float64) { return e.YErrors[i].Low, e.YErrors[i].High }
