//go:build purego

package train

// BLAS names the matrix library the training graphs run on.
const BLAS = "gonum"

// BLASCore is the kernel set the BLAS runs: gonum's pure Go.
func BLASCore() string { return "go" }

// BLASAdvice is "": gonum's kernels do not depend on the CPU's model.
func BLASAdvice() string { return "" }
