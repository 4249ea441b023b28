//go:build !purego

package train

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLAS names the matrix library the training graphs run on.
const BLAS = "openblas"

func init() { G.Use(netlib.Implementation{}) }
