package diffusion

import (
	"math"
	"strings"
	"testing"
)

// Golden values computed independently (Python float64) from the published
// definitions: Ho et al.'s linear 1e-4..0.02 and Nichol & Dhariwal's cosine
// with s = 0.008 and betas capped at 0.999.
func TestGolden(t *testing.T) {
	cases := []struct {
		kind       string
		t          int
		beta, abar float64
	}{
		{"linear", 0, 0.0001, 0.9999},
		{"linear", 1, 0.00011991991991991993, 0.9997800920720721},
		{"linear", 499, 0.01004004004004004, 0.07858724288177821},
		{"linear", 999, 0.02, 4.0358297653756754e-05},
		{"cosine", 0, 4.128422482196914e-05, 0.999958715775178},
		{"cosine", 1, 4.614175273665033e-05, 0.9999125759273678},
		{"cosine", 499, 0.0031458862304780677, 0.4938435904406382},
		{"cosine", 999, 0.999, 2.4287669070348567e-09},
	}
	for _, c := range cases {
		sp, err := Default(c.kind, 1000)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sp.Build()
		if err != nil {
			t.Fatal(err)
		}
		// abar to 1e-12 relative (float64 products over 1000 factors agree to
		// ~1e-13); cosine betas to 1e-9, since 1 − f(t+1)/f(t) cancels about
		// five digits and libm cosines differ in the last bit.
		if rel(s.Betas[c.t], c.beta) > 1e-9 || rel(s.AlphaBar[c.t], c.abar) > 1e-12 {
			t.Errorf("%s t=%d: beta %v abar %v, want %v %v", c.kind, c.t, s.Betas[c.t], s.AlphaBar[c.t], c.beta, c.abar)
		}
		if math.Abs(s.SqrtAB[c.t]*s.SqrtAB[c.t]+s.SqrtOneAB[c.t]*s.SqrtOneAB[c.t]-1) > 1e-12 {
			t.Errorf("%s t=%d: sqrt(abar)²+sqrt(1-abar)² != 1", c.kind, c.t)
		}
	}
}

func rel(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

func TestParseSpec(t *testing.T) {
	sp, _ := Default("linear", 1000)
	back, err := ParseSpec([]byte(sp.JSON()))
	if err != nil || back != sp {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for _, bad := range []string{`{"kind":"linear","T":1000,"beta_start":0.0001,"beta_end":0.02,"extra":1}`,
		`{"kind":"quadratic","T":10}`, `{"kind":"linear","T":0,"beta_start":0.0001,"beta_end":0.02}`, `{"kind":"cosine","T":10}`} {
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestDegenerate: a schedule whose ᾱ underflows to 0 is refused with the
// timestep named, since every sampler divides by √ᾱ.
func TestDegenerate(t *testing.T) {
	_, err := Spec{Kind: "linear", T: 1000, BetaStart: 0.5, BetaEnd: 0.999}.Build()
	if err == nil || !strings.Contains(err.Error(), "degenerates at t=") {
		t.Fatalf("ᾱ underflowing to 0: %v", err)
	}
}
