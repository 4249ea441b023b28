package cli

import (
	"fmt"
	"os"

	"github.com/condiff/condiff/eval"
)

// Eval is `eval`: measure how well samples follow their labels.
func Eval(args []string) error {
	fs := NewFlags("eval")
	var o eval.Options
	fs.StringVar(&o.Sample.Model, "model", "", "denoiser .onnx to sample (default: the shipped "+DefaultModel+")")
	fs.StringVar(&o.Classifier, "classifier", "", "independent classifier .onnx (condiff train-classifier + export) (required)")
	ds := DataFlags(fs, &o.Data, DataName|DataClasses|DataSeed, "", "real dataset the classifier was trained on (its test split is the reference) (required)")
	fs.IntVar(&o.Sample.N, "n-per-class", 100, "samples per class (fewer make the distribution figures noise: README, Evaluate)")
	fs.StringVar(&o.Out, "out", "eval", "output directory (report.md, report.json, pictures)")
	fs.StringVar(&o.Samples, "samples", "", "evaluate an existing sample directory instead of sampling")
	fs.StringVar(&o.Run, "run", "", "training run directory, for the loss curve")
	fs.Uint64Var(&o.Seed, "eval-seed", 1, "seed of the real-image subsets and t-SNE")
	fs.Sets(map[string]string{
		"model":       "Model",
		"classifier":  "Classifier",
		"n-per-class": "N",
		"out":         "Out",
		"samples":     "Samples",
		"run":         "Run",
		"eval-seed":   "eval.Seed",
	})
	smp := samplerFlags(fs, &o.Sample)
	so := Session(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := smp.parse(); err != nil {
		return err
	}
	if o.Classifier == "" || o.Data.Name == "" {
		return fmt.Errorf("--classifier and --data are required")
	}
	ds.Finish()
	if o.Samples == "" {
		if err := withDefaultModel(&o.Sample.Model); err != nil {
			return err
		}
		if _, err := smp.resolve(o.Sample.Model); err != nil {
			return err
		}
	}
	o.Sample.Session, o.Sample.Progress = *so, os.Stderr
	ctx, stop := Interruptible()
	defer stop()
	r, err := eval.Evaluate(ctx, o)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted: %s/report.json and report.md are as they were (the samples written so far are listed in their manifest)", o.Out)
	}
	if err != nil {
		return fs.Flagged(err)
	}
	fmt.Printf("eval: accuracy %s (real %s), IS %.2f (real %.2f), FD %.3f (real floor %.3f), t-SNE 5-NN %s\n",
		eval.Percent(r.Accuracy), eval.Percent(r.RealAccuracy), r.IS, r.RealIS, r.FD, r.RealFD, eval.Percent(r.KNN))
	if r.RealDraws > 0 {
		fmt.Printf("eval: over %d real draws: FD %.3f ± %.3f, floor %.3f ± %.3f, FD/floor %.2f× [%.2f, %.2f]; KID %.2g ± %.2g (real %.2g ± %.2g); precision %s, recall %s (real %s, %s)\n",
			r.RealDraws, r.FDDraws.Mean, r.FDDraws.SD, r.FloorDraws.Mean, r.FloorDraws.SD, r.FDRatio.Value, r.FDRatio.Lo, r.FDRatio.Hi,
			r.KID.Mean, r.KID.SD, r.RealKID.Mean, r.RealKID.SD, eval.Percent(r.Precision), eval.Percent(r.Recall), eval.Percent(r.RealPrecision), eval.Percent(r.RealRecall))
	}
	if !r.Complete {
		fmt.Fprintf(os.Stderr, "eval: warning: the sampling run did not finish; the figures are for its %d images\n", r.Samples)
	}
	fmt.Printf("eval: report %s/report.md\n", o.Out)
	return nil
}
