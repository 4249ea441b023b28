package main

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

// TestResumeRulesCoverCheckpoint: every field of a checkpoint's config and
// training record has a resume rule (kept under named flags, or free with
// a reason), every rule names a field that exists and flags train has, and
// every flag of train and train-classifier is either kept by a rule or
// free to change on resume. Adding an option to TrainInfo or a flag to
// train without deciding what --resume does with it fails here.
func TestResumeRulesCoverCheckpoint(t *testing.T) {
	fields := map[string]bool{}
	for prefix, typ := range map[string]reflect.Type{"Config.": reflect.TypeFor[models.Config](), "Info.": reflect.TypeFor[checkpoint.TrainInfo]()} {
		for f := range typ.Fields() {
			fields[prefix+f.Name] = true
			r, ok := resumeRules[prefix+f.Name]
			if !ok {
				t.Errorf("%s%s has no resume rule (resumeRules in resume.go)", prefix, f.Name)
				continue
			}
			if (len(r.flags) == 0) == (r.free == "") {
				t.Errorf("%s%s: a rule names flags or says why the field is free, not both or neither", prefix, f.Name)
			}
		}
	}
	if len(fields) < 30 {
		t.Fatalf("reflection found %d fields; expected Config's and TrainInfo's", len(fields))
	}
	ruled := map[string]bool{}
	for name, r := range resumeRules {
		if !fields[name] {
			t.Errorf("resumeRules[%q]: no such field", name)
		}
		for fl := range r.flags {
			ruled[fl] = true
		}
	}
	for _, classifier := range []bool{false, true} {
		fs, _ := trainFlags(classifier)
		fs.VisitAll(func(f *flag.Flag) {
			if !ruled[f.Name] && !resumeFree[f.Name] {
				t.Errorf("%s --%s: no resume rule keeps it and it is not in resumeFree", fs.Name(), f.Name)
			}
		})
		if !classifier {
			for fl := range ruled {
				if fs.Lookup(fl) == nil {
					t.Errorf("a resume rule names --%s, which train does not have", fl)
				}
			}
		}
	}
}

// TestResumeConflicts: for every flag a rule keeps, resuming a shipped run
// with the checkpoint's own value is accepted and with another value the
// flag accepts is refused, naming the flag, the value and the
// checkpoint's; a classifier run resumed by train is refused.
func TestResumeConflicts(t *testing.T) {
	run := "../../assets/pretrained/mnist-guide.run"
	ck, err := checkpoint.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	// Candidate values: for each flag the first one its Set accepts that
	// differs from the checkpoint's value is the contradicting one.
	candidates := []string{"3", "7", "0.25", "0.5", "group", "batch", "ac", "uncond", "cosine", "linear", "true", "false", "1,2", "8,4", "min-snr:3", "none", "mnist", "fashion-mnist", "/tmp", "trouser,bag", "x"}
	tried := 0
	for _, r := range resumeRules {
		for name, value := range r.flags {
			want := value(ck)
			parse := func(v string) (*flag.FlagSet, error) {
				fs, _ := trainFlags(false)
				fs.SetOutput(io.Discard)
				return fs.FlagSet, fs.Parse([]string{"--resume", "--out", run, "--" + name + "=" + v})
			}
			if fs, err := parse(want); err != nil {
				if name == "ac-classifier" { // the empty path: not given is the same
					continue
				}
				t.Errorf("--%s %q (the checkpoint's value) does not parse: %v", name, want, err)
			} else if err := resumeConflicts(fs, run); err != nil {
				t.Errorf("--%s %s, the checkpoint's own value, refused: %v", name, want, err)
			}
			other := ""
			for _, c := range candidates {
				if fs, err := parse(c); err == nil && fs.Lookup(name).Value.String() != want {
					other = c
					break
				}
			}
			if other == "" {
				t.Errorf("--%s: no candidate value differs from the checkpoint's %q", name, want)
				continue
			}
			fs, _ := parse(other)
			err := resumeConflicts(fs, run)
			if err == nil || !strings.Contains(err.Error(), "--"+name+" ") || !strings.Contains(err.Error(), "(the checkpoint has \""+want+"\")") {
				t.Errorf("--%s %s against the checkpoint's %q: %v", name, other, want, err)
			}
			tried++
		}
	}
	if tried < 20 {
		t.Errorf("tried %d flags", tried)
	}

	// The rules' values, given as flags, rebuild the checkpoint's options:
	// every kept field comes back equal in what the run would record
	// (train.Options.Recorded, and its Model), so a rule cannot read the
	// wrong field.
	args := []string{"--out", run}
	for _, r := range resumeRules {
		for name, value := range r.flags {
			if v := value(ck); v != "" || name == "attention" {
				args = append(args, "--"+name+"="+v)
			}
		}
	}
	tf, options := trainFlags(false)
	if err := tf.Parse(args); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	o, err := options()
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for key, r := range resumeRules {
		if len(r.flags) == 0 {
			continue
		}
		part, name, _ := strings.Cut(key, ".")
		have, got := reflect.ValueOf(ck.Info), reflect.ValueOf(o.Recorded())
		if part == "Config" {
			have, got = reflect.ValueOf(ck.Config), reflect.ValueOf(o.Model)
		}
		g := got.FieldByName(name)
		if !g.IsValid() {
			continue
		}
		h := have.FieldByName(name)
		if h.Kind() == reflect.Slice && h.Len() == 0 && g.Len() == 0 {
			compared++
			continue
		}
		if !reflect.DeepEqual(h.Interface(), g.Interface()) {
			t.Errorf("%s: the checkpoint has %v, its rule's flags give %v", key, h.Interface(), g.Interface())
		}
		compared++
	}
	if compared < 15 {
		t.Errorf("compared %d fields", compared)
	}
	fs, _ := trainFlags(false)
	fs.Parse([]string{"--resume", "--out", "../../assets/pretrained/mnist-clf.run"})
	if err := resumeConflicts(fs.FlagSet, "../../assets/pretrained/mnist-clf.run"); err == nil || !strings.Contains(err.Error(), "classifier run") {
		t.Errorf("train --resume of a classifier run: %v", err)
	}
}

