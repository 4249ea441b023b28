package goexec

// The operators that move or make values without arithmetic: Reshape,
// Unsqueeze, Flatten, Shape, Gather, Concat, Constant and Transpose.

import (
	"fmt"
	"math"

	gt "gorgonia.org/tensor"
)

// compileReshape is ONNX Reshape: any data and an int64 shape input, where
// 0 copies the input's dimension (a zero with allowzero = 1) and one −1 is
// inferred; the data is shared, not copied.
func compileReshape(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 2); err != nil {
		return nil, err
	}
	allowZero, err := a.int("allowzero", 0)
	if err != nil {
		return nil, err
	}
	var shape []int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "data"); err != nil {
			return err
		}
		if err := need(in, 1, i64, "shape"); err != nil {
			return err
		}
		x := in[0]
		shape = shape[:0]
		infer := -1
		known := 1
		for k, d := range in[1].i {
			switch {
			case d == 0 && allowZero == 0:
				if k >= len(x.shape) {
					return fmt.Errorf("shape %v copies dimension %d of a rank-%d input", in[1].i, k, len(x.shape))
				}
				shape = append(shape, x.shape[k])
			case d == -1:
				if infer >= 0 {
					return fmt.Errorf("shape %v has two -1", in[1].i)
				}
				infer = k
				shape = append(shape, 1)
				continue
			case d < 0:
				return fmt.Errorf("shape %v has a negative dimension", in[1].i)
			default:
				if d > MaxElements {
					return fmt.Errorf("shape %v is over %d elements", in[1].i, MaxElements)
				}
				shape = append(shape, int(d))
			}
			known *= shape[len(shape)-1]
			if known > MaxElements {
				return fmt.Errorf("shape %v is over %d elements", in[1].i, MaxElements)
			}
		}
		n := x.size()
		if infer >= 0 {
			if known == 0 || n%known != 0 {
				return fmt.Errorf("cannot reshape %v to %v", x.shape, in[1].i)
			}
			shape[infer] = n / known
		} else if known != n {
			return fmt.Errorf("cannot reshape %v (%d values) to %v", x.shape, n, in[1].i)
		}
		out.alias(x, shape)
		return nil
	}, a.check()
}

// compileUnsqueeze is ONNX Unsqueeze (opset ≥ 13: axes an int64 input,
// negative ones counted from the end); repeated or out-of-range axes are
// refused.
func compileUnsqueeze(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 2); err != nil {
		return nil, err
	}
	var shape []int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "data"); err != nil {
			return err
		}
		if err := need(in, 1, i64, "axes"); err != nil {
			return err
		}
		x := in[0]
		r := len(x.shape) + len(in[1].i)
		ins := make([]bool, r)
		for _, ax := range in[1].i {
			k := int(ax)
			if k < 0 {
				k += r
			}
			if k < 0 || k >= r || ins[k] {
				return fmt.Errorf("axes %v do not fit rank %d", in[1].i, r)
			}
			ins[k] = true
		}
		shape = shape[:0]
		j := 0
		for k := 0; k < r; k++ {
			if ins[k] {
				shape = append(shape, 1)
			} else {
				shape = append(shape, x.shape[j])
				j++
			}
		}
		out.alias(x, shape)
		return nil
	}, a.check()
}

// compileFlatten is ONNX Flatten: [d0 … d(axis−1), d(axis) …] to two
// dimensions, axis negative or not.
func compileFlatten(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	axis, err := a.int("axis", 1)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "input"); err != nil {
			return err
		}
		x := in[0]
		ax := axis
		if ax < 0 {
			ax += len(x.shape)
		}
		if ax < 0 || ax > len(x.shape) {
			return fmt.Errorf("axis %d out of range for rank %d", axis, len(x.shape))
		}
		outer := 1
		for _, d := range x.shape[:ax] {
			outer *= d
		}
		inner := 1
		for _, d := range x.shape[ax:] {
			inner *= d
		}
		out.alias(x, []int{outer, inner})
		return nil
	}, a.check()
}

