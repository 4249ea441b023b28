//go:build purego

package train

// BLAS names the matrix library the training graphs run on.
const BLAS = "gonum"
