package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
)

// Options configure an evaluation.
type Options struct {
	Classifier string // independent classifier .onnx
	Data       data.Options
	Out        string
	Samples    string // existing sample directory (with manifest.json)
	Run        string // training run, for the loss curve (optional)
	Seed       uint64 // the real-image subsets and the t-SNE
	// Sample is the sampling run, unless Samples is given: Model, N (per
	// class), the sampler's options; its Session and Progress also serve
	// the classifier. Out and Class are the evaluation's own (every class,
	// into Out/samples).
	Sample infer.SampleOptions
}

// Num is a float64 that is JSON null when it is not a number (a measure
// that does not apply, such as the accuracy of an unconditional model).
type Num float64

// MarshalJSON writes null for NaN.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = Num(f)
	return err
}

// ClassResult is one class's figures.
type ClassResult struct {
	Name     string `json:"name"`
	Samples  int    `json:"samples"`
	Accuracy Num    `json:"accuracy"`
}

// Report is what eval writes to report.json.
type Report struct {
	Model      string  `json:"model"`
	Label      string  `json:"label"`
	Classifier string  `json:"classifier"`
	Dataset    string  `json:"dataset"`
	Samples    int     `json:"samples"`
	Sampler    string  `json:"sampler"`
	Steps      int     `json:"steps"`
	Guidance   float64 `json:"guidance"`
	Eta        float64 `json:"eta"`
	Device     string  `json:"device,omitempty"`
	// The sampling's wall time (files written included), when eval sampled.
	SampleSeconds   float64           `json:"sample_seconds,omitempty"`
	ImagesPerSecond Num               `json:"images_per_second"`
	Accuracy        Num               `json:"accuracy"`
	RealAccuracy    Num               `json:"real_accuracy"`
	IS              Num               `json:"inception_score"`
	RealIS          Num               `json:"real_inception_score"`
	FD              Num               `json:"frechet_distance"`
	RealFD          Num               `json:"real_vs_real_frechet_distance"`
	KNN             Num               `json:"tsne_knn_separability"`
	RealKNN         Num               `json:"real_tsne_knn_separability"`
	Classes         []ClassResult     `json:"classes"`
	Train           json.RawMessage   `json:"train,omitempty"`
	TrainedSteps    int               `json:"trained_steps,omitempty"` // optimiser steps behind the exported weights
	Complete        bool              `json:"complete"`                // false: the sampling run was interrupted or shards are missing
	CAS             *CAS              `json:"cas,omitempty"`           // added by condiff cas
	Files           map[string]string `json:"files"`
}

// SampleSet is images [N C S S] in [-1, 1] with their class labels, read
// from a sample directory.
type SampleSet struct {
	X      []float32
	Labels []int
}

// ReadSamples reads the images a sample directory's manifests list (every
// shard), which must be c-channel size×size PNGs of classes 0..k-1.
func ReadSamples(dir string, c, size, k int) (*SampleSet, *infer.Manifest, error) {
	mp, err := infer.ReadSampleDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: samples: %w", err)
	}
	m := *mp
	s := &SampleSet{}
	for _, e := range m.Images {
		if e.Class < 0 || e.Class >= k {
			return nil, nil, fmt.Errorf("eval: %s has class %d; the classifier knows %d classes", e.File, e.Class, k)
		}
		f, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			return nil, nil, fmt.Errorf("eval: %w", err)
		}
		// The header first: a PNG of another size is refused undecoded.
		if cfg, err := png.DecodeConfig(bytes.NewReader(f)); err != nil || cfg.Width != size || cfg.Height != size {
			return nil, nil, fmt.Errorf("eval: %s: not a %d×%d PNG (%dx%d, %v)", e.File, size, size, cfg.Width, cfg.Height, err)
		}
		img, err := png.Decode(bytes.NewReader(f))
		if err != nil {
			return nil, nil, fmt.Errorf("eval: %s: %w", e.File, err)
		}
		bd := img.Bounds()
		if bd.Dx() != size || bd.Dy() != size {
			return nil, nil, fmt.Errorf("eval: %s is %d×%d, the classifier takes %d×%d", e.File, bd.Dx(), bd.Dy(), size, size)
		}
		for ch := 0; ch < c; ch++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					r, g, bl, _ := img.At(bd.Min.X+x, bd.Min.Y+y).RGBA()
					v := []uint32{r, g, bl}[ch]
					if c == 1 {
						v = r
					}
					s.X = append(s.X, float32(v>>8)/127.5-1)
				}
			}
		}
		s.Labels = append(s.Labels, e.Class)
	}
	return s, &m, nil
}

