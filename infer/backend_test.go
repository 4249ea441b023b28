package infer_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
)

// TestGoBackendParity: on every shipped model and the PyTorch export, the
// Go backend's outputs match ONNX Runtime's on the same inputs within
// 1e-4 of the output's scale (both compute in float32; they sum and round
// in different orders), at batch 5 and 1.
func TestGoBackendParity(t *testing.T) {
	infertest.ORT(t)
	for _, p := range []string{"../assets/pretrained/mnist-cbn.onnx", "../assets/pretrained/fashion-cbn.onnx",
		"../assets/pretrained/mnist-clf.onnx", "../assets/pretrained/fashion-clf.onnx", torchModel} {
		ort, err := infer.Open(p, infer.Options{Backend: infer.BackendORT, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		g, err := infer.Open(p, infer.Options{Backend: infer.BackendGo, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if g.Backend != infer.BackendGo || ort.Backend != infer.BackendORT {
			t.Fatalf("%s: backends %s and %s", p, ort.Backend, g.Backend)
		}
		in := ort.Info
		d := in.Channels * in.ImageSize * in.ImageSize
		r := rand.New(rand.NewPCG(11, 12))
		for _, n := range []int{5, 1} {
			x := make([]float32, n*d)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			var want, got []float32
			if in.Kind == "classifier" {
				l1, f1, _, err := ort.Classify(x, n)
				if err != nil {
					t.Fatal(err)
				}
				l2, f2, _, err := g.Classify(x, n)
				if err != nil {
					t.Fatal(err)
				}
				want, got = append(l1, f1...), append(l2, f2...)
			} else {
				ts, ys := make([]int64, n), make([]int64, n)
				for i := range ts {
					ts[i], ys[i] = int64(r.IntN(in.Schedule.T)), int64(r.IntN(in.NumClasses))
				}
				want, got = make([]float32, n*d), make([]float32, n*d)
				if err := ort.Eps(x, ts, ys, want); err != nil {
					t.Fatal(err)
				}
				if err := g.Eps(x, ts, ys, got); err != nil {
					t.Fatal(err)
				}
			}
			var scale, diff float64
			for i := range want {
				scale = math.Max(scale, math.Abs(float64(want[i])))
				diff = math.Max(diff, math.Abs(float64(want[i]-got[i])))
			}
			if diff > 1e-4*scale {
				t.Errorf("%s batch %d: max |Go − ORT| = %.3g, over 1e-4 of the output's scale %.3g", p, n, diff, scale)
			}
			t.Logf("%s batch %d: max |Go − ORT| = %.2g (scale %.3g)", filepath.Base(p), n, diff, scale)
		}
		ort.Close()
		g.Close()
	}
}

// TestGoBackendSamples: DDIM samples of the shipped model (guided) from the
// two backends differ by at most one grey level per pixel.
func TestGoBackendSamples(t *testing.T) {
	infertest.ORT(t)
	o := infer.SampleOptions{Model: "../assets/pretrained/mnist-cbn.onnx", Class: infer.OneClass(7), N: 3, Seed: 9,
		Sampler: diffusion.DDIM, Steps: 6, Guidance: 1, Batch: 4}
	o.Session.Backend, o.Out = infer.BackendORT, t.TempDir()
	dirORT := o.Out
	mo, err := sample(t, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Session.Backend, o.Out = infer.BackendGo, t.TempDir()
	mg, err := sample(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if mo.Backend != infer.BackendORT || mg.Backend != infer.BackendGo {
		t.Errorf("manifests record backends %q and %q", mo.Backend, mg.Backend)
	}
	po, pg := readPixels(t, dirORT, mo), readPixels(t, o.Out, mg)
	for i, a := range po {
		for k := range a {
			if d := int(a[k]) - int(pg[i][k]); d > 1 || d < -1 {
				t.Fatalf("image %d pixel %d: ONNX Runtime %d, Go %d", i, k, a[k], pg[i][k])
			}
		}
	}
}

// TestAutoBackend: auto takes ONNX Runtime where its library loads, and
// the Go backend (saying why) where it does not; CUDA is refused on Go.
func TestAutoBackend(t *testing.T) {
	var notes []string
	o := infer.Options{Lib: filepath.Join(t.TempDir(), "libonnxruntime.so.1"), Note: func(s string) { notes = append(notes, s) }}
	s, err := infer.Open("../assets/pretrained/mnist-cbn.onnx", o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend != infer.BackendGo || len(notes) != 1 || !strings.Contains(notes[0], "Go backend (ONNX Runtime did not load") {
		t.Errorf("auto without a library: backend %s, notes %q", s.Backend, notes)
	}
	if _, err := infer.Open("../assets/pretrained/mnist-cbn.onnx", infer.Options{Backend: infer.BackendGo, Device: "cuda"}); err == nil || !strings.Contains(err.Error(), "Device") {
		t.Errorf("--backend go --device cuda: err = %v", err)
	}
	if _, err := infer.Open("../assets/pretrained/mnist-cbn.onnx", infer.Options{Backend: "tpu"}); err == nil || !strings.Contains(err.Error(), "Backend") {
		t.Errorf("--backend tpu: err = %v", err)
	}
}
