package goexec

// The elementwise operators: Add and Mul (with broadcasting), Sigmoid, Sin,
// Cos, Identity and Cast.

import (
	"fmt"
	"math"
	"slices"
)

func sigmoid32(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// unary is an elementwise operator of one float input (float32, or
// float64 in the shape arithmetic; int64 is refused) and no attributes:
// ONNX Sigmoid, Sin and Cos (the timestep embedding).
func unary(f func(float32) float32, d func(float64) float64) compiler {
	return func(a attrs, nin int) (opFunc, error) {
		if err := inputs(nin, 1, 1); err != nil {
			return nil, err
		}
		return func(m *Model, in []*tensor, out *tensor) error {
			if err := need(in, 0, 0, "X"); err != nil {
				return err
			}
			x := in[0]
			if x.dt == i64 {
				return fmt.Errorf("input X is int64, want float")
			}
			if err := out.resize(x.dt, x.shape...); err != nil {
				return err
			}
			if x.dt == f64 {
				for i, v := range x.d {
					out.d[i] = d(v)
				}
				return nil
			}
			xs, y := x.f, out.f
			m.parallel(len(xs), 4096, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					y[i] = f(xs[i])
				}
			})
			return nil
		}, a.check()
	}
}

// compileIdentity is ONNX Identity: the input, of any element type, passed
// on; no attributes.
func compileIdentity(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "input"); err != nil {
			return err
		}
		out.alias(in[0], in[0].shape)
		return nil
	}, a.check()
}

