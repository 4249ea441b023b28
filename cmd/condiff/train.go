package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
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

// cmdTrain is `train` (a denoiser) and `train-classifier`.
func cmdTrain(args []string, classifier bool) error {
	fs, options := trainFlags(classifier)
	return runTrain(fs, options, args)
}

// cmdDistill is `condiff distill`: train's run with the teacher (--teacher,
// train's --init) distilled into a student of --student-steps steps
// (train's --distill).
func cmdDistill(args []string) error {
	fs, options := flagsOf("distill", false)
	return runTrain(fs, options, args)
}

func runTrain(fs *cli.Flags, options func() (train.Options, error), args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, err := options()
	if err != nil {
		return err
	}
	if fs.Lookup("print-config").Value.String() == "true" {
		return printConfig(fs, o)
	}
	if o.Resume {
		if err := resumeConflicts(fs.FlagSet, o.Out); err != nil {
			return err
		}
	}
	var skipped int
	o.Data.Skipped = &skipped
	ctx, stop := cli.Interruptible()
	defer stop()
	o.Context = ctx
	var rec *os.File
	var recPath string
	if fl := fs.Lookup("record-batches"); fl != nil {
		recPath = fl.Value.String()
	}
	if recPath != "" {
		// Written beside its name and renamed once the run has ended
		// without error: no half record under the name.
		if rec, err = os.CreateTemp(filepath.Dir(recPath), ".record-*"); err != nil {
			return fmt.Errorf("--record-batches: %w", err)
		}
		defer os.Remove(rec.Name())
		defer rec.Close()
		o.RecordBatches = rec
	}
	_, err = train.Run(o)
	if rec != nil && err == nil {
		if err = rec.Chmod(0o644); err == nil {
			err = rec.Close()
		}
		if err == nil {
			err = os.Rename(rec.Name(), recPath)
		}
		if err != nil {
			err = fmt.Errorf("--record-batches: %w", err)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "train: skipped %d unreadable images\n", skipped)
	}
	if errors.Is(err, train.ErrInterrupted) {
		return fmt.Errorf("%w (condiff %s --resume --out %s continues it)", err, fs.Name(), o.Out)
	}
	return fs.Flagged(err)
}

// trainFlags defines the flags of train (or train-classifier) and returns
// them with the function that turns them, once parsed, into the run's
// options.
func trainFlags(classifier bool) (*cli.Flags, func() (train.Options, error)) {
	if classifier {
		return flagsOf("train-classifier", true)
	}
	return flagsOf("train", false)
}

