package augment

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/models"
)

// synthetic loads a 16×16 synthetic split; seed picks an independent draw.
func synthetic(t *testing.T, seed uint64, per int, test bool) *data.Set {
	t.Helper()
	s, err := data.Load(data.Options{Name: "synthetic", Size: 16, Channels: 1, Seed: seed, PerClass: per, Test: test})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func options() Options {
	c := models.DefaultClassifier()
	c.BaseChannels, c.Groups = 8, 4
	return Options{Classifier: c, Architecture: "test", Subsets: []int{4, 40}, Repeats: 2, Steps: 120, Batch: 32, LR: 2e-3, Seed: 3}
}

// The known answers: "generated" images that are real images from an
// independent draw score like real images; the same images with their
// labels shuffled teach nothing (chance, 1/4); with the labels of two of the
// four classes swapped, those two classes are learned backwards (2/4).
func TestKnownAnswers(t *testing.T) {
	trainSet, test := synthetic(t, 1, 200, false), synthetic(t, 1, 100, true)
	gen := synthetic(t, 2, 40, false)
	o := options()

	r, err := Measure(gen, trainSet, test, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("real as samples: CAS %s, real %s, augment %+.3f", r.Generated, r.Real, r.Augment[0].Gain)
	// Both learn the shapes (≥ 80%); the ratio within 10%: two
	// draws of 40 images per class and two initialisations.
	if r.Real.Mean < 0.8 || math.Abs(r.Ratio-1) > 0.1 {
		t.Errorf("real images as samples: CAS %.3f, real %.3f, ratio %.3f; want ≈ 1", r.Generated.Mean, r.Real.Mean, r.Ratio)
	}
	if r.Generated.Generated != 40 || r.Real.Real != 40 || len(r.Generated.Accuracy) != 2 {
		t.Errorf("cells: %+v %+v", r.Generated, r.Real)
	}
	// 40 real per class is the real-only cell's recipe: the same figures.
	if b := r.Augment[1]; b.Without.Accuracy[0] != r.Real.Accuracy[0] || b.Without.Accuracy[1] != r.Real.Accuracy[1] {
		t.Errorf("without at 40 per class %v, real-only %v", b.Without.Accuracy, r.Real.Accuracy)
	}
	a := r.Augment[0]
	if a.Real != 4 || a.With.Generated != 40 || a.Without.Generated != 0 {
		t.Errorf("augment row: %+v", a)
	}
	want := (a.With.Accuracy[0] - a.Without.Accuracy[0] + a.With.Accuracy[1] - a.Without.Accuracy[1]) / 2
	if math.Abs(a.Gain-want) > 1e-12 {
		t.Errorf("gain %v, paired mean %v", a.Gain, want)
	}

	o.Subsets = nil
	shuffled := *gen
	shuffled.Labels = append([]int(nil), gen.Labels...)
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled.Labels), func(i, j int) {
		shuffled.Labels[i], shuffled.Labels[j] = shuffled.Labels[j], shuffled.Labels[i]
	})
	r, err = Measure(&shuffled, trainSet, test, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shuffled: CAS %s", r.Generated)
	// Chance is 0.25; a classifier fitting noise labels lands anywhere
	// near it (it may favour some classes), far from the 0.9 above.
	if math.Abs(r.Generated.Mean-0.25) > 0.15 {
		t.Errorf("shuffled labels: CAS %.3f, want ≈ 0.25 (chance)", r.Generated.Mean)
	}

	swapped := *gen
	swapped.Labels = append([]int(nil), gen.Labels...)
	for i, l := range swapped.Labels {
		switch l {
		case 0:
			swapped.Labels[i] = 1
		case 1:
			swapped.Labels[i] = 0
		}
	}
	r, err = Measure(&swapped, trainSet, test, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swapped: CAS %s", r.Generated)
	if math.Abs(r.Generated.Mean-0.5) > 0.15 {
		t.Errorf("two classes swapped: CAS %.3f, want ≈ 0.5", r.Generated.Mean)
	}
}

func TestRefusals(t *testing.T) {
	trainSet, test := synthetic(t, 1, 20, false), synthetic(t, 1, 10, true)
	gen := synthetic(t, 2, 10, false)
	for _, tc := range []struct {
		name string
		mod  func(*Options, **data.Set)
		want string
	}{
		{"repeats", func(o *Options, _ **data.Set) { o.Repeats = 0 }, "Repeats"},
		{"steps", func(o *Options, _ **data.Set) { o.Steps = 0 }, "Steps"},
		{"subset", func(o *Options, _ **data.Set) { o.Subsets = []int{0} }, "Subsets"},
		{"too few real", func(o *Options, _ **data.Set) { o.Subsets = []int{21} }, "21 are needed"},
		{"not a classifier", func(o *Options, _ **data.Set) { o.Classifier = models.DefaultDenoiser() }, "not a classifier"},
		{"other classes", func(_ *Options, g **data.Set) {
			s := **g
			s.ClassNames = []string{"a", "b", "c", "d"}
			*g = &s
		}, "does not match the samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, g := options(), gen
			tc.mod(&o, &g)
			_, err := Measure(g, trainSet, test, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
