package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
)

// defaultModel is the pretrained model shipped in the repository, used when
// --model is omitted. $CONDIFF_MODEL overrides it.
const defaultModel = "models/pretrained/mnist-cbn.onnx"

// findDefaultModel looks for the shipped model beside the working directory
// and beside the executable (bin/condiff -> ../models/...).
func findDefaultModel() (string, error) {
	if p := os.Getenv("CONDIFF_MODEL"); p != "" {
		return p, nil
	}
	cands := []string{defaultModel}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		cands = append(cands, filepath.Join(dir, "..", defaultModel), filepath.Join(dir, defaultModel))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("--model not given and the shipped model %s was not found (run from the repository root, or set CONDIFF_MODEL)", defaultModel)
}

// withDefaultModel fills an empty --model with the shipped model.
func withDefaultModel(model *string) error {
	if *model != "" {
		return nil
	}
	p, err := findDefaultModel()
	*model = p
	return err
}

// interruptible is a context cancelled by Ctrl-C or SIGTERM.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func sessionFlags(fs *flag.FlagSet) *infer.Options {
	o := &infer.Options{}
	fs.StringVar(&o.Device, "device", "cpu", "execution provider: cpu, cuda, cuda:ID or auto (CUDA if it loads, else CPU)")
	fs.IntVar(&o.Threads, "threads", 0, "intra-op threads (0: all CPUs)")
	fs.StringVar(&o.Lib, "ort-lib", "", "ONNX Runtime shared library (default: $CONDIFF_ORT_LIB, then the cache filled by `make ort`)")
	return o
}

func samplerFlags(fs *flag.FlagSet, o *infer.SampleOptions) {
	fs.StringVar(&o.Sampler, "sampler", "ddim", "ddpm (all T steps), ddim or dpm++2m")
	fs.IntVar(&o.Steps, "steps", 50, "denoiser evaluations for ddim and dpm++2m")
	fs.Float64Var(&o.Eta, "eta", 0, "DDIM stochasticity (0: deterministic)")
	fs.Float64Var(&o.Guidance, "guidance", 0, "classifier-free guidance weight W: eps = (1+W)·eps(y) − W·eps(null)")
	fs.IntVar(&o.Batch, "batch", 64, "images per denoiser call (a guided call runs 2× this)")
	fs.Uint64Var(&o.Seed, "seed", 1, "noise seed; image i uses its own stream of (seed, i)")
}

func cmdSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	var o infer.SampleOptions
	fs.StringVar(&o.Model, "model", "", "denoiser .onnx (default: the shipped "+defaultModel+")")
	fs.StringVar(&o.Out, "out", "samples", "output directory")
	fs.StringVar(&o.Class, "class", "all", "class name or index, or all (--n per class)")
	fs.IntVar(&o.N, "n", 16, "images (per class with --class all)")
	fs.StringVar(&o.Shard, "shard", "", "k/n: make only the images whose index ≡ k mod n")
	samplerFlags(fs, &o)
	so := sessionFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := withDefaultModel(&o.Model); err != nil {
		return err
	}
	o.Session, o.Progress = *so, os.Stderr
	ctx, stop := interruptible()
	defer stop()
	m, err := infer.SampleToDir(ctx, o)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %d complete images in %s are listed in its manifest", len(m.Images), o.Out)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sample: %d images in %s (grid: %s, manifest: %s)\n", len(m.Images), o.Out,
		filepath.Join(o.Out, "grid.png"), filepath.Join(o.Out, "manifest.json"))
	return nil
}

func cmdExport(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	run := fs.String("run", "", "run directory (or checkpoint file) to export (required)")
	out := fs.String("out", "", "output .onnx file (required)")
	ema := fs.Bool("ema", true, "export the EMA weights (false: the raw weights)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" || *out == "" {
		return fmt.Errorf("--run and --out are required")
	}
	if err := export.Export(*run, *out, export.Options{Raw: !*ema}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "export: wrote %s\n", *out)
	return nil
}

func cmdInspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: condiff inspect MODEL.onnx")
	}
	return export.Inspect(fs.Arg(0), os.Stdout)
}
