package goexec

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/condiff/condiff/internal/kernel"

	gt "gorgonia.org/tensor"
)

// attrs reads a node's attributes as onnx-go decoded them (INT: int64,
// INTS: []int64, FLOAT: float32, STRING: string, TENSOR: a tensor), and
// remembers which were read so that check can refuse the others.
type attrs struct {
	m    map[string]any
	read map[string]bool
}

func (a attrs) int(name string, def int) (int, error) {
	a.read[name] = true
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	i, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("attribute %s: %T, want an int", name, v)
	}
	return int(i), nil
}

func (a attrs) ints(name string) ([]int, bool, error) {
	a.read[name] = true
	v, ok := a.m[name]
	if !ok {
		return nil, false, nil
	}
	s, ok := v.([]int64)
	if !ok {
		return nil, true, fmt.Errorf("attribute %s: %T, want ints", name, v)
	}
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = int(x)
	}
	return out, true, nil
}

func (a attrs) float(name string, def float32) (float32, error) {
	a.read[name] = true
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	f, ok := v.(float32)
	if !ok {
		return 0, fmt.Errorf("attribute %s: %T, want a float", name, v)
	}
	return f, nil
}

func (a attrs) str(name, def string) (string, error) {
	a.read[name] = true
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("attribute %s: %T, want a string", name, v)
	}
	return s, nil
}

// oneOf reads a string attribute that must be one of the allowed values.
func (a attrs) oneOf(name, def string, allowed ...string) (string, error) {
	s, err := a.str(name, def)
	if err == nil && !slices.Contains(allowed, s) {
		err = fmt.Errorf("attribute %s = %q; the Go backend supports %q", name, s, allowed)
	}
	return s, err
}

// check refuses attributes the compiler did not read: an attribute the
// executor would ignore could change the result.
func (a attrs) check() error {
	var extra []string
	for k := range a.m {
		if !a.read[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("attributes %q are not supported by the Go backend", extra)
	}
	return nil
}

// compiler checks a node's attributes and input count and returns its
// kernel.
type compiler func(a attrs, nin int) (opFunc, error)

var compilers map[string]compiler

func init() {
	compilers = map[string]compiler{
		"Add":                   binary(addOp),
		"Mul":                   binary(mulOp),
		"Sigmoid":               unary(sigmoid32, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }),
		"Sin":                   unary(func(x float32) float32 { return float32(math.Sin(float64(x))) }, math.Sin),
		"Cos":                   unary(func(x float32) float32 { return float32(math.Cos(float64(x))) }, math.Cos),
		"Identity":              compileIdentity,
		"Conv":                  compileConv,
		"MatMul":                compileMatMul,
		"Transpose":             compileTranspose,
		"Softmax":               compileSoftmax,
		"Gemm":                  compileGemm,
		"InstanceNormalization": compileInstanceNorm,
		"BatchNormalization":    compileBatchNorm,
		"Reshape":               compileReshape,
		"Unsqueeze":             compileUnsqueeze,
		"Flatten":               compileFlatten,
		"Shape":                 compileShape,
		"Gather":                compileGather,
		"Concat":                compileConcat,
		"Cast":                  compileCast,
		"Constant":              compileConstant,
		"Resize":                compileResize,
		"GlobalAveragePool":     compileGlobalAveragePool,
	}
}

// Supported lists the operators the Go backend runs.
func Supported() []string {
	var s []string
	for k := range compilers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func inputs(nin int, lo, hi int) error {
	if nin < lo || nin > hi {
		if lo == hi {
			return fmt.Errorf("%d inputs, want %d", nin, lo)
		}
		return fmt.Errorf("%d inputs, want %d to %d", nin, lo, hi)
	}
	return nil
}

// need fails when a required input is missing or of the wrong type.
func need(in []*tensor, k int, dt dtype, what string) error {
	if k >= len(in) || in[k] == nil {
		return fmt.Errorf("input %d (%s) is missing", k, what)
	}
	if dt != 0 && in[k].dt != dt {
		return fmt.Errorf("input %d (%s) is %s, want %s", k, what, in[k].dt, dt)
	}
	return nil
}

// needs is need for inputs 0, 1, … of one type, named in order.
func needs(in []*tensor, dt dtype, names ...string) error {
	for k, what := range names {
		if err := need(in, k, dt, what); err != nil {
			return err
		}
	}
	return nil
}

func sigmoid32(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

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

// binOp is an elementwise operator for each element type.
type binOp struct {
	f func(x, y float32) float32
	d func(x, y float64) float64
	i func(x, y int64) int64
}

var (
	addOp = binOp{func(x, y float32) float32 { return x + y }, func(x, y float64) float64 { return x + y }, func(x, y int64) int64 { return x + y }}
	mulOp = binOp{func(x, y float32) float32 { return x * y }, func(x, y float64) float64 { return x * y }, func(x, y int64) int64 { return x * y }}
)

// run applies f to the rows of a broadcast: row r of the output (inner
// elements) reads x from offX(r) stepping ix and y from offY(r) stepping iy.
func runRows[T number](m *Model, f func(x, y T) T, x, y, out []T, rows, inner, ix, iy int, off func(r int, idx []int) (int, int), rank int) {
	if rows == 1 && ix == 1 && iy == 1 {
		m.parallel(len(out), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = f(x[i], y[i])
			}
		})
		return
	}
	m.parallel(rows, max(1, 2048/max(inner, 1)), func(lo, hi int) {
		idx := make([]int, rank)
		for r := lo; r < hi; r++ {
			ox, oy := off(r, idx)
			o := out[r*inner : (r+1)*inner]
			switch {
			case ix == 1 && iy == 0:
				b := y[oy]
				xs := x[ox : ox+inner]
				for j := range o {
					o[j] = f(xs[j], b)
				}
			case ix == 0 && iy == 1:
				a := x[ox]
				ys := y[oy : oy+inner]
				for j := range o {
					o[j] = f(a, ys[j])
				}
			default:
				for j := range o {
					o[j] = f(x[ox+j*ix], y[oy+j*iy])
				}
			}
		}
	})
}