// TestInitRefusesArchitectureFlags: --init takes the architecture, image
// shape and schedule from the model, so a flag that would set one of them
// is refused, naming every one given.
func TestInitRefusesArchitectureFlags(t *testing.T) {
	fs, options := trainFlags(false)
	if err := fs.Parse([]string{"--out", t.TempDir(), "--init", "m.onnx", "--base", "8", "--T", "500", "--lr", "1e-3"}); err != nil {
		t.Fatal(err)
	}
	_, err := options()
	if err == nil || !strings.Contains(err.Error(), "drop --base, --T") || strings.Contains(err.Error(), "--lr") {
		t.Errorf("--init with --base and --T: %v", err)
	}
	fs, options = trainFlags(false)
	if err := fs.Parse([]string{"--out", t.TempDir(), "--init", "m.onnx", "--lr", "1e-3", "--cfg-drop", "0.1"}); err != nil {
		t.Fatal(err)
	}
	if o, err := options(); err != nil || o.Init != "m.onnx" || o.LR != 1e-3 {
		t.Errorf("--init with recipe flags only: %+v, %v", o.TrainInfo, err)
	}
}

// TestPrintConfig: --print-config describes the run its flags would
// start (train.Plan) without --out and without writing anything: the
// network's config with the data's classes and label dropout's null row,
// the schedule, and the recipe, as checkpoint.RunConfig JSON that reads
// back to the same values.
func TestPrintConfig(t *testing.T) {
	fs, options := trainFlags(false)
	if err := fs.Parse([]string{"--print-config", "--data", "synthetic", "--size", "8", "--base", "8", "--mult", "1,2",
		"--cfg-drop", "0.1", "--loss-weight", "min-snr:5", "--schedule", "cosine", "--T", "500", "--lr", "1e-3"}); err != nil {
		t.Fatal(err)
	}
	o, err := options()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := train.Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	var back checkpoint.RunConfig
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Config.ImageSize != 8 || back.Config.BaseChannels != 8 || !back.Config.NullClass || back.Config.NumClasses < 2 ||
		len(back.Config.ClassNames) != back.Config.NumClasses || back.Schedule == nil || back.Schedule.Kind != "cosine" || back.Schedule.T != 500 ||
		back.Train.LR != 1e-3 || back.Train.MinSNRGamma != 5 || back.Train.CFGDrop != 0.1 || back.Train.Dataset != "synthetic" {
		t.Errorf("the printed run: %s", b)
	}
}
