package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

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
	// GuidanceInterval and Guide: where guidance applied ("": every step)
	// and the autoguidance guide ("": the null class), from the manifest.
	GuidanceInterval string  `json:"guidance_interval,omitempty"`
	Guide            string  `json:"guide,omitempty"`
	Eta              float64 `json:"eta"`
	// SampleSeed is the samples' noise seed (from their manifest), EvalSeed
	// the seed of the real draws and the t-SNE (--eval-seed). Reports from
	// before they were recorded have neither.
	SampleSeed *uint64 `json:"sample_seed,omitempty"`
	EvalSeed   *uint64 `json:"eval_seed,omitempty"`
	Device     string  `json:"device,omitempty"`
	Backend    string  `json:"backend,omitempty"` // what ran the model: ort or go
	// The sampling's wall time (files written included), when eval sampled.
	SampleSeconds   float64 `json:"sample_seconds,omitempty"`
	ImagesPerSecond Num     `json:"images_per_second"`
	Accuracy        Num     `json:"accuracy"`
	RealAccuracy    Num     `json:"real_accuracy"`
	IS              Num     `json:"inception_score"`
	RealIS          Num     `json:"real_inception_score"`
	FD              Num     `json:"frechet_distance"`
	RealFD          Num     `json:"real_vs_real_frechet_distance"`
	KNN             Num     `json:"tsne_knn_separability"`
	RealKNN         Num     `json:"real_tsne_knn_separability"`
	// The distribution against several disjoint real draws of the samples'
	// size (see Draws): FD to each draw, the real-vs-real floor over
	// disjoint pairs, their ratio with its interval, KID and
	// precision/recall with the real reference (draw 1 against draw 0).
	RealDraws     int      `json:"real_draws,omitempty"`
	FDDraws       Interval `json:"fd_over_draws"`
	FloorDraws    Interval `json:"floor_over_pairs"`
	FDRatio       Ratio    `json:"fd_ratio"`
	KID           Interval `json:"kid"`
	RealKID       Interval `json:"real_kid"`
	Precision     Num      `json:"precision"`
	Recall        Num      `json:"recall"`
	RealPrecision Num      `json:"real_precision"`
	RealRecall    Num      `json:"real_recall"`
	// The share of images with a stray component (see HasStray), ± its
	// binomial standard error; the real reference from draws A and B.
	Stray          Interval          `json:"stray"`
	RealStray      Interval          `json:"real_stray"`
	Classes        []ClassResult     `json:"classes"`
	Train          json.RawMessage   `json:"train,omitempty"`
	TrainedSteps   int               `json:"trained_steps,omitempty"`     // optimiser steps behind the exported weights
	Complete       bool              `json:"complete"`                    // false: the sampling run was interrupted or shards are missing
	RealNotHeldOut bool              `json:"real_not_held_out,omitempty"` // the real images are the classifier's training images (a folder dataset)
	CAS            *CAS              `json:"cas,omitempty"`               // added by condiff cas
	Files          map[string]string `json:"files"`
}

// Percent formats a share as a percentage, "–" when it does not apply.
func Percent(n Num) string { return pct(n) }

