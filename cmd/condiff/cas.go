package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/augment"
	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/data"
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
		"eval":    "cas.Eval",
		"samples": "cas.Samples",
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
	ctx, stop := cli.Interruptible()
	defer stop()
	o.Context, o.Progress = ctx, os.Stderr
	r, err := augment.AddToEval(augment.Eval{Dir: *dir, Samples: *samples, Data: dopt, Options: o})
	if err != nil {
		return fs.Flagged(err)
	}
	res := r.CAS
	fmt.Printf("cas: CAS %s vs real %s (%.2f×)", res.Generated, res.Real, res.Ratio)
	for _, a := range res.Augment {
		fmt.Printf("; %d real/class %+.1f points", a.Real, 100*a.Gain)
	}
	fmt.Printf("\ncas: report %s\n", filepath.Join(*dir, "report.md"))
	return nil
}
