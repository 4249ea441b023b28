//go:build !purego

package train

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
// char* openblas_get_corename(void);
import "C"

import (
	"os"

	"golang.org/x/sys/cpu"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLAS names the matrix library the training graphs run on.
const BLAS = "openblas"

// One threading model: the convolutions split the batch over goroutines, one
// per CPU, each calling a single-threaded OpenBLAS (OpenBLAS's own threads
// spun in sched_yield against the goroutines, measured slower).
func init() {
	C.openblas_set_num_threads(1)
	G.Use(netlib.Implementation{})
}

// BLASCore is the kernel set OpenBLAS chose when it loaded (its name for
// the CPU, or OPENBLAS_CORETYPE's).
func BLASCore() string { return C.GoString(C.openblas_get_corename()) }

// BLASAdvice is a line for the user when OpenBLAS runs kernels older than
// the CPU: it falls back to its SSE3 (Prescott) kernels on a CPU it does
// not recognise — a virtual machine's generic "Intel Xeon Processor" —
// even when the CPU has AVX2 and AVX-512. On such a 2-core VM its products
// ran at 22–28 GFLOPS with Prescott, 50–69 with OPENBLAS_CORETYPE=Haswell
// and 84–139 with SkylakeX (each checked right by condiff-bench -mode
// gemm), and training at 83, 105 and 137 images/s. "" when the kernels
// suit the CPU or OPENBLAS_CORETYPE chose them.
func BLASAdvice() string {
	return blasAdvice(BLASCore(), os.Getenv("OPENBLAS_CORETYPE"), cpu.X86.HasAVX2 && cpu.X86.HasFMA, cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ)
}
