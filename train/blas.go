package train

import (
	"fmt"
	"slices"
	"strings"
)

// preAVX2 are OpenBLAS's x86 kernel sets without AVX2 and FMA.
var preAVX2 = []string{"Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Bulldozer", "Piledriver"}

// blasAdvice is BLASAdvice's rule: core is the kernel set OpenBLAS runs,
// coretype OPENBLAS_CORETYPE (a choice made on purpose is kept).
func blasAdvice(core, coretype string, avx2, avx512 bool) string {
	if coretype != "" || !avx2 || !slices.ContainsFunc(preAVX2, func(s string) bool { return strings.EqualFold(s, core) }) {
		return ""
	}
	set, feats := "Haswell", "AVX2"
	if avx512 {
		set, feats = "SkylakeX", "AVX-512"
	}
	return fmt.Sprintf("OpenBLAS runs its %s kernels on this %s CPU (it did not recognise the CPU); set OPENBLAS_CORETYPE=%s in training's environment (on a 2-core AVX-512 VM training ran 1.27× as fast with Haswell, 1.65× with SkylakeX; condiff-bench -mode gemm checks a setting's products and times them)", core, feats, set)
}
