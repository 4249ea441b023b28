package infer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/internal/strictjson"
)

// Defaults are how a model is sampled when a command or request does not
// say: the sampler, its steps, the guidance weight, interval and guide. A
// model's own are in its sidecar NAME.sampling.json (SamplingFile), chosen
// from a frontier (docs/guidance); a model without one gets condiff's
// built-in defaults. sample, eval, serve and the page all take them from
// ModelDefaults: this is the one place they are computed.
type Defaults struct {
	Sampler          string  `json:"sampler"`
	Steps            int     `json:"steps"` // 0: the sampler's own
	Guidance         float64 `json:"guidance"`
	GuidanceInterval string  `json:"guidance_interval,omitempty"` // "": every step
	// Guide is the autoguidance guide, a path relative to the sidecar's
	// directory in the file and resolved against it when read.
	Guide string `json:"guide,omitempty"`
	// Source says where the choice comes from (a frontier's report).
	Source string `json:"source,omitempty"`
}

// SamplingFile is the sidecar of a model file: model.onnx →
// model.sampling.json.
func SamplingFile(model string) string {
	return strings.TrimSuffix(model, ".onnx") + ".sampling.json"
}

// BuiltinDefaults are condiff's defaults for a model without a sidecar:
// DDIM at its default steps, guidance DefaultGuidance for a model trained
// with label dropout (0 for the others), every step, no guide.
func BuiltinDefaults(info contract.Info) Defaults {
	if ds := info.Distilled; ds != nil {
		// A distilled student: its own sampler and steps, no guidance
		// (its teacher's is part of what it learned).
		return Defaults{Sampler: ds.Sampler, Steps: ds.Steps, Source: "the model's metadata: a student distilled for " + ds.Sampler + " in " + strconv.Itoa(ds.Steps) + " steps"}
	}
	d := Defaults{Sampler: diffusion.DDIM.Name()}
	if info.HasNull {
		d.Guidance = diffusion.DefaultGuidance
	}
	return d
}

// ModelDefaults reads the defaults of the model at path (info: its
// metadata): its sidecar's, checked (sampler, interval, guide file), or
// the built-in ones when it has none.
func ModelDefaults(path string, info contract.Info) (Defaults, error) {
	side := SamplingFile(path)
	b, err := fsutil.ReadSmallFile(side, 1<<16)
	if errors.Is(err, fs.ErrNotExist) {
		return BuiltinDefaults(info), nil
	}
	if err != nil {
		return Defaults{}, fmt.Errorf("infer: %w", err)
	}
	d, err := ParseDefaults(side, b, info)
	if err != nil {
		return Defaults{}, err
	}
	if d.Guide != "" {
		if filepath.IsAbs(d.Guide) || !filepath.IsLocal(d.Guide) {
			return Defaults{}, fmt.Errorf("infer: %s: guide %q: must be a path relative to the sidecar's directory, inside it", side, d.Guide)
		}
		d.Guide = filepath.Join(filepath.Dir(side), d.Guide)
		if _, err := os.Stat(d.Guide); err != nil {
			return Defaults{}, fmt.Errorf("infer: %s: guide %s: %v", side, d.Guide, err)
		}
	}
	return d, nil
}

// ParseDefaults reads a sidecar's bytes (side: its name, for errors) and
// checks them against the model's info; a guide stays as written.
func ParseDefaults(side string, b []byte, info contract.Info) (Defaults, error) {
	var d Defaults
	if err := strictjson.Decode(b, &d, true); err != nil { // closed: a misspelt field is not silently a default
		return Defaults{}, fmt.Errorf("infer: %s: not sampling defaults: %w", side, err)
	}
	bad := func(field string, v any, format string, a ...any) error {
		return fmt.Errorf("infer: %s: %s %v: %s", side, field, v, fmt.Sprintf(format, a...))
	}
	if _, err := diffusion.ParseSampler(d.Sampler); err != nil {
		return Defaults{}, bad("sampler", d.Sampler, "%v", err)
	}
	if d.Steps < 0 {
		return Defaults{}, bad("steps", d.Steps, "must be >= 0")
	}
	if _, err := diffusion.ParseInterval(d.GuidanceInterval); err != nil {
		return Defaults{}, bad("guidance_interval", d.GuidanceInterval, "%v", err)
	}
	if !(d.Guidance >= 0) {
		return Defaults{}, bad("guidance", d.Guidance, "must be >= 0")
	}
	if d.Guidance != 0 && d.Guide == "" && !info.HasNull {
		return Defaults{}, bad("guidance", d.Guidance, "the model has no null class and the defaults name no guide")
	}
	return d, nil
}

// Sampling is how images are sampled from a model: the options sample,
// eval, serve and the page all take, resolved (Defaults.Resolve) and
// checked against the model (Check).
type Sampling struct {
	Sampler  diffusion.Sampler
	Steps    int // 0: the sampler's default
	Eta      float64
	Guidance float64
	Interval diffusion.Interval // the zero value: every step
	Guide    string             // the autoguidance guide's file; "": the null class
	Seed     uint64
}

