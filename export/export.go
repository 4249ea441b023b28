// Package export turns a training run into one self-describing .onnx file:
// the network lowered by graphs/, the weights (EMA by default) as
// initializers, and the metadata of the model contract.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/internal/onnxwire"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
)

// Options configure an export.
type Options struct {
	Raw bool // export the raw weights instead of their EMA
}

// Metadata is the model-contract metadata of a checkpoint's model: the
// network's description and config, the schedule, the step and how it was
// trained.
func Metadata(ck *checkpoint.Checkpoint) map[string]string {
	in := ck.Config.Contract()
	in.Step = ck.Step
	in.Train, _ = json.Marshal(ck.Info)
	if ck.Config.Kind == contract.Denoiser {
		in.Schedule, in.Prediction = ck.Info.Schedule, contract.PredictionEpsilon
		if ck.Info.Distill != nil {
			in.Prediction, in.Distilled = contract.PredictionV, ck.Info.Distill // a student predicts v
		}
	}
	return in.Metadata()
}

// Export writes the run's model to out atomically.
func Export(run, out string, o Options) error {
	ck, err := checkpoint.Load(run)
	if err != nil {
		if errors.Is(err, checkpoint.ErrNoCheckpoint) {
			return field.Errorf("export", "Run", run, "no checkpoint (train first, or point at a run directory)")
		}
		return fmt.Errorf("export: %w", err)
	}
	weights := ck.EMA
	if o.Raw {
		weights = ck.Params
	}
	m, err := graphs.Build(ck.Config, weights, ck.Stats, ck.Info.Schedule.T, Metadata(ck))
	if err != nil {
		return fmt.Errorf("export: %s: %w", run, err)
	}
	b := onnxwire.Encode(m)
	if err := notInput(run, out); err != nil {
		return err
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return field.Errorf("export", "Out", out, "is a directory; give a file name such as model.onnx")
	}
	if err := fsutil.WriteFileAtomic(out, b); err != nil {
		return field.Errorf("export", "Out", out, "%v", err)
	}
	return nil
}

// notInput refuses an output path that is the run's checkpoint or log.
func notInput(run, out string) error {
	ckFile, log := run, ""
	if st, err := os.Stat(run); err == nil && st.IsDir() {
		ckFile, log = filepath.Join(run, checkpoint.File), filepath.Join(run, checkpoint.LogFile)
	}
	outAbs, _ := filepath.Abs(out)
	for _, in := range []string{ckFile, log} {
		if in == "" {
			continue
		}
		inAbs, _ := filepath.Abs(in)
		a, errA := os.Stat(out)
		b, errB := os.Stat(in)
		if inAbs == outAbs || errA == nil && errB == nil && os.SameFile(a, b) {
			return field.Errorf("export", "Out", out, "is the run's own %s; give a new file name such as model.onnx", filepath.Base(in))
		}
	}
	return nil
}