// flagsOf is trainFlags for the command name: train, train-classifier or
// distill (train's flags, --init named --teacher and --distill
// --student-steps, which it requires).
func flagsOf(name string, classifier bool) (*cli.Flags, func() (train.Options, error)) {
	initFlag, distillFlag := "init", "distill"
	if name == "distill" {
		initFlag, distillFlag = "teacher", "student-steps"
	}
	fs := cli.NewFlags(name)
	// The recipe's flags set the run's options (train.Options and the
	// checkpoint.TrainInfo it holds) directly: a new option is a field
	// there, a line here, and its resume rule (resume.go, held by a test).
	o := train.Options{Progress: os.Stderr, Log: os.Stderr}
	fs.StringVar(&o.Out, "out", "", "run directory (required)")
	fs.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its checkpoint")
	ds := cli.DataFlags(fs, &o.Data, cli.DataName|cli.DataClasses, "synthetic", "dataset: synthetic, mnist, fashion-mnist or folder:DIR")
	fs.IntVar(&o.Data.Size, "size", 32, "image height and width")
	fs.IntVar(&o.Data.Channels, "channels", 1, "1 (grayscale) or 3 (RGB), for folder and synthetic data")
	fs.BoolVar(&o.Data.SkipBad, "skip-bad", false, "skip unreadable images in a folder dataset, counting them")
	fs.IntVar(&o.Steps, "steps", 2000, "total optimisation steps (with --resume: default the checkpoint's target)")
	fs.IntVar(&o.Batch, "batch", 32, "batch size")
	fs.Float64Var(&o.LR, "lr", 2e-4, "Adam learning rate")
	// The synthetic set is seeded by --seed too: the checkpoint records one
	// seed, and --resume rebuilds the same set from it.
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of initialisation, data order, noise and the synthetic dataset")
	printCfg := fs.Bool("print-config", false, "print the run these flags describe (network config, schedule, recipe) as JSON and exit, training nothing")
	initHelp := "start from an exported model (MODEL.onnx, its group-norm network): its architecture, schedule and weights; the data must have its classes and image size, and no architecture flag may be given"
	if name == "distill" {
		initHelp = "the teacher (MODEL.onnx, a group-norm denoiser, or a student of twice --student-steps): the student starts from its architecture, schedule and weights; the data must have its classes"
	}
	fs.StringVar(&o.Init, initFlag, "", initHelp)
	fs.IntVar(&o.SaveEvery, "save-every", 100, "write a checkpoint every N steps (and at the end)")
	fs.StringVar(&o.LRSchedule, "lr-schedule", train.LRConstant, "learning rate after the warm-up: constant, or cosine (decays to 0 at --steps; extending a run with --resume stretches the rest of the curve)")
	fs.IntVar(&o.LRWarmup, "lr-warmup", 0, "steps of linear learning-rate warm-up from 0")
	fs.Float64Var(&o.EMADecay, "ema", 0.999, "EMA decay of the weights (warmed up: min(decay, (1+step)/(10+step)))")
	fs.Float64Var(&o.GradClip, "grad-clip", 1, "clip the global gradient norm to this (0: off)")
	// The architecture's flags.
	base := fs.Int("base", 32, "base channel width")
	norm := fs.String("norm", "", "batch or group (default: batch for denoisers, group for classifiers)")
	groups := fs.Int("groups", 8, "groups of --norm group")
	lossWeight := &minSNRFlag{}
	var variant, sched, mult, attn, distillInterval, distillMethod *string
	var T, resBlocks, distill *int
	var acWeight, distillGuidance *float64
	if !classifier {
		mult = fs.String("mult", "1,2,2", "channel multipliers, one per resolution")
		resBlocks = fs.Int("res-blocks", 1, "residual blocks per resolution")
		attn = fs.String("attention", "", "resolutions (image sizes, e.g. 16 or 16,8) whose residual blocks are followed by self-attention, as in the DDPM U-Net (and the middle gets one); empty: none")
		variant = fs.String("variant", string(contract.CBN), "uncond (baseline), cbn (M_CBN) or ac (M_AC)")
		sched = fs.String("schedule", "linear", "noise schedule: linear or cosine")
		T = fs.Int("T", 1000, "diffusion steps")
		fs.Float64Var(&o.CFGDrop, "cfg-drop", 0, "probability of replacing the label by the null class (classifier-free guidance)")
		fs.Var(lossWeight, "loss-weight", "the denoiser loss's weighting over timesteps: none (the plain mean squared error), or min-snr:GAMMA (each example weighted min(SNR_t, GAMMA)/SNR_t, Min-SNR-γ, Hang et al. 2023; they use 5)")
		acWeight = fs.Float64("ac-weight", 0.1, "weight of the auxiliary classifier loss (variant ac)")
		fs.StringVar(&o.ACClf, "ac-classifier", "", "pretrained classifier run to keep frozen (variant ac); default: train one jointly")
		distillHelp := "distil the --init model (the teacher) into a student of N steps: progressive distillation on the ddim-trailing grid, each student step learning two of the teacher's (0: ordinary training; condiff distill says the same)"
		if name == "distill" {
			distillHelp = "the student's steps N: each learns two of the teacher's on the ddim-trailing grid (a teacher that is a student runs 2N)"
		}
		distill = fs.Int(distillFlag, 0, distillHelp)
		if name == "train" {
			fs.String("record-batches", "", "write every step's batch (image indices, timesteps, labels, noise: "+train.RecordBatch+") to FILE, for replaying the recipe on the same batches (python -m condiff_torch.train --replay FILE); about 4 KB per 32×32 image")
		}
		distillGuidance = fs.Float64("distill-guidance", 0, "the guidance weight the teacher runs at, learned by the student (default: the teacher's own, from its NAME.sampling.json)")
		distillInterval = fs.String("distill-interval", "", "the teacher's guidance interval LO,HI or none (default: the teacher's own)")
		distillMethod = fs.String("distill-method", contract.DistillProgressive, "how the student learns: progressive (each student step learns two of the teacher's; Salimans & Ho 2022) or consistency (from any point of the teacher's grid of 2N steps the student predicts the clean image its own current weights predict one teacher step later; Song et al. 2023, Geng et al. 2024)")
	}
	fs.Sets(map[string]string{"out": "Out", "resume": "Resume", "size": "data.Size", "skip-bad": "data.SkipBad",
		"steps": "Steps", "batch": "Batch", "lr": "LR", "seed": "Seed", "save-every": "SaveEvery", "ema": "EMADecay", "grad-clip": "GradClip",
		"lr-schedule": "LRSchedule", "lr-warmup": "LRWarmup", initFlag: "Init"})
	if !classifier {
		fs.Sets(map[string]string{
			"cfg-drop":       "CFGDrop",
			"loss-weight":    "MinSNRGamma",
			"ac-weight":      "ACWeight",
			"ac-classifier":  "ACClf",
			distillFlag:      "Distill",
			"distill-method": "Distill.Method",
		})
	}
	return fs, func() (train.Options, error) {
		if o.Out == "" && !*printCfg {
			return train.Options{}, fmt.Errorf("--out is required")
		}
		ds.Finish()
		o.Data.Seed = o.Seed
		if o.Init != "" {
			var given []string
			for _, f := range initTakes {
				if fs.IsSet(f) {
					given = append(given, "--"+f)
				}
			}
			if len(given) > 0 {
				return o, fmt.Errorf("--%s %s takes the architecture, image shape and schedule from the model; drop %s", initFlag, o.Init, strings.Join(given, ", "))
			}
		}
		if o.Resume && !fs.IsSet("steps") {
			o.Steps = 0 // keep the checkpoint's target
		}
		if !classifier {
			o.Model = models.DefaultDenoiser()
			o.Model.Variant = contract.Variant(*variant)
			var err error
			if o.Model.ChannelMult, err = intList("mult", *mult); err != nil {
				return o, err
			}
			o.Model.NumResBlocks = *resBlocks
			if *attn != "" {
				if o.Model.AttnRes, err = intList("attention", *attn); err != nil {
					return o, err
				}
			}
			if o.Schedule, err = diffusion.Default(*sched, *T); err != nil {
				return o, fmt.Errorf("--schedule: %w", err)
			}
			o.MinSNRGamma = lossWeight.gamma
			if name == "distill" && *distill == 0 && !o.Resume {
				return o, fmt.Errorf("--student-steps is required (the student's steps, e.g. 4)")
			}
			if *distill != 0 {
				var err error
				if o.Distill, err = distillation(fs, o, *distill, *distillGuidance, *distillInterval); err != nil {
					return o, err
				}
				if *distillMethod != contract.DistillProgressive {
					o.Distill.Method = *distillMethod // train refuses an unknown one
				}
			} else if *distillGuidance != 0 || *distillInterval != "" || *distillMethod != contract.DistillProgressive {
				return o, fmt.Errorf("--distill-guidance, --distill-interval and --distill-method set how a teacher is run; give --%s N", distillFlag)
			}
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
		return o, nil
	}
}

// printConfig writes the run the options describe (train.Plan) as
// checkpoint.RunConfig JSON to stdout.
func printConfig(fs *cli.Flags, o train.Options) error {
	rc, err := train.Plan(o)
	if err != nil {
		return fs.Flagged(err)
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

// initTakes are the flags whose settings --init takes from the model.
var initTakes = []string{"variant", "norm", "groups", "base", "mult", "res-blocks", "attention", "size", "channels", "schedule", "T"}

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

// distillation is --distill's recipe: the student's chain (N steps of
// ddim-trailing) and the guidance its teacher (--init) runs at: the given
// one, else the teacher's own defaults; a teacher that is itself a student
// hands down the guidance it learned (and takes no other). On --resume the
// checkpoint's recipe is kept (resumeConflicts refuses a different one).
func distillation(fs *cli.Flags, o train.Options, steps int, guidance float64, interval string) (*contract.Distilled, error) {
	d := &contract.Distilled{Sampler: diffusion.DDIMTrailing.Name(), Steps: steps, Guidance: guidance, GuidanceInterval: interval}
	if o.Resume || o.Init == "" {
		return d, nil // train refuses a missing teacher; resume keeps the checkpoint's
	}
	info, err := infer.ReadInfo(o.Init)
	if err != nil {
		return nil, fmt.Errorf("the teacher: %w", err)
	}
	if td := info.Distilled; td != nil {
		if fs.IsSet("distill-guidance") || fs.IsSet("distill-interval") {
			return nil, fmt.Errorf("the teacher %s is a student that learned %s; it hands that down and runs at no other: drop --distill-guidance and --distill-interval", o.Init, td.What())
		}
		d.Guidance, d.GuidanceInterval = td.Guidance, td.GuidanceInterval
		return d, nil
	}
	def, err := infer.ModelDefaults(o.Init, info)
	if err != nil {
		return nil, fmt.Errorf("the teacher: %w", err)
	}
	if !fs.IsSet("distill-guidance") {
		d.Guidance = def.Guidance
	}
	if !fs.IsSet("distill-interval") {
		d.GuidanceInterval = def.GuidanceInterval
	}
	if iv, err := diffusion.ParseInterval(d.GuidanceInterval); err != nil {
		return nil, fmt.Errorf("--distill-interval: %w", err)
	} else {
		d.GuidanceInterval = iv.String()
		if iv.Everywhere() {
			d.GuidanceInterval = ""
		}
	}
	if def.Guide != "" && !fs.IsSet("distill-guidance") {
		return nil, fmt.Errorf("the teacher %s is sampled with an autoguidance guide by default, which distillation does not run: give --distill-guidance (classifier-free)", o.Init)
	}
	return d, nil
}