// binary is an elementwise operator with numpy broadcasting: the output is
// walked in rows of its trailing dimensions merged while both inputs step
// alike along them (x [N C H W] + y [N C 1 1]: rows of H·W with y fixed).
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
				runRows(m, op.f, x.f, y.f, out.f, rows, inner, ix, iy, off, len(outer))
			case f64:
				runRows(m, op.d, x.d, y.d, out.d, rows, inner, ix, iy, off, len(outer))
			case i64:
				runRows(m, op.i, x.i, y.i, out.i, rows, inner, ix, iy, off, len(outer))
			}
			return nil
		}, a.check()
	}
}

// parallel splits [0, n) into ranges over the model's goroutines, each at
// least grain long and cut into blocks of at most StopBlock elements
// between which Stop is looked at; small work runs inline.
func (m *Model) parallel(n, grain int, f func(lo, hi int)) {
	w := min(m.threads, n/max(grain, 1))
	if w <= 1 {
		for b := 0; b < n && !m.stopped(); b += StopBlock {
			f(b, min(n, b+StopBlock))
		}
		return
	}
	m.workers(w, func(k int) {
		lo, hi := k*n/w, (k+1)*n/w
		for b := lo; b < hi && !m.stopped(); b += StopBlock {
			f(b, min(hi, b+StopBlock))
		}
	})
}

// workers runs f(0) … f(w−1) on goroutines of their own and waits for
// them all; a panic in one is handed on to the caller (runStep makes it
// the node's error) instead of ending the program.
func (m *Model) workers(w int, f func(k int)) {
	if w == 1 {
		f(0)
		return
	}
	done := make(chan any, w)
	for k := 0; k < w; k++ {
		go func() {
			defer func() { done <- recover() }()
			f(k)
		}()
	}
	var first any
	for k := 0; k < w; k++ {
		if r := <-done; r != nil && first == nil {
			first = r
		}
	}
	if first != nil {
		panic(first)
	}
}

// gemmRows is the rows of a block of an [M K]×[K N] product: whole 4-row
// tiles (so blocks compute exactly what one sgemm call does) of at most
// StopBlock multiply-adds, or one tile.
func gemmRows(N, K int) int { return max(4, StopBlock/max(N*K, 1)) &^ 3 }

// gemmBlocks is sgemm over rows [blk·rows, …) of blocks [lo, hi), looking
// at Stop between blocks.
func (m *Model) gemmBlocks(lo, hi, rows, M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for blk := lo; blk < hi && !m.stopped(); blk++ {
		i0, i1 := blk*rows, min(M, (blk+1)*rows)
		kernel.Sgemm(i1-i0, N, K, a[i0*lda:], lda, b, ldb, c[i0*ldc:], ldc)
	}
}

// gemm is sgemm over the model's goroutines, in blocks of gemmRows rows.
func (m *Model) gemm(M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rows := gemmRows(N, K)
	m.parallel((M+rows-1)/rows, 1, func(lo, hi int) { m.gemmBlocks(lo, hi, rows, M, N, K, a, lda, b, ldb, c, ldc) })
}

// gemmHere is gemm on the calling goroutine: for kernels that already
// split their work over the model's goroutines (Conv, by image).
func (m *Model) gemmHere(M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rows := gemmRows(N, K)
	m.gemmBlocks(0, (M+rows-1)/rows, rows, M, N, K, a, lda, b, ldb, c, ldc)
}

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

func compileGlobalAveragePool(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, f32, "X"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 3 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		shape := []int{x.shape[0], x.shape[1]}
		for range x.shape[2:] {
			shape = append(shape, 1)
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		nc := x.shape[0] * x.shape[1]
		hw := x.size() / max(nc, 1)
		for k := 0; k < nc; k++ {
			var s float64
			for _, v := range x.f[k*hw : (k+1)*hw] {
				s += float64(v)
			}
			out.f[k] = float32(s / float64(hw))
		}
		return nil
	}, a.check()
}