// Given is what a command line or a request said about sampling: each nil
// field takes the model's default (Defaults.Resolve). Guide "none" asks
// for no guide.
type Given struct {
	Sampler  diffusion.Sampler
	Steps    *int
	Eta      *float64
	Guidance *float64
	Interval *diffusion.Interval
	Guide    *string
	Seed     *uint64
}

// DefaultSeed is the noise seed of a run or request that names none.
const DefaultSeed = 1

// Resolve is the one merge of a model's defaults and what was given:
// DefaultOptions → the model's (d) → the request's (g), as ollama layers
// them. Another sampler than the model's brings its own default steps;
// the model's guide applies only where guidance does, and a model without
// a null class and without a guide samples at weight 0 unless a weight is
// given (which Check then refuses).
func (d Defaults) Resolve(g Given, info contract.Info) (Sampling, error) {
	var s Sampling
	var err error
	if s.Sampler, err = diffusion.ParseSampler(d.Sampler); err != nil {
		return s, fmt.Errorf("infer: the model's default sampler: %w", err)
	}
	s.Steps = d.Steps
	if g.Sampler != nil {
		s.Sampler, s.Steps = g.Sampler, 0
	}
	if g.Steps != nil {
		s.Steps = *g.Steps
	}
	if ds := info.Distilled; ds != nil && s.Steps == 0 && s.Sampler.Name() == ds.Sampler {
		s.Steps = ds.Steps // a student's sampler's own default is its chain
	}
	s.Guide = d.Guide
	if g.Guide != nil {
		s.Guide = *g.Guide
	}
	if s.Guide == "none" {
		s.Guide = ""
	}
	s.Guidance = d.Guidance
	if s.Guide == "" && !info.HasNull {
		s.Guidance = 0
	}
	if g.Guidance != nil {
		s.Guidance = *g.Guidance
	}
	if s.Interval, err = diffusion.ParseInterval(d.GuidanceInterval); err != nil {
		return s, fmt.Errorf("infer: the model's default guidance interval: %w", err)
	}
	if g.Interval != nil {
		s.Interval = *g.Interval
	}
	if s.Guidance == 0 && g.Guide == nil {
		s.Guide = "" // the model's guide guides nothing at weight 0
	}
	s.Seed = DefaultSeed
	if g.Seed != nil {
		s.Seed = *g.Seed
	}
	if g.Eta != nil {
		s.Eta = *g.Eta
	}
	return s, nil
}

// Check refuses guidance the model cannot take: a weight without a null
// class or a guide, and a guide at weight 0 (it would guide nothing).
// diffusion.Request.Check holds the rest (ranges, the sampler's steps).
func (s Sampling) Check(info contract.Info) error {
	if ds := info.Distilled; ds != nil {
		// A student runs the chain it was distilled for, unguided.
		if s.Guidance != 0 || s.Guide != "" {
			return field.Errorf("infer", "Guidance", s.Guidance, "a distilled student takes no guidance: its teacher's (%s) is part of what it learned; sample it at guidance 0", ds.What())
		}
		if s.Sampler.Name() != ds.Sampler {
			return field.Errorf("infer", "Sampler", s.Sampler.Name(), "a student distilled for %s in %d steps runs that sampler only", ds.Sampler, ds.Steps)
		}
		if s.Steps != ds.Steps {
			return field.Errorf("infer", "Steps", s.Steps, "a student distilled for %s in %d steps runs %d steps only (each of its steps stands for two of its teacher's)", ds.Sampler, ds.Steps, ds.Steps)
		}
		if s.Eta != 0 {
			return field.Errorf("infer", "Eta", s.Eta, "a distilled student's steps are deterministic (η = 0)")
		}
	}
	if s.Guide != "" && s.Guidance == 0 {
		return field.Errorf("infer", "Guide", s.Guide, "guides nothing at guidance 0; give a guidance weight")
	}
	if s.Guide == "" && s.Guidance != 0 && !info.HasNull {
		return field.Errorf("infer", "Guidance", s.Guidance, "needs a model trained with label dropout (this one has no null class) or a guide")
	}
	return nil
}

// Sampling is the options' sampling part.
func (o *SampleOptions) Sampling() Sampling {
	return Sampling{Sampler: o.Sampler, Steps: o.Steps, Eta: o.Eta, Guidance: o.Guidance, Interval: o.Interval, Guide: o.Guide, Seed: o.Seed}
}

// SetSampling sets the options' sampling part.
func (o *SampleOptions) SetSampling(s Sampling) {
	o.Sampler, o.Steps, o.Eta, o.Guidance, o.Interval, o.Guide, o.Seed = s.Sampler, s.Steps, s.Eta, s.Guidance, s.Interval, s.Guide, s.Seed
}
