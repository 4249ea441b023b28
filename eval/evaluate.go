package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
)

// LockName is the lock an evaluation directory is held by while eval
// writes it and while cas adds to its report.
const LockName = "eval"

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
// writes report.md, report.json and the pictures into o.Out. Everything
// that can be refused (options, classifier, real data) is checked before
// the first sample is made.
func Evaluate(ctx context.Context, o Options) (*Report, error) {
	if o.Sample.N < 1 && o.Samples == "" {
		return nil, field.Errorf("eval", "N", o.Sample.N, "must be > 0")
	}
	var log []checkpoint.LogEntry
	if o.Run != "" {
		var err error
		if log, err = checkpoint.ReadLog(o.Run); err != nil {
			return nil, field.Errorf("eval", "Run", o.Run, "no training log to plot: %v", err)
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, field.Errorf("eval", "Out", o.Out, "%v", err)
	}
	unlock, err := fsutil.Lock(o.Out, LockName)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer unlock()
	clf, err := infer.Open(o.Classifier, o.Sample.Session)
	if err != nil {
		return nil, fmt.Errorf("eval: classifier: %w", err)
	}
	defer clf.Close()
	defer clf.StopOn(ctx)()
	if clf.Info.Kind != contract.Classifier {
		return nil, field.Errorf("eval", "Classifier", o.Classifier, "is a %s, not a classifier", clf.Info.Kind)
	}
	real, err := loadReal(o.Data, clf.Info)
	if err != nil {
		return nil, err
	}
	K, C, S := clf.Info.NumClasses, clf.Info.Channels, clf.Info.ImageSize

	evalSeed := o.Seed
	report := Report{Files: map[string]string{}, Dataset: real.Name, RealNotHeldOut: real.NotHeldOut, EvalSeed: &evalSeed}
	samplesDir := o.Samples
	if samplesDir == "" {
		samplesDir = filepath.Join(o.Out, "samples")
		if report.SampleSeconds, err = sampleInto(ctx, o.Sample, samplesDir, K); err != nil {
			return nil, err
		}
	}
	samples, manifest, err := ReadSamples(samplesDir, C, S, K)
	if err != nil {
		return nil, err
	}
	if len(samples.Labels) == 0 {
		return nil, fmt.Errorf("eval: %s lists no images", samplesDir)
	}
	conditional := report.describe(manifest, o.Classifier, len(samples.Labels))

	// Real held-out images, two disjoint subsets of the samples' size.
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
	report.Stray, report.RealStray = StrayRate(samples.X, C, S), StrayRate(append(realA, realB...), C, S)
	if err := report.distribution(clf, real, perm, n, o, sf, af, bf, dim); err != nil {
		return nil, err
	}
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

	if err := report.tsne(ctx, o, sf, af, dim, samples.Labels, labA, clf.Info.ClassNames, conditional); err != nil {
		return nil, err
	}
	if g := filepath.Join(samplesDir, "grid.png"); fileExists(g) {
		rel, _ := filepath.Rel(o.Out, g)
		report.Files["grid"] = rel
	}
	if len(log) > 0 {
		if err := plotLoss(filepath.Join(o.Out, "loss.png"), log); err != nil {
			return nil, err
		}
		report.Files["loss"] = "loss.png"
	}
	if err := report.write(o.Out); err != nil {
		return nil, err
	}
	return &report, nil
}

// Draws is the most disjoint real subsets of the samples' size an
// evaluation draws (as many as the held-out split holds, up to this): at
// the default 1000 samples, MNIST's and Fashion-MNIST's 10 000 test images
// hold all 10, so the floor is measured over 5 disjoint pairs.
const Draws = 10

// distribution measures the samples' distribution against up to Draws
// disjoint real draws of their size: draws 0 and 1 are the subsets A and B
// the other figures use (FD and RealFD are their single-draw figures), the
// rest it classifies here; figures computes the figures from them.
func (r *Report) distribution(clf *infer.Session, real *data.Set, perm []int, n int, o Options, sf, af, bf []float32, dim int) error {
	feats := [][]float32{af, bf}
	D := real.C * real.Size * real.Size
	for j := 2; j < Draws && (j+1)*n <= real.N; j++ {
		x := make([]float32, 0, n*D)
		for _, i := range perm[j*n : (j+1)*n] {
			x = append(x, real.Image(i)...)
		}
		_, f, _, err := classify(clf, x)
		if err != nil {
			return err
		}
		feats = append(feats, f)
	}
	r.figures(sf, feats, dim, o.Seed)
	return nil
}

// figures computes the distribution figures from the samples' features sf
// and those of disjoint real draws of their size (feats; draws 0 and 1 are
// A and B), each dim wide: FD to every draw, the floor over the disjoint
// pairs (0,1), (2,3), …, their ratio of means with its interval (±1
// standard error of each; see Ratio), KID and precision/recall (k = 3)
// against draw 0 with draw 1 as the real reference.
func (r *Report) figures(sf []float32, feats [][]float32, dim int, seed uint64) {
	n := len(feats[0]) / dim // the draws' size
	s := Fit(sf, dim)
	var fds, floor []float64
	var prev Gaussian
	for j, f := range feats {
		g := Fit(f, dim) // each draw fitted once
		fds = append(fds, FrechetDistance(s, g))
		if j%2 == 1 {
			floor = append(floor, FrechetDistance(g, prev))
		}
		prev = g
	}
	// FD and the floor of draw A (and A, B): the single-draw figures.
	r.FD, r.RealFD = Num(fds[0]), Num(floor[0])
	r.RealDraws = len(feats)
	r.FDDraws, r.FloorDraws = interval(fds), interval(floor)
	r.FDRatio = RatioOf(r.FDDraws, r.FloorDraws)
	m := min(n/2, 1000) // subsets of half the images, so that they differ
	af, bf := feats[0], feats[1]
	r.KID, r.RealKID = KID(sf, af, dim, 10, m, seed), KID(bf, af, dim, 10, m, seed)
	p, rc := PrecisionRecall(af, sf, dim, 3)
	rp, rr := PrecisionRecall(af, bf, dim, 3)
	r.Precision, r.Recall, r.RealPrecision, r.RealRecall = Num(p), Num(rc), Num(rp), Num(rr)
}

// loadReal loads the held-out split of the real dataset, shaped for the
// classifier, whose classes it must have.
func loadReal(o data.Options, clf contract.Info) (*data.Set, error) {
	o.Test, o.Size, o.Channels = true, clf.ImageSize, clf.Channels
	real, err := data.Load(o)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if !slices.Equal(real.ClassNames, clf.ClassNames) {
		return nil, field.Errorf("eval", "Data", real.Name, "has classes %v, the classifier %v (choose the classifier's classes)", real.ClassNames, clf.ClassNames)
	}
	return real, nil
}

// sampleInto makes the evaluation's samples: every class of so.Model into
// dir (which belongs to the evaluation: a rerun replaces it), and returns
// the wall time. An unconditional model makes as many samples as a
// conditional one over the classifier's k classes.
func sampleInto(ctx context.Context, so infer.SampleOptions, dir string, k int) (float64, error) {
	so.Out, so.Class, so.Replace = dir, infer.ClassChoice{}, true
	if in, err := infer.ReadInfo(so.Model); err == nil && !in.Conditional() {
		if so.N > infer.MaxImages/k {
			return 0, field.Errorf("eval", "N", so.N, "%d per class × %d classes is over %d images", so.N, k, infer.MaxImages)
		}
		so.N *= k
	}
	start := time.Now()
	if _, err := infer.SampleToDir(ctx, so); err != nil {
		return 0, fmt.Errorf("eval: sample: %w", err)
	}
	return time.Since(start).Seconds(), nil
}

// describe fills the report's account of the samples from their manifest,
// and says whether the model is conditional (its samples carry labels).
func (r *Report) describe(m *infer.Manifest, classifier string, n int) (conditional bool) {
	r.Model, r.Sampler, r.Steps, r.Guidance = m.Model, m.Sampler, m.Steps, m.Guidance
	r.GuidanceInterval, r.Guide = m.GuidanceInterval, m.Guide
	r.Classifier, r.Samples, r.Complete = classifier, n, m.Complete
	r.Device, r.Backend, r.Eta = m.Device, m.Backend, m.Eta
	r.SampleSeed = &m.Seed
	if r.SampleSeconds > 0 {
		r.ImagesPerSecond = Num(float64(n) / r.SampleSeconds)
	} else {
		r.ImagesPerSecond = Num(math.NaN()) // read, not sampled: no timing
	}
	r.Label = stem(m.Model)
	conditional, guidable := true, m.Guidance != 0
	if in, err := infer.ReadInfo(m.Model); err == nil {
		r.Train, r.TrainedSteps = in.Train, in.Step
		conditional = in.Conditional()
		guidable = guidable || in.HasNull
	}
	if guidable { // a guidance-ready model says which weight it was sampled at, 0 included
		r.Label += fmt.Sprintf(" w=%g", m.Guidance)
	}
	if m.GuidanceInterval != "" {
		r.Label += " σ∈(" + m.GuidanceInterval + "]"
	}
	if m.Guide != "" {
		r.Label += " guide " + stem(m.Guide)
	}
	return conditional
}

// tsne embeds samples and real images together (at most 400 of each,
// spread evenly over the sets: samples are stored class by class), scores
// how well the classes separate and draws tsne.png.
func (r *Report) tsne(ctx context.Context, o Options, sf, af []float32, dim int, sLabels, rLabels []int, names []string, conditional bool) error {
	var joint []float32
	var sLab, rLab []int
	for _, i := range Spread(len(sLabels), 400) {
		joint, sLab = append(joint, sf[i*dim:(i+1)*dim]...), append(sLab, sLabels[i])
	}
	for _, i := range Spread(len(rLabels), 400) {
		joint, rLab = append(joint, af[i*dim:(i+1)*dim]...), append(rLab, rLabels[i])
	}
	ns := len(sLab)
	y, err := TSNE(ctx, joint, dim, 30, 500, o.Seed)
	if err != nil {
		return fmt.Errorf("eval: t-SNE: %w", err)
	}
	r.KNN = Num(KNNSeparability(y[:2*ns], sLab, 5))
	if !conditional {
		r.KNN = Num(math.NaN())
	}
	r.RealKNN = Num(KNNSeparability(y[2*ns:], rLab, 5))
	if err := plotTSNE(filepath.Join(o.Out, "tsne.png"), y, sLab, rLab, names, float64(r.KNN)); err != nil {
		return err
	}
	r.Files["tsne"] = "tsne.png"
	return nil
}

// write writes report.json and report.md into dir, each atomically.
func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: report: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "report.json"), append(b, '\n')); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "report.md"), []byte(r.Markdown()))
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
