package serve

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/condiff/condiff/infer"
)

// OpenAIRequest is the body of POST /v1/images/generations: OpenAI's image
// API, with condiff's sampling fields allowed beside it. Every field of
// OpenAI's request is taken: those that cannot change a class-conditional
// model's PNG are checked against OpenAI's values and ignored; those
// that would ask for what the model cannot make are refused.
type OpenAIRequest struct {
	Prompt            string `json:"prompt"` // a class name, exactly
	N                 *int   `json:"n,omitempty"`
	ResponseFormat    string `json:"response_format,omitempty"`    // b64_json (the only one)
	Size              string `json:"size,omitempty"`               // WxH of the model, or auto
	OutputFormat      string `json:"output_format,omitempty"`      // png (the only one)
	Background        string `json:"background,omitempty"`         // auto or opaque (the images have no alpha)
	Stream            *bool  `json:"stream,omitempty"`             // false (streams: /v1/samples)
	Model             string `json:"model,omitempty"`              // ignored: the server has one
	Quality           string `json:"quality,omitempty"`            // ignored
	Style             string `json:"style,omitempty"`              // ignored
	Moderation        string `json:"moderation,omitempty"`         // ignored
	OutputCompression *int   `json:"output_compression,omitempty"` // ignored: PNG is lossless
	PartialImages     *int   `json:"partial_images,omitempty"`     // ignored: no stream
	User              string `json:"user,omitempty"`               // ignored
	Sampling
}

// openAIValues are the values OpenAI's API takes for the fields served
// here as no-ops: anything else is refused as OpenAI would refuse it.
var openAIValues = map[string][]string{
	"quality":    {"auto", "standard", "hd", "low", "medium", "high"},
	"style":      {"vivid", "natural"},
	"moderation": {"auto", "low"},
	"background": {"auto", "opaque"},
}

func (s *Server) openAIPlan(r *OpenAIRequest) (*plan, error) {
	if r.ResponseFormat != "" && r.ResponseFormat != "b64_json" {
		return nil, bad("response_format", "response_format %q: only b64_json is served (the images are not stored, so there is no url)", r.ResponseFormat)
	}
	if r.OutputFormat != "" && r.OutputFormat != "png" {
		return nil, bad("output_format", "output_format %q: only png is served", r.OutputFormat)
	}
	if want := fmt.Sprintf("%dx%d", s.info.ImageSize, s.info.ImageSize); r.Size != "" && r.Size != "auto" && r.Size != want {
		return nil, bad("size", "size %q: the model makes %s images (or give auto, or leave size out)", r.Size, want)
	}
	if r.Stream != nil && *r.Stream {
		return nil, bad("stream", "stream true: not served here; POST /v1/samples with Accept: text/event-stream streams progress and images")
	}
	for name, v := range map[string]string{"quality": r.Quality, "style": r.Style, "moderation": r.Moderation, "background": r.Background} {
		if v != "" && !slices.Contains(openAIValues[name], v) {
			return nil, bad(name, "%s %q: not one of %s", name, v, strings.Join(openAIValues[name], ", "))
		}
	}
	if c := r.OutputCompression; c != nil && (*c < 0 || *c > 100) {
		return nil, bad("output_compression", "output_compression %d: out of 0..100", *c)
	}
	if p := r.PartialImages; p != nil && (*p < 0 || *p > 3) {
		return nil, bad("partial_images", "partial_images %d: out of 0..3", *p)
	}
	if !s.info.Conditional() {
		return nil, bad("prompt", "prompt: the model is unconditional and takes no class")
	}
	c, err := s.info.ClassIndex(r.Prompt)
	if err != nil || strconv.Itoa(c) == r.Prompt && s.info.ClassName(c) != r.Prompt {
		return nil, bad("prompt", "prompt %q: not a class of the model; classes: %s", r.Prompt, strings.Join(classNames(s.info), ", "))
	}
	n := 1
	if r.N != nil {
		n = *r.N
	}
	return s.newPlan(r.Sampling, []infer.ClassChoice{infer.OneClass(c)}, n)
}

// OpenAIResponse answers POST /v1/images/generations.
type OpenAIResponse struct {
	Created      int64  `json:"created"`
	OutputFormat string `json:"output_format"` // png
	Size         string `json:"size"`          // WxH
	Data         []struct {
		B64JSON string `json:"b64_json"`
	} `json:"data"`
}

func (s *Server) generations(w http.ResponseWriter, r *http.Request) int {
	j, p, cancel, ok := accept(s, w, r, s.openAIPlan)
	if !ok {
		return 0
	}
	defer cancel()
	images, ok := s.collect(w, j, p)
	if !ok {
		return 0
	}
	resp := OpenAIResponse{Created: time.Now().Unix(), OutputFormat: "png", Size: fmt.Sprintf("%dx%d", s.info.ImageSize, s.info.ImageSize)}
	resp.Data = make([]struct {
		B64JSON string `json:"b64_json"`
	}, len(images))
	for i, im := range images {
		resp.Data[i].B64JSON = base64.StdEncoding.EncodeToString(im.PNG)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	return len(images)
}
