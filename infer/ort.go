// Package infer runs exported condiff models through ONNX Runtime and
// samples the reverse diffusion chain with them.
package infer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/internal/field"
)

// ORTVersion is the ONNX Runtime release `make ort` fetches (npm onnxruntime-node).
const ORTVersion = "1.30.0"

// CacheDir is where condiff keeps fetched files: $CONDIFF_CACHE, else
// $XDG_CACHE_HOME/condiff, else ~/.cache/condiff.
func CacheDir() string {
	if d := os.Getenv("CONDIFF_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "condiff")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "condiff")
}

// DefaultLibrary is the cached ONNX Runtime library.
func DefaultLibrary() string {
	return filepath.Join(CacheDir(), "ort", ORTVersion, "libonnxruntime.so.1")
}

// LibraryPath resolves the ONNX Runtime shared library: lib (the Lib
// option), then $CONDIFF_ORT_LIB, then the cache.
func LibraryPath(lib string) (string, error) {
	if lib != "" {
		if _, err := os.Stat(lib); err != nil {
			return "", field.Errorf("infer", "Lib", lib, "no ONNX Runtime library there: %v", err)
		}
		return lib, nil
	}
	p, from := os.Getenv("CONDIFF_ORT_LIB"), "CONDIFF_ORT_LIB"
	if p == "" {
		p, from = DefaultLibrary(), "the cache"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("infer: ONNX Runtime library not found at %s (from %s); run `make ort` to fetch ONNX Runtime %s from npm (onnxruntime-node) into the cache, or set CONDIFF_ORT_LIB to a libonnxruntime.so (a CUDA build for CUDA)", p, from, ORTVersion)
	}
	return p, nil
}

var (
	envOnce sync.Once
	envErr  error
	envLib  string
)

// Init loads the ONNX Runtime library once per process.
func Init(lib string) error {
	path, err := LibraryPath(lib)
	if err != nil {
		return err
	}
	envOnce.Do(func() {
		envLib = path
		ort.SetSharedLibraryPath(path)
		// ONNX Runtime's own log would print a coloured line of its own
		// before condiff's one-line error; its errors come back as errors.
		if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
			envErr = fmt.Errorf("infer: load ONNX Runtime %s: %w (an ONNX Runtime >= 1.24 library is needed)", path, err)
		}
	})
	if envErr == nil && envLib != path {
		return fmt.Errorf("infer: ONNX Runtime is already loaded from %s; cannot switch to %s in one process", envLib, path)
	}
	return envErr
}

// MaxThreads bounds Options.Threads: ONNX Runtime crashes creating a
// thread pool of 100000 threads rather than refusing it.
const MaxThreads = 1024

// Options configure a session.
type Options struct {
	Device  string // cpu (default), cuda, cuda:ID, auto
	Threads int    // intra-op threads; 0: the number of CPUs; at most MaxThreads
	Lib     string // ONNX Runtime library path (see LibraryPath)
	Warn    func(string)
}

// Session is an ONNX Runtime session over one model, with input and output
// tensors reused across calls of the same batch size.
type Session struct {
	Path    string
	Info    contract.Info
	Device  string
	inputs  []string
	outputs []string
	sess    *ort.DynamicAdvancedSession
	bufs    map[int]*buffers
	run     *ort.RunOptions // its terminate flag stops a Run in progress
	// RunTime is the wall time spent inside ONNX Runtime's Run so far.
	RunTime time.Duration
	// Calls counts the Run calls.
	Calls int
}

type buffers struct {
	in  []ort.Value
	out []ort.Value
}

// typeName names an ONNX Runtime element type as the contract does.
func typeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return contract.Float32
	case ort.TensorElementDataTypeInt64:
		return contract.Int64
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	}
	return fmt.Sprintf("type %d", t)
}

func tensors(io []ort.InputOutputInfo) []contract.Tensor {
	out := make([]contract.Tensor, len(io))
	for i, v := range io {
		out[i] = contract.Tensor{Name: v.Name, Type: typeName(v.DataType), Dims: slices.Clone([]int64(v.Dimensions))}
	}
	return out
}