// broadcastShape is the numpy-style broadcast of two shapes.
func broadcastShape(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if k := i - (n - len(a)); k >= 0 {
			da = a[k]
		}
		if k := i - (n - len(b)); k >= 0 {
			db = b[k]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// strides of a shape left-padded to rank n, 0 along broadcast dimensions.
func bstrides(shape []int, n int, out []int) []int {
	out = out[:0]
	for i := 0; i < n; i++ {
		out = append(out, 0)
	}
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 {
			out[n-len(shape)+i] = s
		}
		s *= shape[i]
	}
	return out
}

type number interface{ float32 | float64 | int64 }

// binOp is an elementwise operator for each element type, and for
// float32 its row loops (one call per row, not per element): vv over two
// rows, vs over a row and a broadcast value. Both operators commute, so vs
// serves a broadcast value on either side.
type binOp struct {
	f  func(x, y float32) float32
	d  func(x, y float64) float64
	i  func(x, y int64) int64
	vv func(o, x, y []float32)
	vs func(o, x []float32, b float32)
}

var (
	addOp = binOp{func(x, y float32) float32 { return x + y }, func(x, y float64) float64 { return x + y }, func(x, y int64) int64 { return x + y },
		func(o, x, y []float32) {
			x, y = x[:len(o)], y[:len(o)]
			for j := range o {
				o[j] = x[j] + y[j]
			}
		},
		func(o, x []float32, b float32) {
			x = x[:len(o)]
			for j := range o {
				o[j] = x[j] + b
			}
		}}
	mulOp = binOp{func(x, y float32) float32 { return x * y }, func(x, y float64) float64 { return x * y }, func(x, y int64) int64 { return x * y },
		func(o, x, y []float32) {
			x, y = x[:len(o)], y[:len(o)]
			for j := range o {
				o[j] = x[j] * y[j]
			}
		},
		func(o, x []float32, b float32) {
			x = x[:len(o)]
			for j := range o {
				o[j] = x[j] * b
			}
		}}
)

// rowLoops are the row loops of f, for the element types without their
// own (float64 and int64: shape arithmetic, small).
func rowLoops[T number](f func(x, y T) T) (func(o, x, y []T), func(o, x []T, b T)) {
	return func(o, x, y []T) {
			for j := range o {
				o[j] = f(x[j], y[j])
			}
		}, func(o, x []T, b T) {
			for j := range o {
				o[j] = f(x[j], b)
			}
		}
}

// runRows applies an operator to the rows of a broadcast with its row
// loops vv and vs: row r of the output (inner elements) reads x from
// offX(r) stepping ix and y from offY(r) stepping iy; f serves the strided
// rows that neither loop takes.
func runRows[T number](m *Model, f func(x, y T) T, vv func(o, x, y []T), vs func(o, x []T, b T), x, y, out []T, rows, inner, ix, iy int, off func(r int, idx []int) (int, int), rank int) {
	if rows == 1 && ix == 1 && iy == 1 {
		m.parallel(len(out), 4096, func(lo, hi int) { vv(out[lo:hi], x[lo:hi], y[lo:hi]) })
		return
	}
	m.parallel(rows, max(1, 2048/max(inner, 1)), func(lo, hi int) {
		idx := make([]int, rank)
		for r := lo; r < hi; r++ {
			ox, oy := off(r, idx)
			o := out[r*inner : (r+1)*inner]
			switch {
			case ix == 1 && iy == 1:
				vv(o, x[ox:ox+inner], y[oy:oy+inner])
			case ix == 1 && iy == 0:
				vs(o, x[ox:ox+inner], y[oy])
			case ix == 0 && iy == 1: // the operators commute
				vs(o, y[oy:oy+inner], x[ox])
			default:
				for j := range o {
					o[j] = f(x[ox+j*ix], y[oy+j*iy])
				}
			}
		}
	})
}

// binary is ONNX Add and Mul: float32, float64 or int64 inputs of one type
// with numpy broadcasting, no attributes. The output is walked in rows of
// its trailing dimensions merged while both inputs step alike along them
// (x [N C H W] + y [N C 1 1]: rows of H·W with y fixed).
func binary(op binOp) compiler {
	return func(a attrs, nin int) (opFunc, error) {
		if err := inputs(nin, 2, 2); err != nil {
			return nil, err
		}
		var sx, sy []int
		return func(m *Model, in []*tensor, out *tensor) error {
			if err := need(in, 0, 0, "A"); err != nil {
				return err
			}
			if err := need(in, 1, in[0].dt, "B"); err != nil {
				return err
			}
			x, y := in[0], in[1]
			shape, err := broadcastShape(x.shape, y.shape)
			if err != nil {
				return err
			}
			if err := out.resize(x.dt, shape...); err != nil {
				return err
			}
			n := len(shape)
			rows, inner, ix, iy, k := 1, out.size(), 1, 1, 0
			if n > 0 && !slices.Equal(x.shape, y.shape) {
				sx, sy = bstrides(x.shape, n, sx), bstrides(y.shape, n, sy)
				inner, k = shape[n-1], n-1
				ix, iy = min(sx[n-1], 1), min(sy[n-1], 1)
				merges := func(d int, stride []int, step int) bool {
					return shape[d] == 1 || (step == 1 && stride[d] == inner) || (step == 0 && stride[d] == 0)
				}
				for k > 0 && merges(k-1, sx, ix) && merges(k-1, sy, iy) {
					inner *= shape[k-1]
					k--
				}
				rows = out.size() / max(inner, 1)
			}
			outer := shape[:k]
			off := func(r int, idx []int) (int, int) {
				ox, oy := 0, 0
				for d := len(outer) - 1; d >= 0; d-- {
					idx[d] = r % outer[d]
					r /= outer[d]
					ox += idx[d] * sx[d]
					oy += idx[d] * sy[d]
				}
				return ox, oy
			}
			switch x.dt {
			case f32:
				runRows(m, op.f, op.vv, op.vs, x.f, y.f, out.f, rows, inner, ix, iy, off, len(outer))
			case f64:
				vv, vs := rowLoops(op.d)
				runRows(m, op.d, vv, vs, x.d, y.d, out.d, rows, inner, ix, iy, off, len(outer))
			case i64:
				vv, vs := rowLoops(op.i)
				runRows(m, op.i, vv, vs, x.i, y.i, out.i, rows, inner, ix, iy, off, len(outer))
			}
			return nil
		}, a.check()
	}
}

// compileCast is ONNX Cast between float32 (1), int64 (7) and float64 (11);
// saturate is taken and changes nothing (it concerns 8-bit floats); any
// other target type is refused.
func compileCast(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	to, err := a.int("to", 0)
	if err != nil {
		return nil, err
	}
	if _, err := a.int("saturate", 1); err != nil {
		return nil, err
	}
	var dt dtype
	switch to {
	case 1:
		dt = f32
	case 7:
		dt = i64
	case 11:
		dt = f64
	default:
		return nil, fmt.Errorf("attribute to = %d; the Go backend casts to float32 (1), int64 (7) and float64 (11)", to)
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, 0, "input"); err != nil {
			return err
		}
		x := in[0]
		if x.dt == dt {
			out.alias(x, x.shape)
			return nil
		}
		if err := out.resize(dt, x.shape...); err != nil {
			return err
		}
		switch {
		case x.dt == f32 && dt == f64:
			castTo(x.f, out.d)
		case x.dt == f32 && dt == i64:
			castTo(x.f, out.i) // truncation toward zero, as ONNX's Cast
		case x.dt == i64 && dt == f32:
			castTo(x.i, out.f)
		case x.dt == i64 && dt == f64:
			castTo(x.i, out.d)
		case x.dt == f64 && dt == f32:
			castTo(x.d, out.f)
		case x.dt == f64 && dt == i64:
			castTo(x.d, out.i)
		}
		return nil
	}, a.check()
}

func castTo[S, D number](src []S, dst []D) {
	for k, v := range src {
		dst[k] = D(v)
	}
}
