// Package infertest gives tests the ONNX Runtime library: loaded, or the
// test skipped (failed under CI, testenv.Missing).
package infertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/testenv"
)

// ORT loads the ONNX Runtime library or skips (fails under CI).
func ORT(t testing.TB) {
	t.Helper()
	if _, err := infer.LibraryPath(""); err != nil {
		testenv.Missing(t, "the ONNX Runtime library")
	}
	if err := infer.Init(""); err != nil {
		t.Fatal(err)
	}
}

// SampleByDefault samples n images (labels 0, 1, … in turn) from the model
// at path, open in s, as its own defaults say (ModelDefaults, nothing
// given), and fails t unless the defaults resolve and check and every
// pixel is in [−1, 1]. It returns the sampling they resolved to and the
// number of images made; s.Calls counts the denoiser calls.
func SampleByDefault(t testing.TB, s *infer.Session, path string, n int) (infer.Sampling, int) {
	t.Helper()
	d, err := infer.ModelDefaults(path, s.Info)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := d.Resolve(infer.Given{}, s.Info)
	if err == nil {
		err = sm.Check(s.Info)
	}
	if err != nil {
		t.Fatalf("%s: sampling by default: %v", path, err)
	}
	sch, err := s.Info.Schedule.Build()
	if err != nil {
		t.Fatal(err)
	}
	idx, labels := make([]int, n), make([]int, n)
	for i := range idx {
		idx[i], labels[i] = i, i%s.Info.NumClasses
	}
	req := diffusion.Request{Sampler: sm.Sampler, Steps: sm.Steps, Eta: sm.Eta, Guidance: sm.Guidance, Interval: sm.Interval,
		Null: s.Info.Null(), Seed: 1, Batch: n, Values: s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize, Indices: idx, Labels: labels}
	images := 0
	err = diffusion.Sample(context.Background(), s, sch, req, nil, func(ix []int, x []float32) error {
		for _, v := range x {
			if !(v >= -1 && v <= 1) {
				return fmt.Errorf("pixel %v", v)
			}
		}
		images += len(ix)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: sampling by default: %v", path, err)
	}
	return sm, images
}