// Open loads a model, checks it against the contract and starts a session.
func Open(path string, o Options) (*Session, error) {
	if o.Threads < 0 || o.Threads > MaxThreads {
		return nil, field.Errorf("infer", "Threads", o.Threads, "out of 0..%d (0: one per CPU)", MaxThreads)
	}
	if err := Init(o.Lib); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("infer: model: %w", err)
	}
	info, err := ReadInfo(path)
	if err != nil {
		return nil, err
	}
	gotIn, gotOut, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("infer: %s: %w", path, err)
	}
	if err := contract.Check(path, info, tensors(gotIn), tensors(gotOut)); err != nil {
		return nil, err
	}
	wantIn, wantOut := info.Inputs(), info.Outputs()

	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("infer: session options: %w", err)
	}
	defer opts.Destroy()
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("infer: threads: %w", err)
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, fmt.Errorf("infer: optimisation level: %w", err)
	}
	device, err := addProvider(opts, o)
	if err != nil {
		return nil, err
	}
	sess := &Session{Path: path, Info: info, Device: device, bufs: map[int]*buffers{}}
	for _, w := range wantIn {
		sess.inputs = append(sess.inputs, w.Name)
	}
	for _, w := range wantOut {
		sess.outputs = append(sess.outputs, w.Name)
	}
	if sess.run, err = ort.NewRunOptions(); err != nil {
		return nil, fmt.Errorf("infer: run options: %w", err)
	}
	sess.sess, err = ort.NewDynamicAdvancedSession(path, sess.inputs, sess.outputs, opts)
	if err != nil {
		sess.run.Destroy()
	}
	if err != nil && device != "cpu" && o.Device == "auto" {
		warn(o, fmt.Sprintf("CUDA session failed (%v); using the CPU", err))
		return Open(path, Options{Device: "cpu", Threads: o.Threads, Lib: o.Lib, Warn: o.Warn})
	}
	if err != nil {
		return nil, fmt.Errorf("infer: %s: session on %s: %w", path, device, err)
	}
	return sess, nil
}

func warn(o Options, msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	} else {
		fmt.Fprintln(os.Stderr, "condiff: warning:", msg)
	}
}

// addProvider appends the execution provider of o.Device.
func addProvider(opts *ort.SessionOptions, o Options) (string, error) {
	dev := o.Device
	if dev == "" || dev == "cpu" {
		return "cpu", nil
	}
	id := "0"
	switch {
	case dev == "auto":
	case dev == "cuda":
	case strings.HasPrefix(dev, "cuda:"):
		id = strings.TrimPrefix(dev, "cuda:")
		if _, err := strconv.Atoi(id); err != nil {
			return "", field.Errorf("infer", "Device", dev, "the GPU index %q is not an integer", id)
		}
	default:
		return "", field.Errorf("infer", "Device", dev, "not cpu, cuda, cuda:ID or auto")
	}
	err := func() error {
		cu, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer cu.Destroy()
		if err := cu.Update(map[string]string{"device_id": id}); err != nil {
			return err
		}
		return opts.AppendExecutionProviderCUDA(cu)
	}()
	if err != nil {
		if dev == "auto" {
			warn(o, fmt.Sprintf("CUDA is not available (%v); using the CPU", err))
			return "cpu", nil
		}
		return "", fmt.Errorf("infer: device %s: the CUDA execution provider did not load: %w (a CUDA build of ONNX Runtime is needed; see the README)", dev, err)
	}
	return "cuda:" + id, nil
}

// StopOn makes the cancellation of ctx end a Run in progress (and every
// later one) with an error, instead of waiting for it. Call the returned
// function to stop watching.
func (s *Session) StopOn(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = s.run.Terminate() })
}

// Close releases the session and its buffers.
func (s *Session) Close() error {
	for _, b := range s.bufs {
		for _, v := range append(b.in, b.out...) {
			if v != nil {
				v.Destroy()
			}
		}
	}
	s.bufs = nil
	if s.run != nil {
		s.run.Destroy()
		s.run = nil
	}
	if s.sess != nil {
		err := s.sess.Destroy()
		s.sess = nil
		return err
	}
	return nil
}

// buffersFor returns the reusable tensors of batch size n.
func (s *Session) buffersFor(n int) (*buffers, error) {
	if b, ok := s.bufs[n]; ok {
		return b, nil
	}
	c, sz := int64(s.Info.Channels), int64(s.Info.ImageSize)
	b := &buffers{}
	x, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), c, sz, sz))
	if err != nil {
		return nil, err
	}
	b.in = append(b.in, x)
	if s.Info.Kind == contract.Classifier {
		logits, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(s.Info.NumClasses)))
		if err != nil {
			return nil, err
		}
		b.out = append(b.out, logits, nil) // features: allocated by ORT (its width is the model's)
	} else {
		for range s.inputs[1:] {
			v, err := ort.NewEmptyTensor[int64](ort.NewShape(int64(n)))
			if err != nil {
				return nil, err
			}
			b.in = append(b.in, v)
		}
		eps, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), c, sz, sz))
		if err != nil {
			return nil, err
		}
		b.out = append(b.out, eps)
	}
	s.bufs[n] = b
	return b, nil
}

