package eval_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/train"
)

// TestStudentBeatsTeacherDDIM2: on the synthetic set, a 2-step student
// distilled from its teacher's 4-step chain (one round of progressive
// distillation) against the teacher's own 2-step chains (DDIM, leading
// and trailing spacing, at the guidance the student learned), all judged
// by the protocol: an independent classifier's accuracy and FD / floor
// over disjoint real draws. The student must be ahead on FD / floor by
// more than the intervals' width and no worse on accuracy.
func TestStudentBeatsTeacherDDIM2(t *testing.T) {
	dir := t.TempDir()
	ds := data.Options{Name: "synthetic", Size: 16, Channels: 1, Seed: 11, PerClass: 200}
	m, c, sp := tinyModels()
	teacher, clf := trainAndExport(t, dir,
		train.Options{Model: m, Data: ds, TrainInfo: checkpoint.TrainInfo{Steps: 200, Batch: 32, LR: 2e-3, Seed: 3, Schedule: sp, CFGDrop: 0.15, EMADecay: 0.99, GradClip: 1}},
		train.Options{Model: c, Data: ds, TrainInfo: checkpoint.TrainInfo{Steps: 200, Batch: 32, LR: 2e-3, Seed: 4, EMADecay: 0.9, GradClip: 1}})

	const w = 1.0
	so := train.Options{Model: m, Data: ds, Out: filepath.Join(dir, "student-run"),
		TrainInfo: checkpoint.TrainInfo{Steps: 150, Batch: 32, LR: 1e-3, Seed: 5, Schedule: sp, EMADecay: 0.99, GradClip: 1, Init: teacher,
			Distill: &contract.Distilled{Sampler: diffusion.DDIMTrailing.Name(), Steps: 2, Guidance: w}}}
	if _, err := train.Run(so); err != nil {
		t.Fatal(err)
	}
	student := filepath.Join(dir, "student.onnx")
	if err := export.Export(so.Out, student, export.Options{}); err != nil {
		t.Fatal(err)
	}

	evaluate := func(name, model string, s diffusion.Sampler, guidance float64) *eval.Report {
		r, err := eval.Evaluate(context.Background(), eval.Options{Classifier: clf, Data: ds, Out: filepath.Join(dir, name), Seed: 1,
			Sample: infer.SampleOptions{Model: model, N: 50, Sampler: s, Steps: 2, Guidance: guidance, Batch: 50, Seed: 7,
				Session: infer.Options{Backend: infer.BackendGo, Threads: 2}}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-22s accuracy %.3f (real %.3f), FD / floor %.2f [%.2f, %.2f] over %d draws, recall %.2f",
			name, r.Accuracy, r.RealAccuracy, r.FDRatio.Value, r.FDRatio.Lo, r.FDRatio.Hi, r.RealDraws, r.Recall)
		if r.RealAccuracy < 0.9 || r.RealDraws < 4 {
			t.Fatalf("%s: classifier accuracy on real images %.2f, %d real draws", name, r.RealAccuracy, r.RealDraws)
		}
		return r
	}
	st := evaluate("student", student, diffusion.DDIMTrailing, 0)
	for _, s := range []diffusion.Sampler{diffusion.DDIM, diffusion.DDIMTrailing} {
		tr := evaluate(fmt.Sprintf("teacher-%s-2", s.Name()), teacher, s, w)
		if !(st.FDRatio.Hi < tr.FDRatio.Lo) {
			t.Errorf("FD / floor: student %.2f [%.2f, %.2f], the teacher's %s 2 steps %.2f [%.2f, %.2f]; want the student's interval below",
				st.FDRatio.Value, st.FDRatio.Lo, st.FDRatio.Hi, s.Name(), tr.FDRatio.Value, tr.FDRatio.Lo, tr.FDRatio.Hi)
		}
		if st.Accuracy < tr.Accuracy {
			t.Errorf("accuracy: student %.3f, the teacher's %s 2 steps %.3f", st.Accuracy, s.Name(), tr.Accuracy)
		}
	}
}
