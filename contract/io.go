package contract

import (
	"fmt"
	"strconv"
	"strings"
)

// Element types, as condiff names them.
const (
	Float32 = "float32"
	Int64   = "int64"
)

// Tensor is one graph input or output: its name, element type and shape;
// a dimension of -1 is dynamic (or unknown).
type Tensor struct {
	Name string
	Type string // Float32, Int64, or another type's name
	Dims []int64
}

// ShapeString prints dims with N for a dynamic axis: [N 1 28 28].
func ShapeString(dims []int64) string {
	s := make([]string, len(dims))
	for i, v := range dims {
		if v < 0 {
			s[i] = "N"
		} else {
			s[i] = strconv.FormatInt(v, 10)
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Inputs is what the contract wants as graph inputs, in the order the
// sampler feeds them.
func (in Info) Inputs() []Tensor {
	c, s := int64(in.Channels), int64(in.ImageSize)
	want := []Tensor{{InputX, Float32, []int64{-1, c, s, s}}}
	if in.Kind == Classifier {
		return want
	}
	want = append(want, Tensor{InputT, Int64, []int64{-1}})
	if in.Conditional() {
		want = append(want, Tensor{InputY, Int64, []int64{-1}})
	}
	return want
}

// Outputs is what the contract wants as graph outputs, in order.
func (in Info) Outputs() []Tensor {
	if in.Kind == Classifier {
		return []Tensor{{OutputLogits, Float32, []int64{-1, int64(in.NumClasses)}}, {OutputFeatures, Float32, []int64{-1, -1}}}
	}
	c, s := int64(in.Channels), int64(in.ImageSize)
	return []Tensor{{OutputEps, Float32, []int64{-1, c, s, s}}}
}

// Check compares a model's graph inputs and outputs with what the contract
// wants for in: the same names, types and ranks, and equal sizes wherever
// both sides fix one. The sampler checks this before it opens a session,
// inspect before it says yes.
func Check(file string, in Info, inputs, outputs []Tensor) error {
	if err := checkSet(file, "input", inputs, in.Inputs()); err != nil {
		return err
	}
	return checkSet(file, "output", outputs, in.Outputs())
}

func checkSet(file, what string, got, want []Tensor) error {
	names := make([]string, len(got))
	for i, g := range got {
		names[i] = g.Name
	}
	for _, w := range want {
		i := index(got, w.Name)
		if i < 0 {
			return fmt.Errorf("contract: %s: %s %q is missing (the model has %s)", file, what, w.Name, strings.Join(names, ", "))
		}
		g := got[i]
		if g.Type != w.Type {
			return fmt.Errorf("contract: %s: %s %q: want %s, got %s", file, what, w.Name, w.Type, g.Type)
		}
		if len(g.Dims) != len(w.Dims) {
			return fmt.Errorf("contract: %s: %s %q: want shape %s, got %s", file, what, w.Name, ShapeString(w.Dims), ShapeString(g.Dims))
		}
		for d := range w.Dims {
			if w.Dims[d] >= 0 && g.Dims[d] >= 0 && g.Dims[d] != w.Dims[d] {
				return fmt.Errorf("contract: %s: %s %q: want shape %s, got %s", file, what, w.Name, ShapeString(w.Dims), ShapeString(g.Dims))
			}
		}
	}
	for _, g := range got {
		if index(want, g.Name) < 0 {
			wn := make([]string, len(want))
			for i, w := range want {
				wn[i] = w.Name
			}
			return fmt.Errorf("contract: %s: %s %q is not in the contract (a %s model has %s)", file, what, g.Name, kindOf(want), strings.Join(wn, ", "))
		}
	}
	return nil
}

func kindOf(want []Tensor) string {
	if index(want, OutputLogits) >= 0 {
		return string(Classifier)
	}
	return string(Denoiser) + " of this variant"
}

func index(ts []Tensor, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}
