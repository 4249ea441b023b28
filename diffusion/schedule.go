package diffusion

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/condiff/condiff/internal/strictjson"
)

// Spec names a schedule; it is what artifacts store (JSON).
type Spec struct {
	Kind      string  `json:"kind"` // "linear" or "cosine"
	T         int     `json:"T"`
	BetaStart float64 `json:"beta_start,omitempty"` // linear
	BetaEnd   float64 `json:"beta_end,omitempty"`   // linear
	S         float64 `json:"s,omitempty"`          // cosine offset
}

// Default returns the named schedule with Ho et al.'s / Nichol & Dhariwal's
// parameters and T steps.
func Default(kind string, T int) (Spec, error) {
	switch kind {
	case "linear":
		return Spec{Kind: "linear", T: T, BetaStart: 1e-4, BetaEnd: 0.02}, nil
	case "cosine":
		return Spec{Kind: "cosine", T: T, S: 0.008}, nil
	}
	return Spec{}, fmt.Errorf("diffusion: schedule: kind %q is not linear or cosine", kind)
}

// ParseSpec decodes a Spec from JSON: one value, unknown fields are errors.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	if err := strictjson.Decode(b, &s, true); err != nil {
		return s, fmt.Errorf("diffusion: schedule: %w", err)
	}
	_, err := s.Build()
	return s, err
}

// JSON encodes the spec.
func (s Spec) JSON() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Schedule is a built schedule, indexed by t in 0..T-1.
type Schedule struct {
	Spec      Spec
	Betas     []float64
	AlphaBar  []float64 // cumulative product of 1-beta
	SqrtAB    []float64 // sqrt(AlphaBar)
	SqrtOneAB []float64 // sqrt(1-AlphaBar)
}

// Build computes the arrays of a spec.
func (s Spec) Build() (*Schedule, error) {
	if s.T < 1 || s.T > 100000 {
		return nil, fmt.Errorf("diffusion: schedule: T=%d is out of 1..100000", s.T)
	}
	betas := make([]float64, s.T)
	switch s.Kind {
	case "linear":
		if !(s.BetaStart > 0 && s.BetaEnd >= s.BetaStart && s.BetaEnd < 1) {
			return nil, fmt.Errorf("diffusion: schedule: linear betas %g..%g must satisfy 0 < start <= end < 1", s.BetaStart, s.BetaEnd)
		}
		for i := range betas {
			if s.T == 1 {
				betas[i] = s.BetaStart
				continue
			}
			betas[i] = s.BetaStart + (s.BetaEnd-s.BetaStart)*float64(i)/float64(s.T-1)
		}
	case "cosine":
		if !(s.S > 0) {
			return nil, fmt.Errorf("diffusion: schedule: cosine s=%g must be > 0", s.S)
		}
		f := func(t float64) float64 {
			c := math.Cos((t/float64(s.T) + s.S) / (1 + s.S) * math.Pi / 2)
			return c * c
		}
		for i := range betas {
			betas[i] = math.Min(1-f(float64(i+1))/f(float64(i)), 0.999)
		}
	default:
		return nil, fmt.Errorf("diffusion: schedule: kind %q is not linear or cosine", s.Kind)
	}
	sc := &Schedule{Spec: s, Betas: betas, AlphaBar: make([]float64, s.T), SqrtAB: make([]float64, s.T), SqrtOneAB: make([]float64, s.T)}
	p := 1.0
	for i, b := range betas {
		p *= 1 - b
		sc.AlphaBar[i] = p
		sc.SqrtAB[i] = math.Sqrt(p)
		sc.SqrtOneAB[i] = math.Sqrt(1 - p)
		// Every sampler divides by √ᾱ_t and √(1−ᾱ_t) and takes log-SNRs:
		// a schedule whose ᾱ reaches 0 (underflow) or stays 1 cannot be sampled.
		if !(p > 0 && p < 1) || math.IsInf(sc.lambda(i), 0) || math.IsNaN(sc.lambda(i)) {
			return nil, fmt.Errorf("diffusion: schedule: %s degenerates at t=%d (ᾱ = %g); use fewer steps or smaller betas", s.JSON(), i, p)
		}
	}
	return sc, nil
}
