package condifftorch_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// TestRoundTrip: a Go run's export, started from by the torch trainer
// (--init, 0 steps) and exported again by condiff_torch.export, gives Go
// back every weight bit for bit (export.Import, what `condiff train
// --init` reads); the torch export follows the contract (infer.Inspect's
// "contract: yes", the Go backend runs it) and samples like the Go
// export's ε to float32 rounding.
func TestRoundTrip(t *testing.T) {
	py := torchPython(t)
	dir := t.TempDir()
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.Groups, m.BaseChannels, m.ChannelMult = contract.CBN, models.GroupNorm, 4, 8, []int{1, 2}
	sp, _ := diffusion.Default("linear", 1000)
	goRun := filepath.Join(dir, "go")
	if _, err := train.Run(train.Options{Out: goRun, Model: m, Data: data.Options{Name: "mnist", Size: 8, Channels: 1},
		TrainInfo: checkpoint.TrainInfo{Steps: 2, Batch: 4, LR: 1e-3, Seed: 5, Schedule: sp, CFGDrop: 0.1, EMADecay: 0.9, GradClip: 1}}); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a.onnx")
	if err := export.Export(goRun, a, export.Options{}); err != nil {
		t.Fatal(err)
	}
	torchRun, b := filepath.Join(dir, "torch"), filepath.Join(dir, "b.onnx")
	pyModule(t, py, "train", "--init", a, "--out", torchRun, "--steps", "0", "--cfg-drop", "0.1")
	pyModule(t, py, "export", torchRun, "--out", b)
	ia, err := export.Import(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := export.Import(b)
	if err != nil {
		t.Fatalf("the torch export does not import: %v", err)
	}
	if len(ia.Weights) != len(ib.Weights) || len(ia.Weights) < 20 {
		t.Fatalf("%d and %d parameters", len(ia.Weights), len(ib.Weights))
	}
	for name, wa := range ia.Weights {
		wb := ib.Weights[name]
		for i := range wa.Data {
			if math.Float32bits(wa.Data[i]) != math.Float32bits(wb.Data[i]) {
				t.Fatalf("%s[%d]: %g in Go's export, %g after torch", name, i, wa.Data[i], wb.Data[i])
			}
		}
	}
	if ia.Schedule != ib.Schedule {
		t.Errorf("schedule %+v, after torch %+v", ia.Schedule, ib.Schedule)
	}
	infertest.ORT(t)
	for _, backend := range []string{infer.BackendGo, infer.BackendORT} {
		sa, err := infer.Open(a, infer.Options{Backend: backend, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		sb, err := infer.Open(b, infer.Options{Backend: backend, Threads: 1})
		if err != nil {
			t.Fatalf("%s backend on the torch export: %v", backend, err)
		}
		n, d := 3, 64
		x := make([]float32, n*d)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)))
		}
		ts, ys := []int64{0, 500, 999}, []int64{1, 10, 7}
		ea, eb := make([]float32, n*d), make([]float32, n*d)
		if err := sa.Eps(x, ts, ys, ea); err != nil {
			t.Fatal(err)
		}
		if err := sb.Eps(x, ts, ys, eb); err != nil {
			t.Fatal(err)
		}
		worst, scale := 0.0, 0.0
		for i := range ea {
			worst = max(worst, math.Abs(float64(ea[i]-eb[i])))
			scale = max(scale, math.Abs(float64(ea[i])))
		}
		t.Logf("%s backend: max |ε(Go export) − ε(torch export)| = %.3g at scale %.3g", backend, worst, scale)
		if worst > 1e-4*max(1, scale) {
			t.Errorf("%s backend: the two exports differ by %g at scale %g", backend, worst, scale)
		}
		sa.Close()
		sb.Close()
	}
}
