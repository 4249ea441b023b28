package goexec

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
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

// workers runs f(0) … f(w−1) on the model's crew and waits for them all;
// a panic in one is handed on to the caller (runStep makes it the node's
// error) instead of ending the program.
func (m *Model) workers(w int, f func(k int)) {
	if w == 1 {
		f(0)
		return
	}
	m.crew.run(w, f)
}

// crew runs the parts of an operator on the model's goroutines. The
// caller takes parts itself, from part 0 on, until none is left, so an
// operator never waits for a goroutine to wake: helpers only take what
// the caller has not reached yet. A helper, once started, looks for the
// next operator's parts for spinFor after its last part before it ends: a
// Run's operators follow each other within microseconds, and waking a
// parked goroutine (tens of µs on a busy VM) costs more than many
// operators of a batch-1 call take; on two threads, batch 1 ran slower
// than on one when each operator started its goroutines afresh.
type crew struct {
	job  atomic.Pointer[crewJob]
	live atomic.Int32 // helpers running or looking for work
}

// spinFor is how long an idle helper looks for work before it ends.
const spinFor = 200 * time.Microsecond

// crewJob is one operator's parts.
type crewJob struct {
	f       func(k int)
	w       int32
	next    atomic.Int32 // the next part to take
	pending atomic.Int32 // parts not finished
	mu      sync.Mutex
	panic   any // the first part's panic
}

func (c *crew) run(w int, f func(k int)) {
	j := &crewJob{f: f, w: int32(w)}
	j.pending.Store(int32(w))
	c.job.Store(j)
	for n := c.live.Load(); n < int32(w-1); n = c.live.Load() {
		if c.live.CompareAndSwap(n, n+1) {
			go c.help()
		}
	}
	j.take()
	for j.pending.Load() > 0 {
		runtime.Gosched()
	}
	c.job.CompareAndSwap(j, nil) // the operator's closure is not kept
	if j.panic != nil {
		panic(j.panic)
	}
}

// help takes parts of the crew's jobs until it has found none for spinFor.
func (c *crew) help() {
	idle := time.Now()
	for i := 1; ; i++ {
		if j := c.job.Load(); j != nil && j.take() {
			idle, i = time.Now(), 0
			continue
		}
		if i%64 == 0 && time.Since(idle) > spinFor {
			c.live.Add(-1)
			return
		}
		runtime.Gosched()
	}
}

// take runs parts of j until none is left and says whether it ran any.
func (j *crewJob) take() bool {
	ran := false
	for {
		k := j.next.Add(1) - 1
		if k >= j.w {
			return ran
		}
		j.part(int(k))
		ran = true
	}
}

func (j *crewJob) part(k int) {
	defer func() {
		if r := recover(); r != nil {
			j.mu.Lock()
			if j.panic == nil {
				j.panic = r
			}
			j.mu.Unlock()
		}
		j.pending.Add(-1)
	}()
	j.f(k)
}