// Eps runs the denoiser on n images: x [n C H W], t [n], y [n] (ignored by an
// unconditional model), writing the predicted noise into out [n C H W].
func (s *Session) Eps(x []float32, t, y []int64, out []float32) error {
	n := len(t)
	d := s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize
	if s.Info.Kind != contract.Denoiser {
		return fmt.Errorf("infer: %s is a %s, not a denoiser", s.Path, s.Info.Kind)
	}
	if len(x) != n*d || len(out) != n*d || (s.Info.Conditional() && len(y) != n) {
		return fmt.Errorf("infer: Eps: %d timesteps, %d labels, %d inputs and %d outputs do not fit [%d %d %d %d]", n, len(y), len(x), len(out), n, s.Info.Channels, s.Info.ImageSize, s.Info.ImageSize)
	}
	b, err := s.buffersFor(n)
	if err != nil {
		return err
	}
	copy(b.in[0].(*ort.Tensor[float32]).GetData(), x)
	copy(b.in[1].(*ort.Tensor[int64]).GetData(), t)
	if len(b.in) > 2 {
		copy(b.in[2].(*ort.Tensor[int64]).GetData(), y)
	}
	start := time.Now()
	err = s.sess.RunWithOptions(b.in, b.out, s.run)
	s.RunTime += time.Since(start)
	s.Calls++
	if err != nil {
		return fmt.Errorf("infer: %s: run: %w", s.Path, err)
	}
	copy(out, b.out[0].(*ort.Tensor[float32]).GetData())
	return nil
}

// Classify runs a classifier on n images and returns logits [n K] and
// features [n D].
func (s *Session) Classify(x []float32, n int) (logits, features []float32, dim int, err error) {
	if s.Info.Kind != contract.Classifier {
		return nil, nil, 0, fmt.Errorf("infer: %s is a %s, not a classifier", s.Path, s.Info.Kind)
	}
	b, err := s.buffersFor(n)
	if err != nil {
		return nil, nil, 0, err
	}
	copy(b.in[0].(*ort.Tensor[float32]).GetData(), x)
	out := []ort.Value{b.out[0], nil}
	if err := s.sess.RunWithOptions(b.in, out, s.run); err != nil {
		return nil, nil, 0, fmt.Errorf("infer: %s: run: %w", s.Path, err)
	}
	defer out[1].Destroy()
	ft, ok := out[1].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, 0, fmt.Errorf("infer: %s: output features is not float32", s.Path)
	}
	logits, features = slices.Clone(b.out[0].(*ort.Tensor[float32]).GetData()), slices.Clone(ft.GetData())
	dim, err = checkClassifierOutputs(logits, features, ft.GetShape(), n, s.Info.NumClasses)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("infer: %s: %w", s.Path, err)
	}
	return logits, features, dim, nil
}

// checkClassifierOutputs checks what a classifier returned for n images:
// logits [n K] and features [n D] with D in 1..MaxFeatures, all finite. It
// returns D.
func checkClassifierOutputs(logits, features []float32, shape []int64, n, k int) (int, error) {
	if len(shape) != 2 || shape[0] != int64(n) || shape[1] < 1 || shape[1] > MaxFeatures || int64(len(features)) != shape[0]*shape[1] {
		return 0, fmt.Errorf("output %s has shape %v; want [%d D] with D in 1..%d (the evaluation's D×D covariance)", contract.OutputFeatures, shape, n, MaxFeatures)
	}
	if len(logits) != n*k {
		return 0, fmt.Errorf("output %s holds %d values; want [%d %d]", contract.OutputLogits, len(logits), n, k)
	}
	for _, o := range []struct {
		name string
		v    []float32
	}{{contract.OutputLogits, logits}, {contract.OutputFeatures, features}} {
		for i, x := range o.v {
			if x-x != 0 { // NaN or ±Inf
				return 0, fmt.Errorf("output %s is not finite (%v at value %d of %d images): the classifier cannot judge them", o.name, x, i, n)
			}
		}
	}
	return int(shape[1]), nil
}

// MaxFeatures bounds a classifier's feature width: evaluation fits a D×D
// covariance of them (4096: 128 MB in float64).
const MaxFeatures = 4096
