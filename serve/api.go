package serve

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// SamplesRequest is the body of POST /v1/samples. Absent fields take
// sample's defaults.
type SamplesRequest struct {
	Class   json.RawMessage   `json:"class,omitempty"`   // a name or an index, or "all"
	Classes []json.RawMessage `json:"classes,omitempty"` // several classes, n images each
	N       *int              `json:"n,omitempty"`       // images (per class, for several)
	Sampling
}

// Sampling is the sampling fields both endpoints take; absent ones take
// sample's defaults.
type Sampling struct {
	Guidance *float64 `json:"guidance,omitempty"`
	// GuidanceInterval is "LO,HI" (σ values; HI may be inf) or "none".
	GuidanceInterval *string `json:"guidance_interval,omitempty"`
	// Guide chooses the server's autoguidance guide (its default when it
	// has one) or the null class (false).
	Guide   *bool    `json:"guide,omitempty"`
	Sampler *string  `json:"sampler,omitempty"`
	Steps   *int     `json:"steps,omitempty"`
	Eta     *float64 `json:"eta,omitempty"`
	Seed    *uint64  `json:"seed,omitempty"`
}

// Image is one image of an answer.
type Image struct {
	Index     int    `json:"index"`
	Class     int    `json:"class"`
	ClassName string `json:"class_name"`
	Seed      uint64 `json:"seed"`
	File      string `json:"file"` // the name sample gives it
	PNG       []byte `json:"png"`  // base64 in JSON
}

// SamplesResponse answers POST /v1/samples.
type SamplesResponse struct {
	Model    string  `json:"model"`
	Sampler  string  `json:"sampler"`
	Steps    int     `json:"steps"`
	Eta      float64 `json:"eta"`
	Guidance float64 `json:"guidance"`
	// GuidanceInterval ("" for every step) and Guide (the guide's id, ""
	// for the null class) say how guidance applied.
	GuidanceInterval string  `json:"guidance_interval,omitempty"`
	Guide            string  `json:"guide,omitempty"`
	Seed             uint64  `json:"seed"`
	Images           []Image `json:"images"`
}

// plan is a validated request: what the scheduler runs.
type plan struct {
	sampler  diffusion.Sampler
	ts       []int
	eta      float64
	guidance float64
	interval diffusion.Interval
	auto     bool // guided by the server's guide
	seed     uint64
	indices  []int
	labels   []int
}

func (s *Server) newPlan(p Sampling, choices []infer.ClassChoice, n int) (*plan, error) {
	// The request's fields over the model's defaults, merged where sample
	// merges them (infer.Defaults.Resolve).
	g := infer.Given{Steps: p.Steps, Eta: p.Eta, Guidance: p.Guidance, Seed: p.Seed}
	if p.Sampler != nil {
		smp, err := diffusion.ParseSampler(*p.Sampler)
		if err != nil {
			return nil, badField(err)
		}
		g.Sampler = smp
	}
	if p.GuidanceInterval != nil {
		iv, err := diffusion.ParseInterval(*p.GuidanceInterval)
		if err != nil {
			return nil, badField(err)
		}
		g.Interval = &iv
	}
	if p.Guide != nil {
		if *p.Guide && s.guide == nil {
			return nil, bad("guide", "guide true: the server has no guide (condiff-run serve --guide MODEL)")
		}
		guide := "none"
		if *p.Guide {
			guide = s.o.Guide
		}
		g.Guide = &guide
	}
	smp, err := s.defs.Resolve(g, s.info)
	if err != nil {
		return nil, err
	}
	if smp.Guide != "" && smp.Guidance == 0 { // Check's refusal names the file, which is the server's business
		return nil, bad("guide", "guide true: the guide guides nothing at guidance 0; give a guidance weight")
	}
	if err := smp.Check(s.info); err != nil {
		return nil, badField(err)
	}
	pl := &plan{sampler: smp.Sampler, eta: smp.Eta, guidance: smp.Guidance, interval: smp.Interval, auto: smp.Guide != "", seed: smp.Seed}
	steps := smp.Steps
	if n < 1 || n > s.o.MaxN {
		return nil, bad("n", "n %d: out of 1..%d (the server's limit per request)", n, s.o.MaxN)
	}
	for _, c := range choices {
		idx, lab, err := infer.Plan(s.info, c, n, infer.Shard{})
		if err != nil {
			return nil, badField(err)
		}
		pl.indices, pl.labels = append(pl.indices, idx...), append(pl.labels, lab...)
	}
	if len(choices) > 1 { // several classes: each at the indices of an all-classes run
		for i := range pl.indices {
			pl.indices[i] = pl.labels[i]*n + i%n
		}
	}
	if len(pl.indices) > s.o.MaxN {
		return nil, bad("n", "n %d × %d classes is over the server's limit of %d images per request", n, len(pl.indices)/n, s.o.MaxN)
	}
	if pl.guidance == 0 {
		pl.interval = diffusion.Interval{} // recorded as every step: it applied nowhere
	}
	req := diffusion.Request{Sampler: pl.sampler, Steps: steps, Eta: pl.eta, Guidance: pl.guidance, Interval: pl.interval, Batch: 1,
		Indices: pl.indices, Labels: pl.labels}
	ts, err := req.Check(s.sch.Spec.T)
	if err != nil {
		return nil, badField(err)
	}
	pl.ts = ts
	return pl, nil
}

