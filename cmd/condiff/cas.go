package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/augment"
	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/eval"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/models"
)

// cmdCAS is `cas`: the Classification Accuracy Score and augmentation gain
// of an evaluation's samples, added to its report.
func cmdCAS(args []string) error {
	fs := cli.NewFlags("cas")
	dir := fs.String("eval", "", "evaluation directory written by condiff eval (report.json, samples/) (required)")
	samples := fs.String("samples", "", "sample directory (default: the evaluation's samples/)")
	var dopt data.Options
	cli.DataFlags(fs, &dopt, cli.DataSeed, "", "")
	subsets := fs.String("subsets", "10,50,100", "real images per class of the augmentation rows")
	var o augment.Options
	fs.IntVar(&o.Repeats, "repeats", 3, "trainings per cell, each with its own real images and initialisation")
	fs.IntVar(&o.Steps, "steps", 500, "optimisation steps of every training")
	fs.IntVar(&o.Batch, "batch", 64, "batch size")
	fs.Float64Var(&o.LR, "lr", 1e-2, "Adam learning rate")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the real subsets and initialisations")
	fs.Sets(map[string]string{
		"repeats": "cas.Repeats",
		"steps":   "cas.Steps,train.Steps", // each training refuses what cas passes on
		"batch":   "cas.Batch,train.Batch",
		"lr":      "cas.LR,train.LR",
		"subsets": "cas.Subsets",
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--eval is required")
	}
	var err error
	if o.Subsets, err = intList("subsets", *subsets); err != nil {
		return err
	}
	if err := o.Check(); err != nil {
		return fs.Flagged(err)
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--eval %s: not an evaluation directory", *dir)
	}
	unlock, err := fsutil.Lock(*dir, eval.LockName)
	if err != nil {
		return fmt.Errorf("--eval: %w", err)
	}
	defer unlock()
	reportPath := filepath.Join(*dir, "report.json")
	b, err := fsutil.ReadSmallFile(reportPath, eval.MaxReportBytes)
	if err != nil {
		return fmt.Errorf("--eval: %w", err)
	}
	var r eval.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("--eval: %s: %w", reportPath, err)
	}
	if r.Classifier == "" || r.Dataset == "" {
		return fmt.Errorf("--eval: %s names no classifier or dataset", reportPath)
	}
	if math.IsNaN(float64(r.Accuracy)) {
		return fmt.Errorf("--eval: %s evaluates an unconditional model, whose samples carry no labels to train on", reportPath)
	}
	in, err := infer.ReadInfo(r.Classifier)
	if err != nil {
		return fmt.Errorf("cas: the report's classifier: %w", err)
	}
	cfg, ok, err := models.FromContract(r.Classifier, in)
	if err != nil {
		return fmt.Errorf("cas: %w", err)
	}
	if !ok {
		return fmt.Errorf("cas: %s does not carry its architecture (condiff.config); export it with condiff export", r.Classifier)
	}
	o.Classifier, o.Architecture = cfg, r.Classifier
	if *samples == "" {
		*samples = filepath.Join(*dir, "samples")
	}
	s, _, err := eval.ReadSamples(*samples, cfg.Channels, cfg.ImageSize, len(cfg.ClassNames))
	if err != nil {
		return fmt.Errorf("--samples: %w", err)
	}
	dopt.Name, dopt.Size, dopt.Channels, dopt.Classes = r.Dataset, cfg.ImageSize, cfg.Channels, cfg.ClassNames
	trainSet, err := data.Load(dopt)
	if err != nil {
		return fmt.Errorf("cas: %w", fs.Flagged(err))
	}
	dopt.Test = true
	test, err := data.Load(dopt)
	if err != nil {
		return fmt.Errorf("cas: %w", fs.Flagged(err))
	}
	gen := &data.Set{Name: "samples", Images: s.X, Labels: s.Labels, N: len(s.Labels), C: cfg.Channels, Size: cfg.ImageSize, ClassNames: cfg.ClassNames}
	ctx, stop := cli.Interruptible()
	defer stop()
	o.Context, o.Progress = ctx, os.Stderr
	res, err := augment.Measure(gen, trainSet, test, o)
	if err != nil {
		return fs.Flagged(err)
	}
	r.CAS = res
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(reportPath, out); err != nil {
		return fmt.Errorf("cas: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(*dir, "report.md"), []byte(r.Markdown())); err != nil {
		return fmt.Errorf("cas: %w", err)
	}
	fmt.Printf("cas: CAS %s vs real %s (%.2f×)", res.Generated, res.Real, res.Ratio)
	for _, a := range res.Augment {
		fmt.Printf("; %d real/class %+.1f points", a.Real, 100*a.Gain)
	}
	fmt.Printf("\ncas: report %s\n", filepath.Join(*dir, "report.md"))
	return nil
}
