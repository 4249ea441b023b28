package cli

import (
	"fmt"

	"github.com/condiff/condiff/eval"
)

// Compare is `compare`: put several eval reports side by side.
func Compare(args []string) error {
	fs := NewFlags("compare")
	out := fs.String("out", "", "directory for compare.md and compare.png (frontier.md and its plots with --frontier) (default: print only)")
	frontier := fs.Bool("frontier", false, "evaluations of one model at several samplers, steps and guidance weights: the quality–speed table and plots")
	if err := fs.FlagSet.Parse(args); err != nil { // the reports follow the flags
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: compare [--out DIR] [--frontier] [LABEL=]REPORT.json... (LABEL names the report's row)")
	}
	var table string
	var err error
	if *frontier {
		var reps []eval.Report
		if reps, err = eval.ReadReports(fs.Args()); err == nil {
			table, err = eval.Frontier(reps, *out)
		}
	} else {
		table, err = eval.Compare(fs.Args(), *out)
	}
	if err != nil {
		return err
	}
	fmt.Print(table)
	return nil
}

// Deploy is the commands that need no training stack, in help order.
var Deploy = []Command{
	{Name: "sample", Summary: "generate labelled images from an .onnx denoiser", Run: Sample},
	{Name: "inspect", Summary: "print an .onnx model's inputs, outputs, metadata and ops", Run: Inspect},
	{Name: "eval", Summary: "measure how well samples follow their labels", Run: Eval},
	{Name: "compare", Summary: "put several eval reports side by side", Run: Compare},
	{Name: "serve", Summary: "serve a model over HTTP: continuous batching across requests, a web page", Run: Serve},
}
