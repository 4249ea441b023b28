// Package augment measures whether generated images are worth training
// on: the Classification Accuracy Score (a classifier trained on generated
// images only, scored on real test images, beside one trained on as many
// real images) and the augmentation gain (a classifier trained on a few
// real images per class, with and without the generated ones). Every cell
// trains a fresh classifier with condiff's own training loop, so the
// package belongs to the training stack (condiff, not condiff-run).
package augment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/progress"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// Options configure a measurement.
type Options struct {
	Classifier   models.Config // architecture trained in every cell (its weights are not used)
	Architecture string        // where it came from, for the report
	Subsets      []int         // real images per class of the augmentation rows
	Repeats      int
	Steps        int // optimisation steps of every training
	Batch        int
	LR           float64
	Seed         uint64
	Progress     io.Writer
	Context      context.Context
}

func bad(name string, v any, format string, a ...any) error {
	return field.Errorf("cas", name, v, format, a...)
}

// Check refuses options no measurement can run with, before any data is
// loaded; Measure calls it too.
func (o Options) Check() error {
	if o.Repeats < 1 {
		return bad("Repeats", o.Repeats, "must be >= 1")
	}
	if o.Steps < 1 {
		return bad("Steps", o.Steps, "must be >= 1")
	}
	if o.Batch < 2 || o.Batch > train.MaxBatch {
		return bad("Batch", o.Batch, "out of 2..%d (batch statistics need two samples)", train.MaxBatch)
	}
	if !(o.LR > 0 && o.LR < 1e3) {
		return bad("LR", o.LR, "out of (0, 1000)")
	}
	for _, s := range o.Subsets {
		if s < 1 {
			return bad("Subsets", s, "must be >= 1")
		}
	}
	return nil
}

