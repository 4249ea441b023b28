package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/condiff/condiff/contract"
)

// Array is a dense float32 tensor, row-major.
type Array struct {
	Shape []int
	Data  []float32
}

// NewArray returns a zero array of the given shape.
func NewArray(shape ...int) Array {
	return Array{Shape: slices.Clone(shape), Data: make([]float32, Numel(shape))}
}

// Numel is the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Clone deep-copies an array.
func (a Array) Clone() Array { return Array{Shape: slices.Clone(a.Shape), Data: slices.Clone(a.Data)} }

// ParamSpec is one parameter: its name (the contract between checkpoint,
// gorgonia graph and ONNX initializer), shape and initialisation.
type ParamSpec struct {
	Name  string
	Shape []int
	Init  Init
}

// NormSpec is one normalisation layer with its channel count; batch norms
// keep running statistics under Name+".running_mean" / ".running_var".
type NormSpec struct {
	Name     string
	Channels int
}

// Shapes is an Ops backend that computes shapes only. Running a network on
// it lists the network's parameters and norms in a fixed order.
type Shapes struct {
	Params []ParamSpec
	Norms  []NormSpec
}

func (s *Shapes) Param(name string, shape []int, init Init) T {
	for _, p := range s.Params {
		if p.Name == name {
			panic(fmt.Sprintf("models: parameter %q declared twice", name))
		}
	}
	s.Params = append(s.Params, ParamSpec{name, slices.Clone(shape), init})
	return slices.Clone(shape)
}

func shp(x T) []int { return x.([]int) }

func (s *Shapes) Conv(x, w, b T, stride, pad int) T {
	xs, ws := shp(x), shp(w)
	if xs[1] != ws[1] {
		panic(fmt.Sprintf("models: conv input has %d channels, weight wants %d", xs[1], ws[1]))
	}
	out := func(n int) int { return (n+2*pad-ws[2])/stride + 1 }
	return []int{xs[0], ws[0], out(xs[2]), out(xs[3])}
}
func (s *Shapes) Linear(x, w, b T) T { return []int{shp(x)[0], shp(w)[1]} }
func (s *Shapes) SiLU(x T) T         { return x }
func (s *Shapes) Add(a, b T) T {
	if !slices.Equal(shp(a), shp(b)) {
		panic(fmt.Sprintf("models: add %v and %v", a, b))
	}
	return a
}
func (s *Shapes) AddChannels(x, v T) T { return x }
func (s *Shapes) Concat(a, b T) T {
	as, bs := shp(a), shp(b)
	return []int{as[0], as[1] + bs[1], as[2], as[3]}
}
func (s *Shapes) Upsample(x T) T {
	xs := shp(x)
	return []int{xs[0], xs[1], 2 * xs[2], 2 * xs[3]}
}
func (s *Shapes) NormAct(x, g, b T, name string, kind NormKind, groups int) T {
	s.Norms = append(s.Norms, NormSpec{name, shp(x)[1]})
	return x
}
func (s *Shapes) Gather(table, y T) T          { return []int{shp(y)[0], shp(table)[1]} }
func (s *Shapes) TimeEmbedding(t T, dim int) T { return []int{shp(t)[0], dim} }
func (s *Shapes) ToMap(x T, h, w int) T        { return []int{shp(x)[0], 1, h, w} }
func (s *Shapes) GlobalMean(x T) T             { return shp(x)[:2] }
func (s *Shapes) Attend(q, k, v T) T {
	if !slices.Equal(shp(q), shp(k)) || !slices.Equal(shp(q), shp(v)) {
		panic(fmt.Sprintf("models: Attend of q %v, k %v, v %v", shp(q), shp(k), shp(v)))
	}
	return q
}

// Trace runs the network of cfg on the Shapes backend with batch n and returns
// it with the shape of the output (logits for a classifier).
func Trace(cfg Config, n int) (*Shapes, []int) {
	s := &Shapes{}
	x := []int{n, cfg.Channels, cfg.ImageSize, cfg.ImageSize}
	if cfg.Kind == contract.Classifier {
		logits, _ := Classifier{cfg}.Forward(s, x)
		return s, shp(logits)
	}
	return s, shp(Denoiser{cfg}.Forward(s, x, []int{n}, []int{n}))
}

// InitParams draws every parameter of cfg from its initialisation, seeded.
func InitParams(cfg Config, seed uint64) map[string]Array {
	s, _ := Trace(cfg, 1)
	rng := rand.New(rand.NewPCG(seed, 0x636f6e64696666))
	out := make(map[string]Array, len(s.Params))
	for _, p := range s.Params {
		a := NewArray(p.Shape...)
		switch p.Init.Kind {
		case "ones":
			for i := range a.Data {
				a.Data[i] = 1
			}
		case "normal":
			std := p.Init.Scale * math.Sqrt(2/float64(p.Init.FanIn))
			for i := range a.Data {
				a.Data[i] = float32(rng.NormFloat64() * std)
			}
		}
		out[p.Name] = a
	}
	return out
}

// InitNormStats returns running mean 0 and variance 1 for every batch norm.
func InitNormStats(cfg Config) map[string]Array {
	out := map[string]Array{}
	if cfg.Norm != BatchNorm {
		return out
	}
	s, _ := Trace(cfg, 1)
	for _, n := range s.Norms {
		m, v := NewArray(n.Channels), NewArray(n.Channels)
		for i := range v.Data {
			v.Data[i] = 1
		}
		out[n.Name+".running_mean"], out[n.Name+".running_var"] = m, v
	}
	return out
}

// CountParams is the number of scalars in the parameters of cfg.
func CountParams(cfg Config) int {
	s, _ := Trace(cfg, 1)
	n := 0
	for _, p := range s.Params {
		n += Numel(p.Shape)
	}
	return n
}
