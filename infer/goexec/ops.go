package goexec

import (
	"fmt"
	"math"
	"slices"
	"sort"
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

// compilers is the Go backend's map of operators: each ONNX operator it
// runs (default domain, opsets MinOpset to MaxOpset) and the compiler that
// checks a node's attributes and inputs and returns its kernel, by family
// and file. What each runs and what it refuses is its compiler's doc
// comment; every compiler ends with attrs.check, so an attribute it does
// not read is refused rather than ignored, and an operator missing here is
// refused by Load with ErrUnsupported.
var compilers map[string]compiler

func init() {
	compilers = map[string]compiler{
		// Elementwise (ops_elementwise.go).
		"Add":      binary(addOp),
		"Mul":      binary(mulOp),
		"Sigmoid":  unary(sigmoid32, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }),
		"Sin":      unary(func(x float32) float32 { return float32(math.Sin(float64(x))) }, math.Sin),
		"Cos":      unary(func(x float32) float32 { return float32(math.Cos(float64(x))) }, math.Cos),
		"Identity": compileIdentity,
		"Cast":     compileCast,
		// Moving and making values (ops_shape.go).
		"Reshape":   compileReshape,
		"Unsqueeze": compileUnsqueeze,
		"Flatten":   compileFlatten,
		"Shape":     compileShape,
		"Gather":    compileGather,
		"Concat":    compileConcat,
		"Constant":  compileConstant,
		"Transpose": compileTranspose,
		// On the GEMM (ops_linear.go, internal/kernel).
		"Conv":   compileConv,
		"MatMul": compileMatMul,
		"Gemm":   compileGemm,
		// Normalisations (ops_norm.go); the SiLU after a norm is fused
		// into it (fuse.go).
		"InstanceNormalization": compileInstanceNorm,
		"BatchNormalization":    compileBatchNorm,
		"Softmax":               compileSoftmax,
		// Spatial (ops_spatial.go).
		"Resize":            compileResize,
		"GlobalAveragePool": compileGlobalAveragePool,
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