// compileShape is ONNX Shape: the input's dimensions as int64, with start
// and end (opset 15) clamped as ONNX clamps them.
func compileShape(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	start, err := a.int("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := a.int("end", math.MaxInt32)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "data"); err != nil {
			return err
		}
		r := len(in[0].shape)
		clamp := func(k int) int {
			if k < 0 {
				k += r
			}
			return min(max(k, 0), r)
		}
		lo, hi := clamp(start), clamp(end)
		hi = max(hi, lo)
		if err := out.resize(i64, hi-lo); err != nil {
			return err
		}
		for k := lo; k < hi; k++ {
			out.i[k-lo] = int64(in[0].shape[k])
		}
		return nil
	}, a.check()
}

// compileGather is ONNX Gather along axis (negative counted from the end)
// with int64 indices, negative ones counted from the end of the axis; an
// index out of range fails the run (the label embedding's lookup).
func compileGather(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 2, 2); err != nil {
		return nil, err
	}
	axis, err := a.int("axis", 0)
	if err != nil {
		return nil, err
	}
	var shape []int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "data"); err != nil {
			return err
		}
		if err := need(in, 1, i64, "indices"); err != nil {
			return err
		}
		x, idx := in[0], in[1]
		r := len(x.shape)
		ax := axis
		if ax < 0 {
			ax += r
		}
		if ax < 0 || ax >= r {
			return fmt.Errorf("axis %d out of range for rank %d", axis, r)
		}
		shape = append(append(append(shape[:0], x.shape[:ax]...), idx.shape...), x.shape[ax+1:]...)
		if err := out.resize(x.dt, shape...); err != nil {
			return err
		}
		outer, inner := 1, 1
		for _, d := range x.shape[:ax] {
			outer *= d
		}
		for _, d := range x.shape[ax+1:] {
			inner *= d
		}
		dim := x.shape[ax]
		ni := len(idx.i)
		for o := 0; o < outer; o++ {
			for k, j := range idx.i {
				if j < 0 {
					j += int64(dim)
				}
				if j < 0 || j >= int64(dim) {
					return fmt.Errorf("index %d out of range [%d, %d)", idx.i[k], -dim, dim)
				}
				src := (o*dim + int(j)) * inner
				dst := (o*ni + k) * inner
				switch x.dt {
				case f32:
					copy(out.f[dst:dst+inner], x.f[src:src+inner])
				case i64:
					copy(out.i[dst:dst+inner], x.i[src:src+inner])
				case f64:
					copy(out.d[dst:dst+inner], x.d[src:src+inner])
				}
			}
		}
		return nil
	}, a.check()
}

// compileConcat is ONNX Concat of one or more inputs of one element type
// along the required attribute axis (negative counted from the end); the
// other dimensions must agree.
func compileConcat(a attrs, nin int) (opFunc, error) {
	if nin < 1 {
		return nil, fmt.Errorf("no inputs")
	}
	axis, err := a.int("axis", math.MinInt32)
	if err != nil {
		return nil, err
	}
	if axis == math.MinInt32 {
		return nil, fmt.Errorf("attribute axis is required")
	}
	var shape []int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "input"); err != nil {
			return err
		}
		for k := range in {
			if err := need(in, k, in[0].dt, "input"); err != nil {
				return err
			}
		}
		x := in[0]
		r := len(x.shape)
		ax := axis
		if ax < 0 {
			ax += r
		}
		if ax < 0 || ax >= r {
			return fmt.Errorf("axis %d out of range for rank %d", axis, r)
		}
		shape = append(shape[:0], x.shape...)
		shape[ax] = 0
		for _, t := range in {
			if len(t.shape) != r {
				return fmt.Errorf("inputs of ranks %d and %d", r, len(t.shape))
			}
			for d := range t.shape {
				if d != ax && t.shape[d] != x.shape[d] {
					return fmt.Errorf("inputs of shapes %v and %v", x.shape, t.shape)
				}
			}
			shape[ax] += t.shape[ax]
		}
		if err := out.resize(x.dt, shape...); err != nil {
			return err
		}
		outer := 1
		for _, d := range x.shape[:ax] {
			outer *= d
		}
		inner := 1
		for _, d := range x.shape[ax+1:] {
			inner *= d
		}
		row := shape[ax] * inner
		off := 0
		for _, t := range in {
			w := t.shape[ax] * inner
			for o := 0; o < outer; o++ {
				switch x.dt {
				case f32:
					copy(out.f[o*row+off:o*row+off+w], t.f[o*w:(o+1)*w])
				case i64:
					copy(out.i[o*row+off:o*row+off+w], t.i[o*w:(o+1)*w])
				case f64:
					copy(out.d[o*row+off:o*row+off+w], t.d[o*w:(o+1)*w])
				}
			}
			off += w
		}
		return nil
	}, a.check()
}

