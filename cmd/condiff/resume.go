package main

import (
	"cmp"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/train"
)

// resumeRule says how --resume treats one field of a checkpoint (its
// models.Config or its checkpoint.TrainInfo): the flags that would set
// it, each with the checkpoint's value in that flag's words (a resumed run
// keeps the checkpoint's value, so a flag given with another one is
// refused instead of silently ignored), or, for a field no flag sets
// directly, what does (free).
type resumeRule struct {
	flags map[string]func(*checkpoint.Checkpoint) string
	free  string
}

func kept(flagName string, value func(*checkpoint.Checkpoint) string) resumeRule {
	return resumeRule{flags: map[string]func(*checkpoint.Checkpoint) string{flagName: value}}
}

func free(why string) resumeRule { return resumeRule{free: why} }

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// resumeRules has a rule for every field of models.Config ("Config.X")
// and checkpoint.TrainInfo ("Info.X"); TestResumeRulesCoverCheckpoint
// fails when a field has none, so a new option cannot be forgotten here.
var resumeRules = map[string]resumeRule{
	"Config.Kind":         free("the command: train or train-classifier (resumeConflicts checks it)"),
	"Config.Variant":      kept("variant", func(c *checkpoint.Checkpoint) string { return string(c.Config.Variant) }),
	"Config.Norm":         kept("norm", func(c *checkpoint.Checkpoint) string { return string(c.Config.Norm) }),
	"Config.Groups":       kept("groups", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Config.Groups) }),
	"Config.Channels":     kept("channels", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Config.Channels) }),
	"Config.ImageSize":    kept("size", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Config.ImageSize) }),
	"Config.BaseChannels": kept("base", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Config.BaseChannels) }),
	"Config.ChannelMult":  kept("mult", func(c *checkpoint.Checkpoint) string { return fmtInts(c.Config.ChannelMult) }),
	"Config.NumResBlocks": kept("res-blocks", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Config.NumResBlocks) }),
	"Config.NumClasses":   free("the dataset and --classes (Info.Dataset, Info.Classes)"),
	"Config.ClassNames":   free("the dataset and --classes (Info.Dataset, Info.Classes)"),
	"Config.NullClass":    free("--cfg-drop > 0 (Info.CFGDrop)"),
	"Config.AttnRes":      kept("attention", func(c *checkpoint.Checkpoint) string { return fmtInts(c.Config.AttnRes) }),

	"Info.Dataset": kept("data", func(c *checkpoint.Checkpoint) string { return c.Info.Dataset }),
	"Info.Classes": kept("classes", func(c *checkpoint.Checkpoint) string { return strings.Join(c.Info.Classes, ",") }),
	"Info.Steps":   free("--steps may extend a resumed run (train refuses a target below the checkpoint's step)"),
	"Info.Batch":   kept("batch", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Info.Batch) }),
	"Info.LR":      kept("lr", func(c *checkpoint.Checkpoint) string { return fmtFloat(c.Info.LR) }),
	"Info.Seed":    kept("seed", func(c *checkpoint.Checkpoint) string { return strconv.FormatUint(c.Info.Seed, 10) }),
	"Info.PerClass": kept("synthetic-per-class", func(c *checkpoint.Checkpoint) string {
		if c.Info.PerClass == 0 { // a checkpoint from before the data options were recorded: the default then
			return "1000"
		}
		return strconv.Itoa(c.Info.PerClass)
	}),
	"Info.DataDir":     kept("data-dir", func(c *checkpoint.Checkpoint) string { return c.Info.DataDir }),
	"Info.SkipBad":     kept("skip-bad", func(c *checkpoint.Checkpoint) string { return strconv.FormatBool(c.Info.SkipBad) }),
	"Info.Norm":        free("--norm, recorded beside Config.Norm (the same value)"),
	"Info.CFGDrop":     kept("cfg-drop", func(c *checkpoint.Checkpoint) string { return fmtFloat(c.Info.CFGDrop) }),
	"Info.MinSNRGamma": kept("loss-weight", func(c *checkpoint.Checkpoint) string { return (&minSNRFlag{c.Info.MinSNRGamma}).String() }),
	"Info.ACWeight":    kept("ac-weight", func(c *checkpoint.Checkpoint) string { return fmtFloat(c.Info.ACWeight) }),
	// The frozen classifier's path is not recorded (its weights are in
	// the checkpoint): any --ac-classifier on resume is refused.
	"Info.ACMode": kept("ac-classifier", func(*checkpoint.Checkpoint) string { return "" }),
	"Info.Schedule": {flags: map[string]func(*checkpoint.Checkpoint) string{
		"schedule": func(c *checkpoint.Checkpoint) string { return c.Info.Schedule.Kind },
		"T":        func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Info.Schedule.T) },
	}},
	"Info.EMADecay":   kept("ema", func(c *checkpoint.Checkpoint) string { return fmtFloat(c.Info.EMADecay) }),
	"Info.GradClip":   kept("grad-clip", func(c *checkpoint.Checkpoint) string { return fmtFloat(c.Info.GradClip) }),
	"Info.LRSchedule": kept("lr-schedule", func(c *checkpoint.Checkpoint) string { return cmp.Or(c.Info.LRSchedule, train.LRConstant) }),
	"Info.LRWarmup":   kept("lr-warmup", func(c *checkpoint.Checkpoint) string { return strconv.Itoa(c.Info.LRWarmup) }),
	// A resumed run continues from its checkpoint; the model it started
	// from is history.
	"Info.Init": kept("init", func(c *checkpoint.Checkpoint) string { return c.Info.Init }),
	"Info.Distill": {flags: map[string]func(*checkpoint.Checkpoint) string{
		"distill":          distilled("0", func(d *contract.Distilled) string { return strconv.Itoa(d.Steps) }),
		"distill-guidance": distilled("0", func(d *contract.Distilled) string { return fmtFloat(d.Guidance) }),
		"distill-interval": distilled("", func(d *contract.Distilled) string { return d.GuidanceInterval }),
		"distill-method":   distilled(contract.DistillProgressive, func(d *contract.Distilled) string { return d.MethodName() }),
	}},
	"Info.ClfConfig": free("the M_AC classifier's architecture: --ac-classifier's run, or the default classifier (Info.ACMode)"),
}

