package train

import (
	"strings"
	"testing"
)

// TestBLASAdvice: advice only where OpenBLAS runs pre-AVX2 kernels on a
// CPU with AVX2 and OPENBLAS_CORETYPE was not set, naming the set to use.
func TestBLASAdvice(t *testing.T) {
	for _, c := range []struct {
		core, coretype string
		avx2, avx512   bool
		want           string // "" or the set advised
	}{
		{"Prescott", "", true, true, "SkylakeX"},
		{"Prescott", "", true, false, "Haswell"},
		{"NEHALEM", "", true, false, "Haswell"},
		{"Prescott", "", false, false, ""},       // an old CPU: its kernels suit it
		{"Prescott", "Prescott", true, true, ""}, // chosen on purpose
		{"Haswell", "", true, true, ""},
		{"SkylakeX", "", true, true, ""},
		{"Zen", "", true, false, ""},
	} {
		got := blasAdvice(c.core, c.coretype, c.avx2, c.avx512)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, "OPENBLAS_CORETYPE="+c.want) {
			t.Errorf("core %s, OPENBLAS_CORETYPE %q, AVX2 %v, AVX-512 %v: %q, want advice %q", c.core, c.coretype, c.avx2, c.avx512, got, c.want)
		}
	}
}