// Measure trains the classifiers and scores them on test. gen holds the
// generated images, trainSet the real training images to draw from; the
// three must share classes and image shape.
func Measure(gen, trainSet, test *data.Set, o Options) (*eval.CAS, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Classifier.Kind != contract.Classifier {
		return nil, bad("Classifier", o.Architecture, "is a %s, not a classifier", o.Classifier.Kind)
	}
	for _, s := range []*data.Set{trainSet, test} {
		if !slices.Equal(s.ClassNames, gen.ClassNames) || s.C != gen.C || s.Size != gen.Size {
			return nil, fmt.Errorf("cas: %s (%d classes, %d×%d×%d) does not match the samples (%d classes, %d×%d×%d)",
				s.Name, len(s.ClassNames), s.C, s.Size, s.Size, len(gen.ClassNames), gen.C, gen.Size, gen.Size)
		}
	}
	K := len(gen.ClassNames)
	genIdx, realIdx := byClass(gen, K), byClass(trainSet, K)
	n := len(gen.Labels)
	for k := range K {
		if len(genIdx[k]) == 0 {
			return nil, fmt.Errorf("cas: the samples have no image of class %s", gen.ClassNames[k])
		}
		n = min(n, len(genIdx[k]))
	}
	need := n
	for _, s := range o.Subsets {
		need = max(need, s)
	}
	for k := range K {
		if len(realIdx[k]) < need {
			return nil, fmt.Errorf("cas: %s has %d images of class %s; %d are needed", trainSet.Name, len(realIdx[k]), trainSet.ClassNames[k], need)
		}
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	tmp, err := os.MkdirTemp("", "condiff-cas-")
	if err != nil {
		return nil, fmt.Errorf("cas: %w", err)
	}
	defer os.RemoveAll(tmp)

	r := &eval.CAS{Architecture: o.Architecture, TestImages: test.N, NotHeldOut: test.NotHeldOut, Steps: o.Steps, Batch: o.Batch, LR: o.LR, Repeats: o.Repeats, Seed: o.Seed}
	r.Generated = eval.CASCell{Generated: n}
	r.Real = eval.CASCell{Real: n}
	for _, s := range o.Subsets {
		r.Augment = append(r.Augment, eval.AugmentRow{Real: s, Without: eval.CASCell{Real: s}, With: eval.CASCell{Real: s, Generated: n}})
	}
	cells := 2 + 2*len(o.Subsets)
	bar := progress.New(o.Progress, cells*o.Repeats, "cas")
	defer bar.Close()
	run := 0
	// score trains on the generated images genIdx and the real images
	// realIdx with repeat rep's seed and adds the test accuracy to c.
	score := func(c *eval.CASCell, rep int, genIdx, realIdx []int) error {
		if ctx.Err() != nil {
			return fmt.Errorf("cas: interrupted; the report is unchanged (cas does not resume: run it again)")
		}
		ds := assemble(gen, trainSet, genIdx, realIdx)
		run++
		dir := fmt.Sprintf("%s/%d", tmp, run)
		ck, err := train.Run(train.Options{Out: dir, Set: ds, Data: data.Options{Name: ds.Name}, Model: o.Classifier, Context: ctx,
			TrainInfo: checkpoint.TrainInfo{Steps: o.Steps, Batch: o.Batch, LR: o.LR, Seed: o.Seed + uint64(rep), EMADecay: 0.99, GradClip: 1}})
		if errors.Is(err, train.ErrInterrupted) || ctx.Err() != nil {
			// Its checkpoint is in a temporary folder about to go: say
			// only what the user can act on.
			return fmt.Errorf("cas: interrupted; the report is unchanged (cas does not resume: run it again)")
		}
		if err != nil {
			return fmt.Errorf("cas: %w", err)
		}
		os.RemoveAll(dir)
		logits, err := train.ClassifierLogits(ck.Config, ck.EMA, ck.Stats, test.Images, 250)
		if err != nil {
			return fmt.Errorf("cas: %w", err)
		}
		acc, _ := eval.Accuracy(eval.Argmax(eval.Softmax(logits, K), K), test.Labels, K)
		c.Accuracy = append(c.Accuracy, acc)
		bar.Add(1)
		return nil
	}
	for rep := range o.Repeats {
		rng := rand.New(rand.NewPCG(o.Seed, uint64(rep)))
		genAll := take(genIdx, n, rng)
		// One shuffled order of each class's real images per repeat: every
		// real subset of the repeat is a prefix of it, so the smaller
		// subsets are inside the larger ones.
		order := make([][]int, K)
		for k := range K {
			order[k] = slices.Clone(realIdx[k])
			rng.Shuffle(len(order[k]), func(i, j int) { order[k][i], order[k][j] = order[k][j], order[k][i] })
		}
		prefix := func(s int) []int {
			var out []int
			for k := range K {
				out = append(out, order[k][:s]...)
			}
			return out
		}
		if err := score(&r.Generated, rep, genAll, nil); err != nil {
			return nil, err
		}
		if err := score(&r.Real, rep, nil, prefix(n)); err != nil {
			return nil, err
		}
		for i := range r.Augment {
			a := &r.Augment[i]
			if a.Real == n { // the same recipe, real images and seed as the real-only cell
				a.Without.Accuracy = append(a.Without.Accuracy, r.Real.Accuracy[rep])
				bar.Add(1)
			} else if err := score(&a.Without, rep, nil, prefix(a.Real)); err != nil {
				return nil, err
			}
			if err := score(&a.With, rep, genAll, prefix(a.Real)); err != nil {
				return nil, err
			}
		}
	}
	bar.Finish()
	r.Generated.Summarise()
	r.Real.Summarise()
	r.Ratio = r.Generated.Mean / r.Real.Mean
	for i := range r.Augment {
		a := &r.Augment[i]
		a.Without.Summarise()
		a.With.Summarise()
		d := make([]float64, o.Repeats)
		for j := range d {
			d[j] = a.With.Accuracy[j] - a.Without.Accuracy[j]
		}
		a.Gain, a.GainSD = eval.MeanSD(d)
	}
	return r, nil
}

// byClass lists the indices of each class's images.
func byClass(s *data.Set, K int) [][]int {
	idx := make([][]int, K)
	for i, l := range s.Labels {
		if l >= 0 && l < K {
			idx[l] = append(idx[l], i)
		}
	}
	return idx
}

// take draws n indices of each class without replacement.
func take(idx [][]int, n int, rng *rand.Rand) []int {
	var out []int
	for _, c := range idx {
		p := rng.Perm(len(c))
		for _, j := range p[:n] {
			out = append(out, c[j])
		}
	}
	return out
}

// assemble builds a training set from generated images genIdx and real
// images realIdx.
func assemble(gen, real *data.Set, genIdx, realIdx []int) *data.Set {
	D := gen.C * gen.Size * gen.Size
	s := &data.Set{Name: real.Name, C: gen.C, Size: gen.Size, ClassNames: gen.ClassNames, N: len(genIdx) + len(realIdx)}
	s.Images = make([]float32, 0, s.N*D)
	for _, part := range []struct {
		set *data.Set
		idx []int
	}{{gen, genIdx}, {real, realIdx}} {
		for _, i := range part.idx {
			s.Images = append(s.Images, part.set.Image(i)...)
			s.Labels = append(s.Labels, part.set.Labels[i])
		}
	}
	return s
}
