package goexec

import (
	"fmt"

	gt "gorgonia.org/tensor"
)

// dtype is an element type the executor computes with.
type dtype uint8

const (
	f32 dtype = iota + 1
	i64
	f64
)

func (d dtype) String() string {
	switch d {
	case f32:
		return "float32"
	case i64:
		return "int64"
	case f64:
		return "float64"
	}
	return "no type"
}

// tensor is a dense row-major tensor of float32, int64 or float64 (the
// last for PyTorch's timestep embeddings, which it computes in double). A slot's tensor
// keeps its backing array between runs (resize reuses it), so a model run
// at a batch size it has seen allocates nothing.
type tensor struct {
	dt    dtype
	shape []int
	f     []float32
	i     []int64
	d     []float64
	view  bool // f/i alias another slot's data (Reshape and the like)

	// The memory plan (memory.go), for a model's slots.
	mem  *memory // nil: not a slot; plain allocations
	base *tensor // a view's owner (nil: the caller's data or not a view)
	refs int     // views looking at this owner's buffer
	dead bool    // past its last reader: freed when refs reaches 0
	keep bool    // initializers and outputs: never released during a run
}

func (t *tensor) size() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// resize makes t a tensor of this type and shape, reusing its backing
// array where it is large enough.
func (t *tensor) resize(dt dtype, shape ...int) error {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > MaxElements/d) {
			return fmt.Errorf("shape %v is over %d elements", shape, MaxElements)
		}
		n *= d
	}
	t.dt = dt
	t.shape = append(t.shape[:0], shape...)
	if t.view {
		if t.base != nil && !t.base.keep {
			t.base.refs--
		}
		t.f, t.i, t.d, t.view, t.base = nil, nil, nil, false, nil
	}
	if t.mem != nil {
		return t.planned(dt, n)
	}
	t.f, t.i, t.d = t.f[:0], t.i[:0], t.d[:0]
	switch dt {
	case f32:
		t.f = grow(t.f, n)
	case i64:
		t.i = grow(t.i, n)
	case f64:
		t.d = grow(t.d, n)
	}
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// planned is resize for a slot: its own buffer if it fits, else one from
// the model's pool (its own going back there).
func (t *tensor) planned(dt dtype, n int) error {
	mm := t.mem
	switch {
	case dt == f32 && cap(t.f) >= n && t.i == nil && t.d == nil:
		t.f = t.f[:n]
		return nil
	case dt == i64 && cap(t.i) >= n && t.f == nil && t.d == nil:
		t.i = t.i[:n]
		return nil
	case dt == f64 && cap(t.d) >= n && t.f == nil && t.i == nil:
		t.d = t.d[:n]
		return nil
	}
	mm.free(t)
	var err error
	switch dt {
	case f32:
		t.f, err = take(mm, &mm.f32, n, 4)
	case i64:
		t.i, err = take(mm, &mm.i64, n, 8)
	case f64:
		t.d, err = take(mm, &mm.f64, n, 8)
	}
	return err
}

// alias makes t a view of src's data with another shape.
func (t *tensor) alias(src *tensor, shape []int) {
	if !t.view && t.mem != nil {
		t.mem.free(t) // its own buffer, if it has one, back to the pool
	}
	if t.view && t.base != nil && !t.base.keep {
		t.base.refs--
	}
	base := src
	if src.view {
		base = src.base
	}
	t.dt, t.view, t.base = src.dt, true, base
	if base != nil && !base.keep {
		base.refs++
	}
	t.shape = append(t.shape[:0], shape...)
	t.f, t.i, t.d = src.f, src.i, src.d
}

// fromGorgonia converts a tensor onnx-go decoded (an initializer or a
// Constant's value).
func fromGorgonia(v gt.Tensor) (*tensor, error) {
	if v == nil {
		return nil, fmt.Errorf("no tensor")
	}
	t := &tensor{shape: append([]int{}, v.Shape()...)}
	if v.Shape().IsScalar() {
		t.shape = nil
	}
	switch d := v.Data().(type) {
	case []float32:
		t.dt, t.f = f32, d
	case float32:
		t.dt, t.f = f32, []float32{d}
	case []int64:
		t.dt, t.i = i64, d
	case int64:
		t.dt, t.i = i64, []int64{d}
	case []int32:
		t.dt, t.i = i64, make([]int64, len(d))
		for k, x := range d {
			t.i[k] = int64(x)
		}
	case []float64:
		t.dt, t.d = f64, d
	case float64:
		t.dt, t.d = f64, []float64{d}
	default:
		return nil, fmt.Errorf("element type %v; the Go backend computes with float32, float64 and int64", v.Dtype())
	}
	if n := t.size(); n != t.len() {
		return nil, fmt.Errorf("shape %v holds %d values, the data %d", t.shape, n, t.len())
	}
	return t, nil
}

// ints reads a small int64 tensor (a shape, axes, an index) as ints.
func (t *tensor) ints() ([]int, error) {
	if t.dt != i64 {
		return nil, fmt.Errorf("a %s tensor where int64 is expected", t.dt)
	}
	out := make([]int, len(t.i))
	for k, x := range t.i {
		out[k] = int(x)
	}
	return out, nil
}

// len is the number of elements the data holds.
func (t *tensor) len() int { return len(t.f) + len(t.i) + len(t.d) }
