package infer

import (
	"fmt"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/internal/field"
)

// ClassChoice picks the classes to sample: every class, N images each (the
// zero value), or only class Index when One is set.
type ClassChoice struct {
	One   bool
	Index int
}

// OneClass chooses class i only.
func OneClass(i int) ClassChoice { return ClassChoice{One: true, Index: i} }

func (c ClassChoice) String() string {
	if !c.One {
		return "all"
	}
	return fmt.Sprint(c.Index)
}

// Shard is part K of N of a sampling run: the images whose index ≡ K
// (mod N). The zero value is the whole run.
type Shard struct{ K, N int }

// Whole reports whether s is the whole run.
func (s Shard) Whole() bool { return s.N <= 1 }

// String is "K/N", or "" for the whole run.
func (s Shard) String() string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// ParseShard parses "k/n" (0 <= k < n); "" is the whole run.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	var k, n int
	if _, err := fmt.Sscanf(s, "%d/%d", &k, &n); err != nil || n < 1 || k < 0 || k >= n || fmt.Sprintf("%d/%d", k, n) != s {
		return Shard{}, field.Errorf("infer", "Shard", s, "not k/n with 0 <= k < n")
	}
	return Shard{k, n}, nil
}

func (s Shard) check() error {
	if s.N == 0 && s.K == 0 {
		return nil
	}
	if s.N < 1 || s.K < 0 || s.K >= s.N {
		return field.Errorf("infer", "Shard", fmt.Sprintf("%d/%d", s.K, s.N), "not k/n with 0 <= k < n")
	}
	return nil
}

// Plan resolves classes and shards into the images to make: global indices
// and their labels. With every class on a conditional model, image i has
// class i / n; otherwise every image has the chosen class (0 for an
// unconditional model).
func Plan(info contract.Info, class ClassChoice, n int, shard Shard) (indices, labels []int, err error) {
	if n <= 0 {
		return nil, nil, field.Errorf("infer", "N", n, "must be > 0")
	}
	if n > MaxImages {
		return nil, nil, field.Errorf("infer", "N", n, "over %d images", MaxImages)
	}
	if err := shard.check(); err != nil {
		return nil, nil, err
	}
	var all []int
	switch {
	case !info.Conditional():
		if class.One {
			return nil, nil, field.Errorf("infer", "Class", class.Index, "the model is unconditional (variant %s) and has no classes", info.Variant)
		}
		all = make([]int, n)
	case !class.One:
		if int64(info.NumClasses)*int64(n) > MaxImages {
			return nil, nil, field.Errorf("infer", "N", n, "%d per class × %d classes is over %d images", n, info.NumClasses, MaxImages)
		}
		for c := 0; c < info.NumClasses; c++ {
			for i := 0; i < n; i++ {
				all = append(all, c)
			}
		}
	default:
		if class.Index < 0 || class.Index >= info.NumClasses {
			return nil, nil, field.Errorf("infer", "Class", class.Index, "out of 0..%d", info.NumClasses-1)
		}
		all = make([]int, n)
		for i := range all {
			all[i] = class.Index
		}
	}
	of := max(1, shard.N)
	for i, c := range all {
		if i%of == shard.K {
			indices = append(indices, i)
			labels = append(labels, c)
		}
	}
	return indices, labels, nil
}

// MaxImages bounds the images one sampling run plans.
const MaxImages = 10_000_000
