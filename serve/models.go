package serve

import (
	"fmt"
	"net/http"

	"github.com/condiff/condiff/diffusion"
)

// ModelInfo answers GET /v1/models (in a list, as OpenAI's API does).
type ModelInfo struct {
	ID            string         `json:"id"`
	Object        string         `json:"object"`
	SHA256        string         `json:"sha256"`
	Classes       []string       `json:"classes"`
	ImageSize     int            `json:"image_size"`
	Channels      int            `json:"channels"`
	Variant       string         `json:"variant"`
	GuidanceReady bool           `json:"guidance_ready"`
	Schedule      diffusion.Spec `json:"schedule"`
	Samplers      []string       `json:"samplers"`
	Defaults      Defaults       `json:"defaults"` // what an absent sampling field of a request takes
	Created       int64          `json:"created"`  // the model file's modification time (Unix seconds)
	OwnedBy       string         `json:"owned_by"`
}

// Defaults are the sampling options a request that leaves them out gets.
type Defaults struct {
	Sampler          string  `json:"sampler"`
	Steps            int     `json:"steps"`
	Eta              float64 `json:"eta"`
	Guidance         float64 `json:"guidance"`
	GuidanceInterval string  `json:"guidance_interval"` // "none": every step
	Guide            bool    `json:"guide"`             // the server's guide (true) or the null class
	Seed             uint64  `json:"seed"`
}

func (s *Server) modelInfo() ModelInfo {
	m := ModelInfo{ID: s.id, Object: "model", Created: s.created, OwnedBy: "condiff", SHA256: s.hash,
		ImageSize: s.info.ImageSize, Channels: s.info.Channels, Variant: string(s.info.Variant),
		GuidanceReady: s.info.HasNull, Schedule: s.info.Schedule, Defaults: s.shown}
	if s.info.Conditional() {
		m.Classes = classNames(s.info)
	}
	for _, sm := range diffusion.Samplers() {
		m.Samplers = append(m.Samplers, sm.Name())
	}
	return m
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(compact(map[string]any{"object": "list", "data": []ModelInfo{s.modelInfo()}}), '\n'))
}

// model answers GET /v1/models/{id}.
func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.id {
		param := "model"
		writeError(w, apiError{Status: http.StatusNotFound, Param: &param, Code: ptr(codeModelNotFound),
			Message: fmt.Sprintf("model %q: the server serves %q", id, s.id)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(compact(s.modelInfo()), '\n'))
}
