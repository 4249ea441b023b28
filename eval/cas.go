package eval

import (
	"fmt"
	"math"
	"strings"
)

// CASCell is one training-set recipe of the Classification Accuracy Score
// measurement: a fresh classifier trained on Real real and Generated
// generated images per class, scored on the real test split, once per
// repeat (each repeat draws its own real images and initialisation).
type CASCell struct {
	Real      int       `json:"real_per_class"`
	Generated int       `json:"generated_per_class"`
	Accuracy  []float64 `json:"accuracy"` // one per repeat
	Mean      float64   `json:"mean"`
	SD        float64   `json:"sd"` // sample standard deviation over the repeats (0 for one)
}

// AugmentRow compares a classifier trained on Real real images per class
// with one trained on the same real images plus the generated ones. The
// two share the real images and the initialisation in each repeat, so the
// gain is the mean of paired differences.
type AugmentRow struct {
	Real    int     `json:"real_per_class"`
	Without CASCell `json:"without"`
	With    CASCell `json:"with"`
	Gain    float64 `json:"gain"`    // mean of With − Without over the repeats
	GainSD  float64 `json:"gain_sd"` // their sample standard deviation
}

// CAS is what `condiff cas` adds to an evaluation report: does training on
// the samples teach a classifier the real classes, and do they help a
// classifier that has only a few real images?
type CAS struct {
	Architecture string       `json:"architecture"` // the classifier whose architecture is trained in every cell
	TestImages   int          `json:"test_images"`
	NotHeldOut   bool         `json:"test_not_held_out,omitempty"` // the test images are training images (a folder dataset)
	Steps        int          `json:"steps"`                       // optimisation steps of every training
	Batch        int          `json:"batch"`
	LR           float64      `json:"lr"`
	Repeats      int          `json:"repeats"`
	Seed         uint64       `json:"seed"`
	Generated    CASCell      `json:"generated"` // trained on the samples only: the CAS
	Real         CASCell      `json:"real"`      // trained on as many real images
	Ratio        float64      `json:"ratio"`     // Generated.Mean / Real.Mean
	Augment      []AugmentRow `json:"augment"`
}

// MeanSD returns the mean and the sample standard deviation of v.
func MeanSD(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)-1))
}

// Summarise sets Mean and SD from Accuracy.
func (c *CASCell) Summarise() { c.Mean, c.SD = MeanSD(c.Accuracy) }

func (c CASCell) String() string { return fmt.Sprintf("%.1f%% ± %.1f", 100*c.Mean, 100*c.SD) }

func signedPct(v, sd float64) string { return fmt.Sprintf("%+.1f ± %.1f points", 100*v, 100*sd) }

// Markdown renders the CAS section of a report.
func (c CAS) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Do the samples teach a classifier?\n\n")
	fmt.Fprintf(&b, "Fresh classifiers (the architecture of %s) trained for %d steps (batch %d, lr %g), scored on %d real test images; mean ± standard deviation over %d repeats (seed %d).\n\n",
		c.Architecture, c.Steps, c.Batch, c.LR, c.TestImages, c.Repeats, c.Seed)
	if c.NotHeldOut {
		fmt.Fprintf(&b, "**Warning: the test images are not held out**: the dataset (a folder) has no test split, so the classifiers are scored on images the real-only ones were trained on.\n\n")
	}
	fmt.Fprintf(&b, "| trained on | per class | test accuracy |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| generated only (CAS) | %d | %s |\n", c.Generated.Generated, c.Generated)
	fmt.Fprintf(&b, "| real only | %d | %s |\n\n", c.Real.Real, c.Real)
	fmt.Fprintf(&b, "CAS / real: **%.2f×**.\n\n", c.Ratio)
	if len(c.Augment) > 0 {
		fmt.Fprintf(&b, "| real per class | real only | real + %d generated per class | gain |\n|---|---|---|---|\n", c.Generated.Generated)
		for _, a := range c.Augment {
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", a.Real, a.Without, a.With, signedPct(a.Gain, a.GainSD))
		}
		b.WriteString("\n")
	}
	return b.String()
}
