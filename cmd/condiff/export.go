package main

import (
	"fmt"
	"os"

	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/export"
)

func cmdExport(args []string) error {
	fs := cli.NewFlags("export")
	run := fs.String("run", "", "run directory (or checkpoint file) to export (required)")
	out := fs.String("out", "", "output .onnx file (required)")
	ema := fs.Bool("ema", true, "export the EMA weights (false: the raw weights)")
	fs.Sets(map[string]string{
		"run": "Run",
		"out": "Out",
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" || *out == "" {
		return fmt.Errorf("--run and --out are required")
	}
	if err := export.Export(*run, *out, export.Options{Raw: !*ema}); err != nil {
		return fs.Flagged(err)
	}
	fmt.Fprintf(os.Stderr, "export: wrote %s\n", *out)
	return nil
}