// fdRatio is the report's FD / floor: with its interval where it was
// measured over several real draws (flagged "(wide)" when the interval is
// wider than the ratio), else the single-draw ratio of a report from
// before the protocol, flagged "(one draw)": its spread was not measured.
func (r Report) fdRatio() string {
	if r.RealDraws == 0 {
		if s := ratio(r.FD, r.RealFD); s != "–" {
			return s + " (one draw)"
		}
		return "–"
	}
	s := r.FDRatio.String()
	if r.FDRatio.Wide() {
		s += " (wide)"
	}
	return s
}

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
	fmt.Fprintf(&b, "# Evaluation of %s\n\n", cell(r.Model))
	if r.RealNotHeldOut {
		fmt.Fprintf(&b, "**Warning: the real images are not held out.** %s has no test split: the real images are its own, which the classifier was trained on, so the real accuracy, IS and floor below flatter the real side.\n\n", cell(r.Dataset))
	}
	guidance := fmt.Sprintf("guidance %g", r.Guidance)
	if r.GuidanceInterval != "" {
		guidance += " in σ ∈ (" + r.GuidanceInterval + "]"
	}
	if r.Guide != "" {
		guidance += ", guided by " + cell(r.Guide)
	}
	fmt.Fprintf(&b, "%d samples (%s, %d steps, %s), judged by the classifier %s; real images: the %s test split.\n\n",
		r.Samples, r.Sampler, r.Steps, guidance, r.Classifier, r.Dataset)
	if r.SampleSeconds > 0 {
		on := r.Device
		if r.Backend != "" {
			on += " (" + r.Backend + " backend)"
		}
		fmt.Fprintf(&b, "Sampling took %.1f s: %.1f images/s on %s.\n\n", r.SampleSeconds, float64(r.ImagesPerSecond), on)
	}
	if !r.Complete {
		fmt.Fprintf(&b, "**Incomplete:** the sampling run behind these samples did not finish (interrupted, or shards missing); the figures are for the %d images it wrote.\n\n", r.Samples)
	}
	fmt.Fprintf(&b, "| measure | samples | real images (reference) |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| conditioning accuracy | %s | %s (classifier on real) |\n", pct(r.Accuracy), pct(r.RealAccuracy))
	fmt.Fprintf(&b, "| classifier Inception Score | %.3f | %.3f (ceiling) |\n", r.IS, r.RealIS)
	fmt.Fprintf(&b, "| Fréchet distance (classifier features) | %.3f (%s the floor) | %.3f (real vs real floor) |\n", r.FD, ratio(r.FD, r.RealFD), r.RealFD)
	fmt.Fprintf(&b, "| t-SNE 5-NN class separability | %s | %s |\n", pct(r.KNN), pct(r.RealKNN))
	if r.Stray.N > 0 {
		fmt.Fprintf(&b, "| images with a stray component | %s | %s |\n", pctPM(r.Stray), pctPM(r.RealStray))
	}
	b.WriteString("\n")
	if r.RealDraws > 0 {
		b.WriteString(r.distributionMarkdown())
	}
	if math.IsNaN(float64(r.Accuracy)) {
		b.WriteString("The model is unconditional: its samples have no label to follow; the table counts the samples the classifier assigns to each class.\n\n")
	}
	fmt.Fprintf(&b, "| class | samples | accuracy |\n|---|---|---|\n")
	for _, c := range r.Classes {
		fmt.Fprintf(&b, "| %s | %d | %s |\n", cell(c.Name), c.Samples, pct(c.Accuracy))
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

// speed formats images/s, "–" where the report was not timed.
func speed(n Num) string {
	if !(n > 0) {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(n))
}

// distributionMarkdown renders the figures measured against several real
// draws, each with its spread; a ratio whose interval is wider than itself
// is flagged, not printed bare.
func (r Report) distributionMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Distribution, against %d disjoint real draws of %d images (mean ± sd over the draws; FD / floor is the ratio of the means, its interval ±1 standard error of each mean):\n\n", r.RealDraws, r.Samples)
	fmt.Fprintf(&b, "| measure | samples | real vs real |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Fréchet distance | %s (over %d draws) | %s (floor, over %d disjoint pairs) |\n", pm(r.FDDraws, 3), r.FDDraws.N, pm(r.FloorDraws, 3), r.FloorDraws.N)
	ratio := r.FDRatio.String()
	if r.FDRatio.Wide() {
		ratio += " — **not measured: the interval is wider than the ratio**; evaluate more samples"
	}
	fmt.Fprintf(&b, "| FD / floor | %s | 1 |\n", ratio)
	fmt.Fprintf(&b, "| KID (×10³, 10 subsets of half the images) | %s | %s |\n", pm(scale(r.KID, 1e3), 2), pm(scale(r.RealKID, 1e3), 2))
	fmt.Fprintf(&b, "| precision (fidelity) | %s | %s |\n", pct(r.Precision), pct(r.RealPrecision))
	fmt.Fprintf(&b, "| recall (diversity) | %s | %s |\n\n", pct(r.Recall), pct(r.RealRecall))
	return b.String()
}

// pm is "mean ± sd", "–" where not measured (NaN, or absent from an
// older report: N is 0).
func pm(v Interval, digits int) string {
	if math.IsNaN(float64(v.Mean)) || v.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f ± %.*f", digits, float64(v.Mean), digits, float64(v.SD))
}

// pctPM is a share with its standard error in percent, "–" where missing.
func pctPM(v Interval) string {
	if math.IsNaN(float64(v.Mean)) || v.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ± %.1f%%", 100*float64(v.Mean), 100*float64(v.SD))
}

func scale(v Interval, k float64) Interval {
	return Interval{Mean: v.Mean * Num(k), SD: v.SD * Num(k), N: v.N}
}
