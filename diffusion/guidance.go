package diffusion

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/condiff/condiff/internal/field"
)

// Guidance steers an image's chain: ε̃ = (1+W)·ε(x, y) − W·ε'(x, ·), where
// ε' is the same denoiser's prediction for the null class (classifier-free
// guidance, Ho & Salimans 2021) or, with Auto, a guide denoiser's
// prediction for the image's own class (autoguidance, Karras et al. 2024:
// a smaller, less-trained model of the same data). It applies only at the
// steps whose noise level lies in Interval (Kynkäänniemi et al. 2024);
// elsewhere the image takes ε(x, y) alone, one row instead of two.
type Guidance struct {
	Weight   float64  // W (0: unguided)
	Interval Interval // where it applies (the zero value: everywhere)
	Null     int      // the null label, for classifier-free guidance
	Auto     bool     // guide with the guide denoiser's ε(x, y), not ε(x, ∅)
}

// Interval is a range of noise levels σ_t = √((1−ᾱ_t)/ᾱ_t): guidance applies
// where Lo < σ_t ≤ Hi. The zero value applies it everywhere.
type Interval struct {
	Lo, Hi float64
}

// Everywhere reports whether iv is the zero value: no interval.
func (iv Interval) Everywhere() bool { return iv == Interval{} }

// Contains reports whether guidance applies at noise level sigma.
func (iv Interval) Contains(sigma float64) bool {
	return iv.Everywhere() || iv.Lo < sigma && sigma <= iv.Hi
}

func (iv Interval) String() string {
	if iv.Everywhere() {
		return "none"
	}
	if math.IsInf(iv.Hi, 1) {
		return fmt.Sprintf("%g,inf", iv.Lo)
	}
	return fmt.Sprintf("%g,%g", iv.Lo, iv.Hi)
}

// ParseInterval reads "LO,HI" (σ values; HI may be "inf") or "none" / "".
func ParseInterval(s string) (Interval, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return Interval{}, nil
	}
	lo, hi, ok := strings.Cut(s, ",")
	if !ok {
		return Interval{}, field.Errorf("diffusion", "Interval", s, "not LO,HI (noise levels σ, e.g. 0.3,5; HI may be inf) or none")
	}
	var iv Interval
	var err error
	if iv.Lo, err = strconv.ParseFloat(strings.TrimSpace(lo), 64); err != nil {
		return Interval{}, field.Errorf("diffusion", "Interval", s, "LO %q is not a number", lo)
	}
	if iv.Hi, err = strconv.ParseFloat(strings.TrimSpace(hi), 64); err != nil {
		return Interval{}, field.Errorf("diffusion", "Interval", s, "HI %q is not a number (or inf)", hi)
	}
	return iv, iv.Check()
}

// Check refuses an interval that selects nothing or is not numbers.
func (iv Interval) Check() error {
	if iv.Everywhere() {
		return nil
	}
	if !(iv.Lo >= 0) || math.IsInf(iv.Lo, 0) || !(iv.Hi > iv.Lo) {
		return field.Errorf("diffusion", "Interval", iv.String(), "must be 0 <= LO < HI (σ values; HI may be inf)")
	}
	return nil
}

// Sigma is the noise level of timestep t, √((1−ᾱ_t)/ᾱ_t): x_t/√ᾱ_t = x₀ + σ_t·ε.
func (s *Schedule) Sigma(t int) float64 { return s.SqrtOneAB[t] / s.SqrtAB[t] }

// guidedAt reports whether g steers the step at timestep t.
func (g Guidance) guidedAt(s *Schedule, t int) bool {
	return g.Weight != 0 && g.Interval.Contains(s.Sigma(t))
}