// compileConstant is ONNX Constant from value (a tensor), value_float,
// value_int or value_ints; the string and sparse forms are refused.
func compileConstant(a attrs, nin int) (opFunc, error) {
	// onnx-go gives an input-less operator one placeholder input.
	if err := inputs(nin, 0, 1); err != nil {
		return nil, err
	}
	var c *tensor
	a.read["value"] = true
	if v, ok := a.m["value"]; ok {
		t, isTensor := v.(gt.Tensor)
		if !isTensor {
			return nil, fmt.Errorf("attribute value: %T, want a tensor", v)
		}
		var err error
		if c, err = fromGorgonia(t); err != nil {
			return nil, fmt.Errorf("attribute value: %w", err)
		}
	}
	if f, err := a.float("value_float", float32(math.NaN())); err != nil {
		return nil, err
	} else if _, ok := a.m["value_float"]; ok {
		c = &tensor{dt: f32, f: []float32{f}}
	}
	if i, err := a.int("value_int", 0); err != nil {
		return nil, err
	} else if _, ok := a.m["value_int"]; ok {
		c = &tensor{dt: i64, i: []int64{int64(i)}}
	}
	if v, ok, err := a.ints("value_ints"); err != nil {
		return nil, err
	} else if ok {
		c = &tensor{dt: i64, shape: []int{len(v)}}
		for _, x := range v {
			c.i = append(c.i, int64(x))
		}
	}
	if c == nil {
		return nil, fmt.Errorf("no value, value_float, value_int or value_ints attribute")
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		out.alias(c, c.shape)
		return nil
	}, a.check()
}

// compileTranspose is ONNX Transpose of a float32 tensor of rank ≤ 4 by an
// explicit perm (the default reversal is refused: condiff's exports always
// give perm).
func compileTranspose(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	perm, ok, err := a.ints("perm")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("attribute perm: missing; the Go backend needs it")
	}
	if len(perm) > 4 {
		return nil, fmt.Errorf("attribute perm %v: the Go backend transposes up to 4 axes", perm)
	}
	seen := make([]bool, len(perm))
	for _, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("attribute perm %v is not a permutation", perm)
		}
		seen[p] = true
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "data"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) != len(perm) {
			return fmt.Errorf("data %v has rank %d, perm %v has %d", x.shape, len(x.shape), perm, len(perm))
		}
		// Pad to rank 4 at the front: shape d, strides of the input.
		r := len(perm)
		d, st := [4]int{1, 1, 1, 1}, [4]int{}
		stride := 1
		in4 := [4]int{}
		for i := r - 1; i >= 0; i-- {
			in4[i] = stride
			stride *= x.shape[i]
		}
		shape := make([]int, r)
		for i, p := range perm {
			shape[i] = x.shape[p]
			d[4-r+i], st[4-r+i] = x.shape[p], in4[p]
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		o := 0
		for i0 := 0; i0 < d[0]; i0++ {
			for i1 := 0; i1 < d[1]; i1++ {
				for i2 := 0; i2 < d[2]; i2++ {
					base := i0*st[0] + i1*st[1] + i2*st[2]
					for i3 := 0; i3 < d[3]; i3++ {
						out.f[o] = x.f[base+i3*st[3]]
						o++
					}
				}
			}
		}
		return nil
	}, a.check()
}
