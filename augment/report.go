package augment

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/models"
)

// Eval is what AddToEval measures: an evaluation directory (eval's
// report.json, and samples/ unless Samples names others), the data
// options of the real images (their name, size and classes come from the
// report's classifier), and the measurement's options (its Classifier and
// Architecture come from there too).
type Eval struct {
	Dir     string
	Samples string // default Dir/samples
	Data    data.Options
	Options Options
}

// AddToEval measures CAS and the augmentation gain of an evaluation's
// samples, trains every classifier with the architecture of the report's
// own classifier, and writes the result into the report (report.json and
// report.md, atomically, under the evaluation's lock). It returns the
// updated report.
func AddToEval(e Eval) (*eval.Report, error) {
	o := e.Options
	if err := o.Check(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(e.Dir); err != nil || !st.IsDir() {
		return nil, bad("Eval", e.Dir, "not an evaluation directory")
	}
	unlock, err := fsutil.Lock(e.Dir, eval.LockName)
	if err != nil {
		return nil, bad("Eval", e.Dir, "%v", err)
	}
	defer unlock()
	reportPath := filepath.Join(e.Dir, "report.json")
	r, err := eval.ReadReport(reportPath)
	if err != nil {
		return nil, err
	}
	if r.Classifier == "" || r.Dataset == "" {
		return nil, bad("Eval", e.Dir, "%s names no classifier or dataset", reportPath)
	}
	if math.IsNaN(float64(r.Accuracy)) {
		return nil, bad("Eval", e.Dir, "%s evaluates an unconditional model, whose samples carry no labels to train on", reportPath)
	}
	in, err := infer.ReadInfo(r.Classifier)
	if err != nil {
		return nil, fmt.Errorf("cas: the report's classifier: %w", err)
	}
	cfg, ok, err := models.FromContract(r.Classifier, in)
	if err != nil {
		return nil, fmt.Errorf("cas: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("cas: %s does not carry its architecture (condiff.config); export it with condiff export", r.Classifier)
	}
	o.Classifier, o.Architecture = cfg, r.Classifier
	samples := e.Samples
	if samples == "" {
		samples = filepath.Join(e.Dir, "samples")
	}
	s, _, err := eval.ReadSamples(samples, cfg.Channels, cfg.ImageSize, len(cfg.ClassNames))
	if err != nil {
		return nil, bad("Samples", samples, "%v", err)
	}
	dopt := e.Data
	dopt.Name, dopt.Size, dopt.Channels, dopt.Classes = r.Dataset, cfg.ImageSize, cfg.Channels, cfg.ClassNames
	trainSet, err := data.Load(dopt)
	if err != nil {
		return nil, err
	}
	dopt.Test = true
	test, err := data.Load(dopt)
	if err != nil {
		return nil, err
	}
	gen := &data.Set{Name: "samples", Images: s.X, Labels: s.Labels, N: len(s.Labels), C: cfg.Channels, Size: cfg.ImageSize, ClassNames: cfg.ClassNames}
	res, err := Measure(gen, trainSet, test, o)
	if err != nil {
		return nil, err
	}
	r.CAS = res
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(reportPath, out); err != nil {
		return nil, fmt.Errorf("cas: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(e.Dir, "report.md"), []byte(r.Markdown())); err != nil {
		return nil, fmt.Errorf("cas: %w", err)
	}
	return r, nil
}
