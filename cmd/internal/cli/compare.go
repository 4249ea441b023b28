package cli

import (
	"flag"
	"fmt"

	"github.com/condiff/condiff/eval"
)

// Compare is `compare`: put several eval reports side by side.
func Compare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	out := fs.String("out", "", "directory for compare.md and compare.png (default: print only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: compare [--out DIR] REPORT.json...")
	}
	table, err := eval.Compare(fs.Args(), *out)
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
}
