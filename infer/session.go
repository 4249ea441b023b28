package infer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/field"
)

// MaxThreads bounds Options.Threads: ONNX Runtime crashes creating a
// thread pool of 100000 threads rather than refusing it.
const MaxThreads = 1024

// Backends.
const (
	BackendAuto = "auto" // ONNX Runtime where its library loads, else Go
	BackendORT  = "ort"
	BackendGo   = "go"
)

// Options configure a session.
type Options struct {
	Backend string // auto (default, also ""), ort or go
	Device  string // cpu (default), cuda, cuda:ID, auto (ONNX Runtime only)
	Threads int    // intra-op threads; 0: the number of CPUs; at most MaxThreads
	Lib     string // ONNX Runtime library path (see LibraryPath)
	Warn    func(string)
	// Note, if set, hears which backend auto chose and why.
	Note func(string)
}

// Session runs one model on one backend, with its buffers reused across
// calls of the same batch size.
type Session struct {
	Path    string
	Info    contract.Info
	Device  string // cpu, cuda:ID
	Backend string // BackendORT or BackendGo
	r       runner
	// RunTime is the wall time spent inside the backend's runs so far.
	RunTime time.Duration
	// Calls counts the runs.
	Calls int
	// vSchedule turns a v-prediction model's output into ε (built on
	// its first call).
	vSchedule *diffusion.Schedule
}

// runner is a backend's session over one model.
type runner interface {
	// eps writes the denoiser's output for n images into out.
	eps(x []float32, t, y []int64, out []float32) error
	// classify returns the classifier's logits and features and the
	// features' shape.
	classify(x []float32, n int) (logits, features []float32, shape []int64, err error)
	// terminate makes the run in progress, and every later one, fail.
	terminate()
	close() error
}

// Open loads a model, checks it against the contract and starts a session
// on the backend o.Backend selects.
func Open(path string, o Options) (*Session, error) {
	if o.Threads < 0 || o.Threads > MaxThreads {
		return nil, field.Errorf("infer", "Threads", o.Threads, "out of 0..%d (0: one per CPU)", MaxThreads)
	}
	backend := o.Backend
	switch backend {
	case "", BackendAuto:
		backend = BackendAuto
	case BackendORT, BackendGo:
	default:
		return nil, field.Errorf("infer", "Backend", o.Backend, "not auto, ort or go")
	}
	if backend == BackendGo && o.Device != "" && o.Device != "cpu" {
		return nil, field.Errorf("infer", "Device", o.Device, "the Go backend runs on the CPU; use --backend ort for CUDA")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("infer: model: %w", err)
	}
	if backend == BackendAuto {
		if err := Init(o.Lib); err != nil {
			if o.Device != "" && o.Device != "cpu" && o.Device != "auto" {
				return nil, err // CUDA asked for: only ONNX Runtime has it
			}
			backend = BackendGo
			note(o, fmt.Sprintf("Go backend (ONNX Runtime did not load: %v)", err))
		} else {
			backend = BackendORT
			note(o, "ONNX Runtime "+envLibPath())
		}
	}
	if backend == BackendORT {
		s, err := openORT(path, o)
		if errors.Is(err, errNoORT) {
			return nil, field.Errorf("infer", "Backend", o.Backend, "this build has no ONNX Runtime (built with CGO_ENABLED=0); it samples with the Go backend (go, or auto, the default)")
		}
		return s, err
	}
	return openGo(path, o)
}

// errNoORT: onnxruntime_go needs cgo, so a CGO_ENABLED=0 build (static,
// cross-compiled, WebAssembly) has the Go backend only. Open says what to
// do instead where ONNX Runtime was asked for by name.
var errNoORT = errors.New("infer: this build has no ONNX Runtime (built with CGO_ENABLED=0)")

func note(o Options, msg string) {
	if o.Note != nil {
		o.Note(msg)
	}
}

func warn(o Options, msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	} else {
		fmt.Fprintln(os.Stderr, "condiff: warning:", msg)
	}
}

// StopOn makes the cancellation of ctx end a run in progress (and every
// later one) with an error, instead of waiting for it. Call the returned
// function to stop watching.
func (s *Session) StopOn(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, s.r.terminate)
}

// Close releases the session and its buffers.
func (s *Session) Close() error {
	if s.r == nil {
		return nil
	}
	err := s.r.close()
	s.r = nil
	return err
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
	start := time.Now()
	err := s.r.eps(x, t, y, out)
	s.RunTime += time.Since(start)
	s.Calls++
	if err != nil {
		return fmt.Errorf("infer: %s: run: %w", s.Path, err)
	}
	if s.Info.Prediction == contract.PredictionV {
		return s.epsFromV(x, t, out, d)
	}
	return nil
}

// epsFromV turns a v-prediction model's output into the noise samplers
// take (diffusion.Schedule.EpsFromV), row by row.
func (s *Session) epsFromV(x []float32, t []int64, out []float32, d int) error {
	if s.vSchedule == nil {
		sch, err := s.Info.Schedule.Build()
		if err != nil {
			return fmt.Errorf("infer: %s: %w", s.Path, err)
		}
		s.vSchedule = sch
	}
	for i, ti := range t {
		if ti < 0 || int(ti) >= len(s.vSchedule.SqrtAB) {
			return fmt.Errorf("infer: %s: timestep %d out of 0..%d", s.Path, ti, len(s.vSchedule.SqrtAB)-1)
		}
		s.vSchedule.EpsFromV(int(ti), x[i*d:(i+1)*d], out[i*d:(i+1)*d])
	}
	return nil
}

// Classify runs a classifier on n images and returns logits [n K] and
// features [n D].
func (s *Session) Classify(x []float32, n int) (logits, features []float32, dim int, err error) {
	if s.Info.Kind != contract.Classifier {
		return nil, nil, 0, fmt.Errorf("infer: %s is a %s, not a classifier", s.Path, s.Info.Kind)
	}
	if d := s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize; len(x) != n*d {
		return nil, nil, 0, fmt.Errorf("infer: Classify: %d values for %d images of %d", len(x), n, d)
	}
	l, f, shape, err := s.r.classify(x, n)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("infer: %s: run: %w", s.Path, err)
	}
	logits, features = slices.Clone(l), slices.Clone(f)
	dim, err = checkClassifierOutputs(logits, features, shape, n, s.Info.NumClasses)
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

// checkOutput is the one check of an output against the contract, for
// both backends: float32, of the contract's shape (-1: any size there);
// the message says what differs.
func checkOutput(name, typ string, shape, want []int) error {
	if typ != contract.Float32 {
		return fmt.Errorf("output %q is %s, the contract wants %s", name, typ, contract.Float32)
	}
	if len(shape) != len(want) {
		return fmt.Errorf("output %q has shape %v (rank %d), the contract wants %s (rank %d)", name, shape, len(shape), wantShape(want), len(want))
	}
	for d := range want {
		if want[d] >= 0 && shape[d] != want[d] || want[d] < 0 && shape[d] < 1 {
			return fmt.Errorf("output %q has shape %v, the contract wants %s: dimension %d is %d", name, shape, wantShape(want), d, shape[d])
		}
	}
	return nil
}

func wantShape(want []int) string {
	s := make([]string, len(want))
	for i, d := range want {
		s[i] = fmt.Sprint(d)
		if d < 0 {
			s[i] = "D"
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}
