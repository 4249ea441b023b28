// Command condiff trains class-conditional DDPM denoisers, exports them to
// ONNX, samples them through ONNX Runtime and evaluates the samples.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/schedule"
	"github.com/condiff/condiff/train"
)

const usage = `condiff: class-conditional diffusion models, trained in Go, sampled through ONNX Runtime.

usage: condiff COMMAND [flags]

commands:
  train             train a denoiser (uncond, cbn = M_CBN, ac = M_AC)
  train-classifier  train an image classifier (for M_AC and evaluation)
  export            turn a run into a self-describing .onnx file
  inspect           print an .onnx model's inputs, outputs, metadata and ops
  sample            generate labelled images from an .onnx denoiser
  eval              measure how well samples follow their labels
  compare           put several eval reports side by side

'condiff COMMAND -h' lists a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"train":            func(a []string) error { return cmdTrain(a, "denoiser") },
		"train-classifier": func(a []string) error { return cmdTrain(a, "classifier") },
		"export":           cmdExport,
		"inspect":          cmdInspect,
		"sample":           cmdSample,
		"eval":             cmdEval,
		"compare":          cmdCompare,
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Print(usage)
		return
	}
	run, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "condiff: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		msg := err.Error()
		if stage := strings.TrimPrefix(name, "train-"); !strings.HasPrefix(msg, stage+":") {
			msg = name + ": " + msg // the error does not name its stage yet
		}
		fmt.Fprintf(os.Stderr, "condiff %s\n", msg)
		os.Exit(1)
	}
}

// intList parses "1,2,2".
func intList(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a comma-separated list of integers", flagName, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func cmdTrain(args []string, kind string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	out := fs.String("out", "", "run directory (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its checkpoint")
	dataset := fs.String("data", "synthetic", "dataset: synthetic, mnist, fashion-mnist or folder:DIR")
	dataDir := fs.String("data-dir", "", "directory of the MNIST-style IDX files (default: the module cache / Debian location)")
	classes := fs.String("classes", "", "comma-separated subset of classes (names or indices), e.g. trouser,bag")
	size := fs.Int("size", 32, "image height and width")
	channels := fs.Int("channels", 1, "1 (grayscale) or 3 (RGB), for folder and synthetic data")
	skipBad := fs.Bool("skip-bad", false, "skip unreadable images in a folder dataset, counting them")
	perClass := fs.Int("synthetic-per-class", 1000, "images per class of the synthetic dataset")
	steps := fs.Int("steps", 2000, "total optimisation steps")
	batch := fs.Int("batch", 32, "batch size")
	lr := fs.Float64("lr", 2e-4, "Adam learning rate")
	seed := fs.Uint64("seed", 1, "seed of initialisation, data order and noise")
	base := fs.Int("base", 32, "base channel width")
	mult := fs.String("mult", "1,2,2", "channel multipliers, one per resolution (denoiser)")
	resBlocks := fs.Int("res-blocks", 1, "residual blocks per resolution (denoiser)")
	norm := fs.String("norm", "", "batch or group (default: batch for denoisers, group for classifiers)")
	groups := fs.Int("groups", 8, "groups of --norm group")
	saveEvery := fs.Int("save-every", 100, "write a checkpoint every N steps (and at the end)")
	emaDecay := fs.Float64("ema", 0.999, "EMA decay of the weights")
	clip := fs.Float64("grad-clip", 1, "clip the global gradient norm to this (0: off)")
	var variant, sched *string
	var T *int
	var cfgDrop, acWeight *float64
	var acClf *string
	if kind == "denoiser" {
		variant = fs.String("variant", "cbn", "uncond (baseline), cbn (M_CBN) or ac (M_AC)")
		sched = fs.String("schedule", "linear", "noise schedule: linear or cosine")
		T = fs.Int("T", 1000, "diffusion steps")
		cfgDrop = fs.Float64("cfg-drop", 0, "probability of replacing the label by the null class (classifier-free guidance)")
		acWeight = fs.Float64("ac-weight", 0.1, "weight of the auxiliary classifier loss (variant ac)")
		acClf = fs.String("ac-classifier", "", "pretrained classifier run to keep frozen (variant ac); default: train one jointly")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	o := train.Options{Out: *out, Resume: *resume, Steps: *steps, Batch: *batch, LR: *lr, Seed: *seed,
		SaveEvery: *saveEvery, EMADecay: *emaDecay, GradClip: *clip, Progress: os.Stderr, Log: os.Stderr,
		Data: data.Options{Name: *dataset, Dir: *dataDir, Size: *size, Channels: *channels, SkipBad: *skipBad, Seed: *seed, PerClass: *perClass}}
	var skipped int
	o.Data.Skipped = &skipped
	if *classes != "" {
		o.Data.Classes = strings.Split(*classes, ",")
	}
	if kind == "denoiser" {
		o.Model = models.DefaultDenoiser()
		o.Model.Variant = *variant
		if o.Model.ChannelMult, _ = intList("mult", *mult); o.Model.ChannelMult == nil {
			return fmt.Errorf("--mult: %q is not a comma-separated list of integers", *mult)
		}
		o.Model.NumResBlocks = *resBlocks
		spec, err := schedule.Default(*sched, *T)
		if err != nil {
			return fmt.Errorf("--schedule: %w", err)
		}
		o.Schedule = spec
		o.CFGDrop, o.ACClf = *cfgDrop, *acClf
		if *variant == models.AC {
			o.ACWeight = *acWeight
		}
	} else {
		o.Model = models.DefaultClassifier()
	}
	o.Model.BaseChannels, o.Model.Groups = *base, *groups
	if *norm != "" {
		o.Model.Norm = *norm
	}
	ctx, stop := interruptible()
	defer stop()
	o.Context = ctx
	_, err := train.Run(o)
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "condiff train: skipped %d unreadable images\n", skipped)
	}
	return err
}