// classify runs the classifier in batches of 256.
func classify(clf *infer.Session, x []float32) (logits, feats []float32, dim int, err error) {
	d := clf.Info.Channels * clf.Info.ImageSize * clf.Info.ImageSize
	n := len(x) / d
	for i := 0; i < n; i += 256 {
		j := min(n, i+256)
		l, f, fd, err := clf.Classify(x[i*d:j*d], j-i)
		if err != nil {
			return nil, nil, 0, err
		}
		logits, feats, dim = append(logits, l...), append(feats, f...), fd
	}
	return logits, feats, dim, nil
}

// Evaluate samples (or reads samples), classifies them and real images, and
// writes report.md, report.json and the pictures into o.Out.
func Evaluate(ctx context.Context, o Options) (*Report, error) {
	if o.Sample.N < 1 && o.Samples == "" {
		return nil, field.Errorf("eval", "N", o.Sample.N, "must be > 0")
	}
	if o.Run != "" {
		if _, err := checkpoint.ReadLog(o.Run); err != nil {
			return nil, field.Errorf("eval", "Run", o.Run, "no training log to plot: %v", err)
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, field.Errorf("eval", "Out", o.Out, "%v", err)
	}
	clf, err := infer.Open(o.Classifier, o.Sample.Session)
	if err != nil {
		return nil, fmt.Errorf("eval: classifier: %w", err)
	}
	defer clf.Close()
	defer clf.StopOn(ctx)()
	if clf.Info.Kind != contract.Classifier {
		return nil, field.Errorf("eval", "Classifier", o.Classifier, "is a %s, not a classifier", clf.Info.Kind)
	}
	K, C, S := clf.Info.NumClasses, clf.Info.Channels, clf.Info.ImageSize

	samplesDir := o.Samples
	var report Report
	report.Files = map[string]string{}
	if samplesDir == "" {
		samplesDir = filepath.Join(o.Out, "samples")
		so := o.Sample
		so.Out, so.Class = samplesDir, infer.ClassChoice{}
		so.Replace = true // OUT/samples belongs to this evaluation: a rerun replaces it
		if in, err := infer.ReadInfo(so.Model); err == nil && !in.Conditional() {
			so.N *= K // as many samples as a conditional model makes over its K classes
		}
		start := time.Now()
		if _, err := infer.SampleToDir(ctx, so); err != nil {
			return nil, fmt.Errorf("eval: sample: %w", err)
		}
		report.SampleSeconds = time.Since(start).Seconds()
	}
	samples, manifest, err := ReadSamples(samplesDir, C, S, K)
	if err != nil {
		return nil, err
	}
	if len(samples.Labels) == 0 {
		return nil, fmt.Errorf("eval: %s lists no images", samplesDir)
	}
	report.Model, report.Sampler, report.Steps, report.Guidance = manifest.Model, manifest.Sampler, manifest.Steps, manifest.Guidance
	report.Classifier, report.Samples, report.Complete = o.Classifier, len(samples.Labels), manifest.Complete
	report.Device, report.Eta = manifest.Device, manifest.Eta
	if report.SampleSeconds > 0 {
		report.ImagesPerSecond = Num(float64(report.Samples) / report.SampleSeconds)
	} else {
		report.ImagesPerSecond = Num(math.NaN()) // read, not sampled: no timing
	}
	report.Label = strings.TrimSuffix(filepath.Base(manifest.Model), filepath.Ext(manifest.Model))
	conditional, guidable := true, manifest.Guidance != 0
	if in, err := infer.ReadInfo(manifest.Model); err == nil {
		report.Train, report.TrainedSteps = in.Train, in.Step
		conditional = in.Conditional()
		guidable = guidable || in.HasNull
	}
	if guidable { // a guidance-ready model says which weight it was sampled at, 0 included
		report.Label += fmt.Sprintf(" w=%g", manifest.Guidance)
	}

	// Real held-out images, two disjoint subsets of the samples' size.
	dopt := o.Data
	dopt.Test, dopt.Size, dopt.Channels = true, S, C
	real, err := data.Load(dopt)
	if err != nil {
		return nil, fmt.Errorf("eval: data: %w", err)
	}
	if !slices.Equal(real.ClassNames, clf.Info.ClassNames) {
		return nil, field.Errorf("eval", "Data", real.Name, "has classes %v, the classifier %v (choose the classifier's classes)", real.ClassNames, clf.Info.ClassNames)
	}
	report.Dataset = real.Name
	n := min(len(samples.Labels), real.N/2)
	perm := randPerm(real.N, o.Seed)
	D := C * S * S
	realA, realB := make([]float32, 0, n*D), make([]float32, 0, n*D)
	labA := make([]int, 0, n)
	for i := 0; i < n; i++ {
		realA = append(realA, real.Image(perm[i])...)
		labA = append(labA, real.Labels[perm[i]])
		realB = append(realB, real.Image(perm[n+i])...)
	}

	sl, sf, dim, err := classify(clf, samples.X)
	if err != nil {
		return nil, err
	}
	al, af, _, err := classify(clf, realA)
	if err != nil {
		return nil, err
	}
	_, bf, _, err := classify(clf, realB)
	if err != nil {
		return nil, err
	}
	sp, ap := Softmax(sl, K), Softmax(al, K)
	acc, perClass := Accuracy(Argmax(sp, K), samples.Labels, K)
	realAcc, _ := Accuracy(Argmax(ap, K), labA, K)
	report.Accuracy, report.RealAccuracy = Num(acc), Num(realAcc)
	report.IS, report.RealIS = Num(InceptionScore(sp, K)), Num(InceptionScore(ap, K))
	report.FD = Num(FrechetDistance(Fit(sf, dim), Fit(af, dim)))
	report.RealFD = Num(FrechetDistance(Fit(bf, dim), Fit(af, dim)))
	counts := make([]int, K)
	for _, l := range samples.Labels {
		counts[l]++
	}
	for c := 0; c < K; c++ {
		report.Classes = append(report.Classes, ClassResult{clf.Info.ClassName(c), counts[c], Num(perClass[c])})
	}
	if !conditional {
		// Samples of an unconditional model have no label to follow: report
		// the classifier's predicted class distribution instead.
		report.Accuracy = Num(math.NaN())
		pred := Argmax(sp, K)
		for c := range report.Classes {
			report.Classes[c].Samples = 0
			for _, p := range pred {
				if p == c {
					report.Classes[c].Samples++
				}
			}
			report.Classes[c].Accuracy = Num(math.NaN())
		}
		copy(samples.Labels, pred) // colour the t-SNE by predicted class
	}

	// t-SNE of samples and real images together (at most 400 of each, spread
	// evenly over the sets: samples are stored class by class).
	var joint []float32
	var sLab, rLab []int
	for _, i := range Spread(len(samples.Labels), 400) {
		joint, sLab = append(joint, sf[i*dim:(i+1)*dim]...), append(sLab, samples.Labels[i])
	}
	for _, i := range Spread(n, 400) {
		joint, rLab = append(joint, af[i*dim:(i+1)*dim]...), append(rLab, labA[i])
	}
	ns := len(sLab)
	y, err := TSNE(ctx, joint, dim, 30, 500, o.Seed)
	if err != nil {
		return nil, fmt.Errorf("eval: t-SNE: %w", err)
	}
	report.KNN = Num(KNNSeparability(y[:2*ns], sLab, 5))
	if !conditional {
		report.KNN = Num(math.NaN())
	}
	report.RealKNN = Num(KNNSeparability(y[2*ns:], rLab, 5))
	if err := plotTSNE(filepath.Join(o.Out, "tsne.png"), y, sLab, rLab, clf.Info.ClassNames, float64(report.KNN)); err != nil {
		return nil, err
	}
	report.Files["tsne"] = "tsne.png"
	if g := filepath.Join(samplesDir, "grid.png"); fileExists(g) {
		rel, _ := filepath.Rel(o.Out, g)
		report.Files["grid"] = rel
	}
	if o.Run != "" {
		log, err := checkpoint.ReadLog(o.Run)
		if err != nil {
			return nil, fmt.Errorf("eval: run: %w", err)
		}
		if len(log) > 0 {
			if err := plotLoss(filepath.Join(o.Out, "loss.png"), log); err != nil {
				return nil, err
			}
			report.Files["loss"] = "loss.png"
		}
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("eval: report: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(o.Out, "report.json"), append(b, '\n')); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(o.Out, "report.md"), []byte(report.Markdown())); err != nil {
		return nil, err
	}
	return &report, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Percent formats a share as a percentage, "–" when it does not apply.
func Percent(n Num) string { return pct(n) }

// ratio is a/b to two decimals with a × sign, or – where either is missing.
func ratio(a, b Num) string {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func pct(n Num) string {
	v := float64(n)
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation of %s\n\n", r.Model)
	fmt.Fprintf(&b, "%d samples (%s, %d steps, guidance %g), judged by the classifier %s; real images: the %s test split.\n\n",
		r.Samples, r.Sampler, r.Steps, r.Guidance, r.Classifier, r.Dataset)
	if r.SampleSeconds > 0 {
		fmt.Fprintf(&b, "Sampling took %.1f s: %.1f images/s on %s.\n\n", r.SampleSeconds, float64(r.ImagesPerSecond), r.Device)
	}
	if !r.Complete {
		fmt.Fprintf(&b, "**Incomplete:** the sampling run behind these samples did not finish (interrupted, or shards missing); the figures are for the %d images it wrote.\n\n", r.Samples)
	}
	fmt.Fprintf(&b, "| measure | samples | real images (reference) |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| conditioning accuracy | %s | %s (classifier on real) |\n", pct(r.Accuracy), pct(r.RealAccuracy))
	fmt.Fprintf(&b, "| classifier Inception Score | %.3f | %.3f (ceiling) |\n", r.IS, r.RealIS)
	fmt.Fprintf(&b, "| Fréchet distance (classifier features) | %.3f (%s the floor) | %.3f (real vs real floor) |\n", r.FD, ratio(r.FD, r.RealFD), r.RealFD)
	fmt.Fprintf(&b, "| t-SNE 5-NN class separability | %s | %s |\n\n", pct(r.KNN), pct(r.RealKNN))
	if math.IsNaN(float64(r.Accuracy)) {
		b.WriteString("The model is unconditional: its samples have no label to follow; the table counts the samples the classifier assigns to each class.\n\n")
	}
	fmt.Fprintf(&b, "| class | samples | accuracy |\n|---|---|---|\n")
	for _, c := range r.Classes {
		fmt.Fprintf(&b, "| %s | %d | %s |\n", c.Name, c.Samples, pct(c.Accuracy))
	}
	b.WriteString("\n")
	for _, k := range []string{"grid", "tsne", "loss"} {
		if f, ok := r.Files[k]; ok {
			fmt.Fprintf(&b, "![%s](%s)\n\n", k, f)
		}
	}
	if r.CAS != nil {
		b.WriteString(r.CAS.Markdown())
	}
	if r.TrainedSteps > 0 {
		fmt.Fprintf(&b, "Weights after %d training steps.\n", r.TrainedSteps)
	}
	if len(r.Train) > 0 {
		fmt.Fprintf(&b, "Training options: `%s`\n", string(r.Train))
	}
	return b.String()
}

var palette = []color.RGBA{{230, 25, 75, 255}, {60, 180, 75, 255}, {0, 130, 200, 255}, {245, 130, 48, 255}, {145, 30, 180, 255},
	{70, 240, 240, 255}, {240, 50, 230, 255}, {170, 110, 40, 255}, {128, 128, 0, 255}, {0, 0, 128, 255}}

func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, func(out io.Writer) error { _, err := wt.WriteTo(out); return err })
}

func plotTSNE(path string, y []float64, sampleLabels, realLabels []int, names []string, knn float64) error {
	sep := "5-NN separability " + pct(Num(knn))
	p := plot.New()
	p.Title.Text = "t-SNE of classifier features (samples solid, real faint); " + sep
	ns := len(sampleLabels)
	for c := range names {
		var pts, rpts plotter.XYs
		for i, l := range sampleLabels {
			if l == c {
				pts = append(pts, plotter.XY{X: y[2*i], Y: y[2*i+1]})
			}
		}
		for i, l := range realLabels {
			if l == c {
				rpts = append(rpts, plotter.XY{X: y[2*(ns+i)], Y: y[2*(ns+i)+1]})
			}
		}
		col := palette[c%len(palette)]
		if len(rpts) > 0 {
			s, err := plotter.NewScatter(rpts)
			if err != nil {
				return err
			}
			faint := color.NRGBA{R: col.R, G: col.G, B: col.B, A: 60}
			s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = faint, vg.Points(2), draw.CircleGlyph{}
			p.Add(s)
		}
		if len(pts) > 0 {
			s, err := plotter.NewScatter(pts)
			if err != nil {
				return err
			}
			s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = col, vg.Points(2.5), draw.CircleGlyph{}
			p.Add(s)
			p.Legend.Add(names[c], s)
		}
	}
	p.Legend.Top = true // ten or more entries run off the bottom of the canvas otherwise
	return savePlot(p, path, 7*vg.Inch, 6*vg.Inch)
}

func plotLoss(path string, log []checkpoint.LogEntry) error {
	p := plot.New()
	p.Title.Text = "training loss"
	p.X.Label.Text = "step"
	var pts, smooth plotter.XYs
	ema := log[0].Loss
	for _, e := range log {
		pts = append(pts, plotter.XY{X: float64(e.Step), Y: e.Loss})
		ema = 0.98*ema + 0.02*e.Loss
		smooth = append(smooth, plotter.XY{X: float64(e.Step), Y: ema})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = color.RGBA{180, 180, 220, 255}
	s, err := plotter.NewLine(smooth)
	if err != nil {
		return err
	}
	s.Color, s.Width = color.RGBA{0, 0, 160, 255}, vg.Points(1.5)
	p.Add(l, s)
	p.Legend.Add("loss", l)
	p.Legend.Add("smoothed", s)
	return savePlot(p, path, 7*vg.Inch, 4*vg.Inch)
}

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

// speed formats images/s, "–" where the report was not timed.
func speed(n Num) string {
	if !(n > 0) {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(n))
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
