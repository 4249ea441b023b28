package infer_test

import (
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// TestResolve: the one merge of a model's defaults and what a command or
// request gave, case by case: each field given wins; another sampler
// brings its own steps; the model's guide applies only at a weight; a
// model without a null class samples unguided unless told otherwise (and
// Check refuses that); an explicit guide at weight 0 is refused.
func TestResolve(t *testing.T) {
	withNull := contract.Info{HasNull: true}
	noNull := contract.Info{}
	student := contract.Info{HasNull: true, Distilled: &contract.Distilled{Sampler: "ddim-trailing", Steps: 4, Guidance: 0.6, GuidanceInterval: "0.3,7"}}
	iv := diffusion.Interval{Lo: 0.3, Hi: 7}
	model := infer.Defaults{Sampler: "ddim", Steps: 20, Guidance: 1, GuidanceInterval: "0.3,7", Guide: "g.onnx"}
	f, n, s := func(v float64) *float64 { return &v }, func(v int) *int { return &v }, func(v string) *string { return &v }
	cases := []struct {
		name  string
		d     infer.Defaults
		g     infer.Given
		info  contract.Info
		want  infer.Sampling
		check string // "": Check accepts; else a part of its refusal
	}{
		{"nothing given", model, infer.Given{}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 1, Interval: iv, Guide: "g.onnx", Seed: 1}, ""},
		{"another sampler: its own steps", model, infer.Given{Sampler: diffusion.DDPM}, withNull,
			infer.Sampling{Sampler: diffusion.DDPM, Steps: 0, Guidance: 1, Interval: iv, Guide: "g.onnx", Seed: 1}, ""},
		{"steps given", model, infer.Given{Sampler: diffusion.DDIM, Steps: n(8)}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 8, Guidance: 1, Interval: iv, Guide: "g.onnx", Seed: 1}, ""},
		{"weight 0 drops the model's guide", model, infer.Given{Guidance: f(0)}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 0, Interval: iv, Seed: 1}, ""},
		{"guide none: the null class", model, infer.Given{Guide: s("none")}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 1, Interval: iv, Seed: 1}, ""},
		{"guide none, no null class: unguided", model, infer.Given{Guide: s("none")}, noNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 0, Interval: iv, Seed: 1}, ""},
		{"a weight without null class or guide", model, infer.Given{Guide: s("none"), Guidance: f(2)}, noNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 2, Interval: iv, Seed: 1}, "no null class"},
		{"the model's guide needs no null class", model, infer.Given{}, noNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Guidance: 1, Interval: iv, Guide: "g.onnx", Seed: 1}, ""},
		{"an explicit guide at weight 0", model, infer.Given{Guide: s("h.onnx"), Guidance: f(0)}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Steps: 20, Interval: iv, Guide: "h.onnx", Seed: 1}, "guides nothing at guidance 0"},
		{"built-in, no null class", infer.BuiltinDefaults(noNull), infer.Given{}, noNull,
			infer.Sampling{Sampler: diffusion.DDIM, Seed: 1}, ""},
		{"a student: its own chain, unguided", infer.BuiltinDefaults(student), infer.Given{}, student,
			infer.Sampling{Sampler: diffusion.DDIMTrailing, Steps: 4, Seed: 1}, ""},
		{"a student named its own sampler: its chain", infer.BuiltinDefaults(student), infer.Given{Sampler: diffusion.DDIMTrailing}, student,
			infer.Sampling{Sampler: diffusion.DDIMTrailing, Steps: 4, Seed: 1}, ""},
		{"a student asked for guidance", infer.BuiltinDefaults(student), infer.Given{Guidance: f(1)}, student,
			infer.Sampling{Sampler: diffusion.DDIMTrailing, Steps: 4, Guidance: 1, Seed: 1}, "its teacher's (guidance 0.6 in σ ∈ (0.3, 7]) is part of what it learned"},
		{"a student asked for 8 steps", infer.BuiltinDefaults(student), infer.Given{Steps: n(8)}, student,
			infer.Sampling{Sampler: diffusion.DDIMTrailing, Steps: 8, Seed: 1}, "runs 4 steps only"},
		{"a student asked for DDIM", infer.BuiltinDefaults(student), infer.Given{Sampler: diffusion.DDIM}, student,
			infer.Sampling{Sampler: diffusion.DDIM, Seed: 1}, "runs that sampler only"},
		{"a student asked for η", infer.BuiltinDefaults(student), infer.Given{Eta: f(1)}, student,
			infer.Sampling{Sampler: diffusion.DDIMTrailing, Steps: 4, Eta: 1, Seed: 1}, "deterministic"},
		{"built-in with a null class", infer.BuiltinDefaults(withNull), infer.Given{Eta: f(0.5), Seed: func(v uint64) *uint64 { return &v }(9), Interval: &iv}, withNull,
			infer.Sampling{Sampler: diffusion.DDIM, Guidance: diffusion.DefaultGuidance, Eta: 0.5, Interval: iv, Seed: 9}, ""},
	}
	for _, c := range cases {
		got, err := c.d.Resolve(c.g, c.info)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
		err = got.Check(c.info)
		if c.check == "" && err != nil {
			t.Errorf("%s: Check: %v", c.name, err)
		}
		if c.check != "" && (err == nil || !strings.Contains(err.Error(), c.check)) {
			t.Errorf("%s: Check: %v, want a refusal saying %q", c.name, err, c.check)
		}
	}
	if _, err := (infer.Defaults{Sampler: "nope"}).Resolve(infer.Given{}, withNull); err == nil {
		t.Error("a default sampler that does not exist resolved")
	}
}
