package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/field"
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
	Sampler  *string  `json:"sampler,omitempty"`
	Steps    *int     `json:"steps,omitempty"`
	Eta      *float64 `json:"eta,omitempty"`
	Seed     *uint64  `json:"seed,omitempty"`
}

// OpenAIRequest is the body of POST /v1/images/generations: OpenAI's image
// API, with condiff's sampling fields allowed beside it.
type OpenAIRequest struct {
	Prompt         string `json:"prompt"` // a class name, exactly
	N              *int   `json:"n,omitempty"`
	ResponseFormat string `json:"response_format,omitempty"` // b64_json (the only one)
	Size           string `json:"size,omitempty"`            // WxH; must be the model's
	Model          string `json:"model,omitempty"`           // ignored: the server has one
	User           string `json:"user,omitempty"`            // ignored
	Sampling
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
	Seed     uint64  `json:"seed"`
	Images   []Image `json:"images"`
}

// badRequest is an error the client caused: answered 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// jsonFields names the request's JSON fields for the libraries' field
// errors.
var jsonFields = map[string]string{"Sampler": "sampler", "Steps": "steps", "Eta": "eta", "Guidance": "guidance",
	"N": "n", "Class": "class", "Batch": "max-batch"}

// decode reads one JSON value of a request body strictly: unknown fields
// and trailing data are refused.
func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		return bad("body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("body: data after the JSON value")
	}
	return nil
}

// plan is a validated request: what the scheduler runs.
type plan struct {
	sampler  diffusion.Sampler
	ts       []int
	eta      float64
	guidance float64
	seed     uint64
	indices  []int
	labels   []int
}

func (s *Server) newPlan(p Sampling, choices []infer.ClassChoice, n int) (*plan, error) {
	pl := &plan{sampler: diffusion.DDIM, seed: 1}
	if s.info.HasNull {
		pl.guidance = diffusion.DefaultGuidance // sample's default for a guidance-ready model
	}
	if p.Sampler != nil {
		var err error
		if pl.sampler, err = diffusion.ParseSampler(*p.Sampler); err != nil {
			return nil, bad("%v", field.Rename(err, jsonFields))
		}
	}
	if p.Guidance != nil {
		pl.guidance = *p.Guidance
	}
	if p.Eta != nil {
		pl.eta = *p.Eta
	}
	if p.Seed != nil {
		pl.seed = *p.Seed
	}
	steps := 0
	if p.Steps != nil {
		steps = *p.Steps
	}
	if n < 1 || n > s.o.MaxN {
		return nil, bad("n %d: out of 1..%d (--max-n)", n, s.o.MaxN)
	}
	for _, c := range choices {
		idx, lab, err := infer.Plan(s.info, c, n, infer.Shard{})
		if err != nil {
			return nil, bad("%v", field.Rename(err, jsonFields))
		}
		pl.indices, pl.labels = append(pl.indices, idx...), append(pl.labels, lab...)
	}
	if len(choices) > 1 { // several classes: each at the indices of an all-classes run
		for i := range pl.indices {
			pl.indices[i] = pl.labels[i]*n + i%n
		}
	}
	if len(pl.indices) > s.o.MaxN {
		return nil, bad("n %d × %d classes is over --max-n %d images", n, len(pl.indices)/n, s.o.MaxN)
	}
	if pl.guidance != 0 && !s.info.HasNull {
		return nil, bad("guidance %g: the model was trained without label dropout and has no null class", pl.guidance)
	}
	req := diffusion.Request{Sampler: pl.sampler, Steps: steps, Eta: pl.eta, Guidance: pl.guidance, Batch: 1,
		Indices: pl.indices, Labels: pl.labels}
	ts, err := req.Check(s.sch.Spec.T)
	if err != nil {
		return nil, bad("%v", field.Rename(err, jsonFields))
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
			return infer.ClassChoice{}, bad("class %s: not a class name, an index or \"all\"", raw)
		}
		name = strconv.Itoa(i)
	}
	if name == "all" {
		return infer.ClassChoice{}, nil
	}
	if !s.info.Conditional() {
		return infer.ClassChoice{}, bad("class %q: the model is unconditional (variant %s) and has no classes", name, s.info.Variant)
	}
	c, err := s.info.ClassIndex(name)
	if err != nil {
		return infer.ClassChoice{}, bad("class: %v", err)
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
		return nil, bad("class and classes: give one of them")
	case r.Classes != nil:
		if len(r.Classes) == 0 {
			return nil, bad("classes: empty")
		}
		seen := map[int]bool{}
		for _, raw := range r.Classes {
			c, err := s.classChoice(raw)
			if err != nil {
				return nil, err
			}
			if !c.One {
				return nil, bad("classes: \"all\" is class \"all\"")
			}
			if seen[c.Index] {
				return nil, bad("classes: %s twice", raw)
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

func (s *Server) openAIPlan(r *OpenAIRequest) (*plan, error) {
	if r.ResponseFormat != "" && r.ResponseFormat != "b64_json" {
		return nil, bad("response_format %q: only b64_json is served", r.ResponseFormat)
	}
	if want := fmt.Sprintf("%dx%d", s.info.ImageSize, s.info.ImageSize); r.Size != "" && r.Size != want {
		return nil, bad("size %q: the model makes %s images", r.Size, want)
	}
	if !s.info.Conditional() {
		return nil, bad("prompt: the model is unconditional and takes no class")
	}
	c, err := s.info.ClassIndex(r.Prompt)
	if err != nil || strconv.Itoa(c) == r.Prompt && s.info.ClassName(c) != r.Prompt {
		return nil, bad("prompt %q: not a class of the model; classes: %s", r.Prompt, strings.Join(classNames(s.info), ", "))
	}
	n := 1
	if r.N != nil {
		n = *r.N
	}
	return s.newPlan(r.Sampling, []infer.ClassChoice{infer.OneClass(c)}, n)
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
