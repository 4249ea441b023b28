package models

import "math"

// NormKind says how a network normalises its activations.
type NormKind string

// Norm kinds.
const (
	// BatchNorm uses batch statistics in training and running statistics at
	// inference (the faithful M_CBN).
	BatchNorm NormKind = "batch"
	// GroupNorm normalises groups of channels per sample: no running
	// statistics, the same in training and at inference.
	GroupNorm NormKind = "group"
)

// NormEps is the epsilon of every normalisation, in training (train/) and
// in the exported graph (graphs/).
const NormEps = 1e-5

// FoldBatchNorm returns the per-channel scale and shift that apply a batch
// norm with running statistics at inference as one affine map,
// x̂ = x·scale + shift with scale = 1/√(var+ε) and shift = −mean·scale.
// Both lowerings fold the same way.
func FoldBatchNorm(mean, variance []float32) (scale, shift []float32) {
	scale, shift = make([]float32, len(mean)), make([]float32, len(mean))
	for c := range mean {
		scale[c] = float32(1 / math.Sqrt(float64(variance[c])+NormEps))
		shift[c] = -mean[c] * scale[c]
	}
	return scale, shift
}