// classChoice reads a class given as a name, an index or "all".
func (s *Server) classChoice(raw json.RawMessage) (infer.ClassChoice, error) {
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		var i int
		if err := json.Unmarshal(raw, &i); err != nil {
			return infer.ClassChoice{}, bad("class", "class %s: not a class name, an index or \"all\"", raw)
		}
		name = strconv.Itoa(i)
	}
	if name == "all" {
		return infer.ClassChoice{}, nil
	}
	if !s.info.Conditional() {
		return infer.ClassChoice{}, bad("class", "class %q: the model is unconditional (variant %s) and has no classes", name, s.info.Variant)
	}
	c, err := s.info.ClassIndex(name)
	if err != nil {
		return infer.ClassChoice{}, bad("class", "class: %v", err)
	}
	return infer.OneClass(c), nil
}

func (s *Server) samplesPlan(r *SamplesRequest) (*plan, error) {
	n := 1
	if r.N != nil {
		n = *r.N
	}
	var choices []infer.ClassChoice
	switch {
	case r.Class != nil && r.Classes != nil:
		return nil, bad("classes", "class and classes: give one of them")
	case r.Classes != nil:
		if len(r.Classes) == 0 {
			return nil, bad("classes", "classes: empty")
		}
		seen := map[int]bool{}
		for _, raw := range r.Classes {
			c, err := s.classChoice(raw)
			if err != nil {
				return nil, err
			}
			if !c.One {
				return nil, bad("classes", "classes: \"all\" is class \"all\"")
			}
			if seen[c.Index] {
				return nil, bad("classes", "classes: %s twice", raw)
			}
			seen[c.Index] = true
			choices = append(choices, c)
		}
	case r.Class != nil:
		c, err := s.classChoice(r.Class)
		if err != nil {
			return nil, err
		}
		choices = []infer.ClassChoice{c}
	default:
		choices = []infer.ClassChoice{{}}
	}
	return s.newPlan(r.Sampling, choices, n)
}

// shownDefaults are the sampling options of a request that gives none, as
// /v1/models shows them: the model's (infer.ModelDefaults) resolved as
// every request's are. New computes them once.
func shownDefaults(defs infer.Defaults, info contract.Info, sch *diffusion.Schedule) (Defaults, error) {
	smp, err := defs.Resolve(infer.Given{}, info)
	if err != nil {
		return Defaults{}, err
	}
	d := Defaults{Sampler: smp.Sampler.Name(), Eta: smp.Eta, Seed: smp.Seed, Guidance: smp.Guidance, Guide: smp.Guide != "", GuidanceInterval: "none"}
	if !smp.Interval.Everywhere() {
		d.GuidanceInterval = smp.Interval.String()
	}
	if ts, err := smp.Sampler.Timesteps(sch.Spec.T, smp.Steps); err == nil {
		d.Steps = len(ts)
	}
	return d, nil
}

func classNames(in contract.Info) []string {
	out := make([]string, in.NumClasses)
	for i := range out {
		out[i] = in.ClassName(i)
	}
	return out
}

// compact is JSON on one line, for logs and SSE events.
func compact(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(b.Bytes(), "\n")
}
