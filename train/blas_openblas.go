//go:build !purego

package train

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
// char* openblas_get_corename(void);
import "C"

import (
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
