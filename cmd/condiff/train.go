package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

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

// resumeConflicts refuses flags that contradict the checkpoint being
// resumed: a resumed run keeps its config, data and hyper-parameters (only
// --steps and --save-every may change), so a differing flag would be
// silently ignored.
func resumeConflicts(fs *flag.FlagSet, out string) error {
	ck, err := checkpoint.Load(out)
	if err != nil {
		return nil // train reports it
	}
	c, in := ck.Config, ck.Info
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	ints := func(v []int) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	kept := map[string]string{
		"variant": string(c.Variant), "norm": string(c.Norm), "base": strconv.Itoa(c.BaseChannels), "mult": ints(c.ChannelMult),
		"res-blocks": strconv.Itoa(c.NumResBlocks), "attention": ints(c.AttnRes), "groups": strconv.Itoa(c.Groups), "size": strconv.Itoa(c.ImageSize),
		"channels": strconv.Itoa(c.Channels), "data": in.Dataset, "classes": strings.Join(in.Classes, ","),
		"batch": strconv.Itoa(in.Batch), "lr": f(in.LR), "seed": strconv.FormatUint(in.Seed, 10),
		"schedule": in.Schedule.Kind, "T": strconv.Itoa(in.Schedule.T), "cfg-drop": f(in.CFGDrop),
		"loss-weight": (&minSNRFlag{in.MinSNRGamma}).String(),
		"ac-weight":   f(in.ACWeight), "ema": f(in.EMADecay), "grad-clip": f(in.GradClip), "ac-classifier": "",
		"lr-schedule": cmp.Or(in.LRSchedule, train.LRConstant), "lr-warmup": strconv.Itoa(in.LRWarmup),
		"data-dir": in.DataDir, "skip-bad": strconv.FormatBool(in.SkipBad), "synthetic-per-class": strconv.Itoa(in.PerClass),
	}
	if in.PerClass == 0 { // a checkpoint from before the data options were recorded: the default then
		kept["synthetic-per-class"] = "1000"
	}
	var bad []string
	fs.Visit(func(fl *flag.Flag) {
		want, ok := kept[fl.Name]
		if ok && fl.Value.String() != want {
			bad = append(bad, fmt.Sprintf("--%s %s (the checkpoint has %q)", fl.Name, fl.Value.String(), want))
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("--resume continues %s with its own config and hyper-parameters; these flags contradict it: %s (only --steps, above the checkpoint's step, and --save-every may change)",
			out, strings.Join(bad, "; "))
	}
	return nil
}

// cmdTrain is `train` (a denoiser) and `train-classifier`.
func cmdTrain(args []string, classifier bool) error {
	name := "train"
	if classifier {
		name = "train-classifier"
	}
	fs := cli.NewFlags(name)
	out := fs.String("out", "", "run directory (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its checkpoint")
	var dopt data.Options
	ds := cli.DataFlags(fs, &dopt, cli.DataName|cli.DataClasses, "synthetic", "dataset: synthetic, mnist, fashion-mnist or folder:DIR")
	fs.IntVar(&dopt.Size, "size", 32, "image height and width")
	fs.IntVar(&dopt.Channels, "channels", 1, "1 (grayscale) or 3 (RGB), for folder and synthetic data")
	fs.BoolVar(&dopt.SkipBad, "skip-bad", false, "skip unreadable images in a folder dataset, counting them")
	steps := fs.Int("steps", 2000, "total optimisation steps (with --resume: default the checkpoint's target)")
	batch := fs.Int("batch", 32, "batch size")
	lr := fs.Float64("lr", 2e-4, "Adam learning rate")
	// The synthetic set is seeded by --seed too: the checkpoint records one
	// seed, and --resume rebuilds the same set from it.
	seed := fs.Uint64("seed", 1, "seed of initialisation, data order, noise and the synthetic dataset")
	base := fs.Int("base", 32, "base channel width")
	norm := fs.String("norm", "", "batch or group (default: batch for denoisers, group for classifiers)")
	groups := fs.Int("groups", 8, "groups of --norm group")
	saveEvery := fs.Int("save-every", 100, "write a checkpoint every N steps (and at the end)")
	lrSchedule := fs.String("lr-schedule", train.LRConstant, "learning rate after the warm-up: constant, or cosine (decays to 0 at --steps; extending a run with --resume stretches the rest of the curve)")
	lrWarmup := fs.Int("lr-warmup", 0, "steps of linear learning-rate warm-up from 0")
	emaDecay := fs.Float64("ema", 0.999, "EMA decay of the weights (warmed up: min(decay, (1+step)/(10+step)))")
	clip := fs.Float64("grad-clip", 1, "clip the global gradient norm to this (0: off)")
	lossWeight := &minSNRFlag{}
	var variant, sched, acClf, mult, attn *string
	var T, resBlocks *int
	var cfgDrop, acWeight *float64
	if !classifier {
		mult = fs.String("mult", "1,2,2", "channel multipliers, one per resolution")
		resBlocks = fs.Int("res-blocks", 1, "residual blocks per resolution")
		attn = fs.String("attention", "", "resolutions (image sizes, e.g. 16 or 16,8) whose residual blocks are followed by self-attention, as in the DDPM U-Net (and the middle gets one); empty: none")
		variant = fs.String("variant", string(contract.CBN), "uncond (baseline), cbn (M_CBN) or ac (M_AC)")
		sched = fs.String("schedule", "linear", "noise schedule: linear or cosine")
		T = fs.Int("T", 1000, "diffusion steps")
		cfgDrop = fs.Float64("cfg-drop", 0, "probability of replacing the label by the null class (classifier-free guidance)")
		fs.Var(lossWeight, "loss-weight", "the denoiser loss's weighting over timesteps: none (the plain mean squared error), or min-snr:GAMMA (each example weighted min(SNR_t, GAMMA)/SNR_t, Min-SNR-γ, Hang et al. 2023; they use 5)")
		acWeight = fs.Float64("ac-weight", 0.1, "weight of the auxiliary classifier loss (variant ac)")
		acClf = fs.String("ac-classifier", "", "pretrained classifier run to keep frozen (variant ac); default: train one jointly")
	}
	fs.Sets(map[string]string{"out": "Out", "resume": "Resume", "size": "data.Size", "skip-bad": "data.SkipBad",
		"steps": "Steps", "batch": "Batch", "lr": "LR", "seed": "Seed", "save-every": "SaveEvery", "ema": "EMADecay", "grad-clip": "GradClip",
		"lr-schedule": "LRSchedule", "lr-warmup": "LRWarmup"})
	if !classifier {
		fs.Sets(map[string]string{
			"cfg-drop":      "CFGDrop",
			"loss-weight":   "MinSNRGamma",
			"ac-weight":     "ACWeight",
			"ac-classifier": "ACClf",
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	ds.Finish()
	dopt.Seed = *seed
	o := train.Options{Out: *out, Resume: *resume, Steps: *steps, Batch: *batch, LR: *lr, Seed: *seed,
		SaveEvery: *saveEvery, EMADecay: *emaDecay, LRSchedule: *lrSchedule, LRWarmup: *lrWarmup, GradClip: *clip, Progress: os.Stderr, Log: os.Stderr, Data: dopt}
	if *resume {
		if !fs.IsSet("steps") {
			o.Steps = 0 // keep the checkpoint's target
		}
		if err := resumeConflicts(fs.FlagSet, *out); err != nil {
			return err
		}
	}
	var skipped int
	o.Data.Skipped = &skipped
	if !classifier {
		o.Model = models.DefaultDenoiser()
		o.Model.Variant = contract.Variant(*variant)
		var err error
		if o.Model.ChannelMult, err = intList("mult", *mult); err != nil {
			return err
		}
		o.Model.NumResBlocks = *resBlocks
		if *attn != "" {
			if o.Model.AttnRes, err = intList("attention", *attn); err != nil {
				return err
			}
		}
		spec, err := diffusion.Default(*sched, *T)
		if err != nil {
			return fmt.Errorf("--schedule: %w", err)
		}
		o.Schedule = spec
		o.CFGDrop, o.ACClf, o.MinSNRGamma = *cfgDrop, *acClf, lossWeight.gamma
		if o.Model.Variant == contract.AC || fs.IsSet("ac-weight") {
			o.ACWeight = *acWeight // train refuses it for the other variants
		}
	} else {
		o.Model = models.DefaultClassifier()
	}
	o.Model.BaseChannels, o.Model.Groups = *base, *groups
	if *norm != "" {
		o.Model.Norm = models.NormKind(*norm)
	}
	ctx, stop := cli.Interruptible()
	defer stop()
	o.Context = ctx
	_, err := train.Run(o)
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "train: skipped %d unreadable images\n", skipped)
	}
	if errors.Is(err, train.ErrInterrupted) {
		return fmt.Errorf("%w (condiff %s --resume --out %s continues it)", err, fs.Name(), *out)
	}
	return fs.Flagged(err)
}

// minSNRFlag is --loss-weight: none, or min-snr:GAMMA (γ > 0, finite).
type minSNRFlag struct{ gamma float64 }

func (f *minSNRFlag) String() string {
	if f == nil || f.gamma == 0 {
		return "none"
	}
	return "min-snr:" + strconv.FormatFloat(f.gamma, 'g', -1, 64)
}

func (f *minSNRFlag) Set(v string) error {
	if v == "none" {
		f.gamma = 0
		return nil
	}
	g, ok := strings.CutPrefix(v, "min-snr:")
	if !ok {
		return fmt.Errorf("not none or min-snr:GAMMA")
	}
	gamma, err := strconv.ParseFloat(g, 64)
	if err != nil || !(gamma > 0) || math.IsInf(gamma, 0) {
		return fmt.Errorf("GAMMA %q: not a finite number > 0", g)
	}
	f.gamma = gamma
	return nil
}