// distillNames are train's names of distill's own flags.
var distillNames = map[string]string{"teacher": "init", "student-steps": "distill"}

// distilled is a rule's value of one field of the run's distillation, or
// none (the flag's default) for a run that is not one.
func distilled(none string, field func(*contract.Distilled) string) func(*checkpoint.Checkpoint) string {
	return func(c *checkpoint.Checkpoint) string {
		if c.Info.Distill == nil {
			return none
		}
		return field(c.Info.Distill)
	}
}

// resumeFree are train's flags that no checkpoint field holds: a resumed
// run may change them.
var resumeFree = map[string]bool{"out": true, "resume": true, "steps": true, "save-every": true, "print-config": true, "record-batches": true}

// resumeConflicts refuses flags that contradict the checkpoint being
// resumed (resumeRules): a resumed run keeps its config, data and
// hyper-parameters, so a differing flag would be silently ignored. It also
// refuses resuming a classifier run with train and a denoiser run with
// train-classifier.
func resumeConflicts(fs *flag.FlagSet, out string) error {
	ck, err := checkpoint.Load(out)
	if err != nil {
		return nil // train reports it
	}
	if want := map[bool]contract.Kind{false: contract.Denoiser, true: contract.Classifier}[fs.Name() == "train-classifier"]; ck.Config.Kind != want {
		return fmt.Errorf("--resume: %s holds a %s run; %s continues a %s run", out, ck.Config.Kind, fs.Name(), want)
	}
	var bad []string
	fs.Visit(func(fl *flag.Flag) {
		name := fl.Name
		if fs.Name() == "distill" {
			name = cmp.Or(distillNames[name], name)
		}
		for _, r := range resumeRules {
			if value, ok := r.flags[name]; ok {
				if want := value(ck); fl.Value.String() != want {
					bad = append(bad, fmt.Sprintf("--%s %s (the checkpoint has %q)", fl.Name, fl.Value.String(), want))
				}
				return
			}
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("--resume continues %s with its own config and hyper-parameters; these flags contradict it: %s (only --steps, above the checkpoint's step, and --save-every may change)",
			out, strings.Join(bad, "; "))
	}
	return nil
}
