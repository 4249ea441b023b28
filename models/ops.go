// Package models holds condiff's networks, defined once against the small set
// of operations in Ops. train/ lowers them to gorgonia, graphs/ to ONNX, and
// the Shapes backend here evaluates only shapes (to list the parameters).
//
// A network knows nothing about diffusion: a denoiser maps (x, t, y) to a
// tensor shaped like x, a classifier maps x to logits and features.
package models

import "math"

// T is a backend's tensor handle: a gorgonia node, an ONNX value name, a shape.
type T = any

// Init says how a parameter starts before training.
type Init struct {
	Kind  string  // "normal" (std Scale/sqrt(FanIn)), "zeros", "ones"
	FanIn int     // inputs feeding one output, for "normal"
	Scale float64 // multiplier of the He standard deviation for "normal"
}

// Zeros, Ones and He are the initialisations the networks use.
var (
	Zeros = Init{Kind: "zeros"}
	Ones  = Init{Kind: "ones"}
)

// He is a normal initialisation with std sqrt(2/fanIn)·scale.
func He(fanIn int, scale float64) Init { return Init{Kind: "normal", FanIn: fanIn, Scale: scale} }

// Ops is what a backend provides. Shapes in comments use [N C H W].
type Ops interface {
	// Param returns the parameter with this name and shape.
	Param(name string, shape []int, init Init) T
	// Conv is a 2-D convolution: x [N Cin H W], w [Cout Cin k k], b [Cout],
	// square kernel, equal stride and padding on both axes.
	Conv(x, w, b T, stride, pad int) T
	// Linear: x [N In], w [In Out], b [Out] -> [N Out].
	Linear(x, w, b T) T
	// SiLU is x·sigmoid(x).
	SiLU(x T) T
	// Add adds two tensors of the same shape.
	Add(a, b T) T
	// AddChannels adds v [N C] to every pixel of x [N C H W].
	AddChannels(x, v T) T
	// Concat joins [N C1 H W] and [N C2 H W] along channels.
	Concat(a, b T) T
	// Upsample doubles H and W by nearest neighbour.
	Upsample(x T) T
	// NormAct is SiLU(x̂·gamma + beta): x [N C H W] normalised without
	// affine to x̂, then scaled and shifted per channel, then SiLU. kind
	// "batch" uses batch statistics in training and running statistics
	// (kept by the backend under name) at inference; kind "group" uses
	// groups of channels per sample. gamma and beta are [C] (shared by the
	// batch) or [N C] (one row per sample: the class-conditional norm).
	NormAct(x, gamma, beta T, name string, kind NormKind, groups int) T
	// Gather picks rows of table [K D] by the labels y -> [N D].
	Gather(table, y T) T
	// TimeEmbedding is the sinusoidal embedding of timesteps t -> [N dim].
	TimeEmbedding(t T, dim int) T
	// ToMap reshapes [N H·W] to [N 1 H W].
	ToMap(x T, h, w int) T
	// GlobalMean averages [N C H W] over H and W -> [N C].
	GlobalMean(x T) T
	// Attend is single-head dot-product attention over the H·W positions of
	// q, k, v [N C H W]: out[n,:,i] = Σ_j softmax_j(q[n,:,i]·k[n,:,j]/√C)·v[n,:,j],
	// shaped [N C H W].
	Attend(q, k, v T) T
}

// Sinusoid is the timestep embedding both lowerings use: for i < dim/2,
// freq_i = exp(−ln(10000)·i/(dim/2)) and emb = [cos(t·freq), sin(t·freq)],
// computed in float64 and rounded once.
func Sinusoid(t []int, dim int) []float32 {
	half := dim / 2
	out := make([]float32, len(t)*dim)
	for n, tv := range t {
		for i := 0; i < half; i++ {
			a := float64(tv) * math.Exp(-math.Log(10000)*float64(i)/float64(half))
			out[n*dim+i] = float32(math.Cos(a))
			out[n*dim+half+i] = float32(math.Sin(a))
		}
	}
	return out
}
