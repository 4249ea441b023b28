// Package infer runs exported condiff models through ONNX Runtime and
// samples the reverse diffusion chain with them.
package infer

import (
	"encoding/json"
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

	"github.com/condiff/condiff/schedule"
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

// LibraryPath resolves the ONNX Runtime shared library: the flag, then
// $CONDIFF_ORT_LIB, then the cache.
func LibraryPath(flag string) (string, error) {
	p, from := flag, "--ort-lib"
	if p == "" {
		p, from = os.Getenv("CONDIFF_ORT_LIB"), "CONDIFF_ORT_LIB"
	}
	if p == "" {
		p, from = DefaultLibrary(), "the cache"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("infer: ONNX Runtime library not found at %s (from %s); run `make ort` to fetch ONNX Runtime %s from npm (onnxruntime-node) into the cache, or pass --ort-lib PATH / set CONDIFF_ORT_LIB to a libonnxruntime.so (a CUDA build for --device cuda)", p, from, ORTVersion)
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
		if err := ort.InitializeEnvironment(); err != nil {
			envErr = fmt.Errorf("infer: load ONNX Runtime %s: %w (an ONNX Runtime >= 1.24 library is needed)", path, err)
		}
	})
	if envErr == nil && envLib != path {
		return fmt.Errorf("infer: ONNX Runtime is already loaded from %s; cannot switch to %s in one process", envLib, path)
	}
	return envErr
}

// Options configure a session.
type Options struct {
	Device  string // cpu (default), cuda, cuda:ID, auto
	Threads int    // intra-op threads; 0: the number of CPUs
	Lib     string // ONNX Runtime library path (see LibraryPath)
	Warn    func(string)
}

// Info is what the model's metadata says about it (the model contract).
type Info struct {
	Kind       string // denoiser or classifier
	Variant    string
	NumClasses int
	ClassNames []string
	NullClass  int // -1 when the model has none
	ImageSize  int
	Channels   int
	Schedule   schedule.Spec
	Prediction string
	Train      json.RawMessage
	Metadata   map[string]string
}

// ClassName returns the name of class i.
func (in Info) ClassName(i int) string {
	if i >= 0 && i < len(in.ClassNames) {
		return in.ClassNames[i]
	}
	return strconv.Itoa(i)
}

// ClassIndex resolves a class by name or index.
func (in Info) ClassIndex(s string) (int, error) {
	for i := 0; i < in.NumClasses; i++ {
		if in.ClassName(i) == s {
			return i, nil
		}
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < in.NumClasses {
		return i, nil
	}
	names := make([]string, in.NumClasses)
	for i := range names {
		names[i] = in.ClassName(i)
	}
	return 0, fmt.Errorf("class %q does not exist; valid classes: %s (or an index 0..%d)", s, strings.Join(names, ", "), in.NumClasses-1)
}

// Conditional reports whether the model has a label input.
func (in Info) Conditional() bool { return in.Kind == "denoiser" && in.Variant != "uncond" }

// ParseInfo reads the condiff.* metadata of a model.
func ParseInfo(file string, md map[string]string) (Info, error) {
	in := Info{Metadata: md, NullClass: -1}
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("infer: %s: metadata %q: %s", file, key, fmt.Sprintf(format, a...))
	}
	get := func(key string) (string, error) {
		v, ok := md[key]
		if !ok {
			return "", bad(key, "missing (see the model contract in the README)")
		}
		return v, nil
	}
	atoi := func(key string) (int, error) {
		s, err := get(key)
		if err != nil {
			return 0, err
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, bad(key, "%q is not a non-negative integer", s)
		}
		return v, nil
	}
	var err error
	in.Kind = md["condiff.kind"]
	if in.Kind == "" {
		in.Kind = "denoiser"
	}
	if in.Kind != "denoiser" && in.Kind != "classifier" {
		return in, bad("condiff.kind", "%q is not denoiser or classifier", in.Kind)
	}
	if in.NumClasses, err = atoi("condiff.num_classes"); err != nil {
		return in, err
	}
	if in.ImageSize, err = atoi("condiff.image_size"); err != nil {
		return in, err
	}
	if in.Channels, err = atoi("condiff.channels"); err != nil {
		return in, err
	}
	if s, ok := md["condiff.class_names"]; ok {
		if err := json.Unmarshal([]byte(s), &in.ClassNames); err != nil {
			return in, bad("condiff.class_names", "not a JSON array of strings: %v", err)
		}
		if len(in.ClassNames) != in.NumClasses {
			return in, bad("condiff.class_names", "%d names for %d classes", len(in.ClassNames), in.NumClasses)
		}
	}
	if in.Kind == "classifier" {
		return in, nil
	}
	if in.Variant, err = get("condiff.variant"); err != nil {
		return in, err
	}
	if !slices.Contains([]string{"uncond", "cbn", "ac"}, in.Variant) {
		return in, bad("condiff.variant", "%q is not uncond, cbn or ac", in.Variant)
	}
	if s, ok := md["condiff.null_class"]; ok {
		v, err := strconv.Atoi(s)
		if err != nil || v != in.NumClasses {
			return in, bad("condiff.null_class", "%q must equal num_classes (%d)", s, in.NumClasses)
		}
		in.NullClass = v
	}
	s, err := get("condiff.schedule")
	if err != nil {
		return in, err
	}
	if in.Schedule, err = schedule.Parse([]byte(s)); err != nil {
		return in, bad("condiff.schedule", "%v", err)
	}
	if in.Prediction, err = get("condiff.prediction"); err != nil {
		return in, err
	}
	if in.Prediction != "epsilon" {
		return in, bad("condiff.prediction", "%q is not supported (want epsilon)", in.Prediction)
	}
	in.Train = json.RawMessage(md["condiff.train"])
	return in, nil
}

// Session is an ONNX Runtime session over one model, with input and output
// tensors reused across calls of the same batch size.
type Session struct {
	Path    string
	Info    Info
	Device  string
	inputs  []string
	outputs []string
	sess    *ort.DynamicAdvancedSession
	bufs    map[int]*buffers
	// RunTime is the wall time spent inside ONNX Runtime's Run so far.
	RunTime time.Duration
	// Calls counts the Run calls.
	Calls int
}

type buffers struct {
	in  []ort.Value
	out []ort.Value
}

// tensorDesc describes one expected input or output.
type tensorDesc struct {
	name  string
	dtype ort.TensorElementDataType
	dims  []int64 // -1: any
}

func dtypeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	}
	return fmt.Sprintf("type %d", t)
}

// checkIO compares the model's inputs or outputs with the contract.
func checkIO(file, what string, got []ort.InputOutputInfo, want []tensorDesc) error {
	for _, w := range want {
		i := slices.IndexFunc(got, func(g ort.InputOutputInfo) bool { return g.Name == w.name })
		if i < 0 {
			names := make([]string, len(got))
			for j, g := range got {
				names[j] = g.Name
			}
			return fmt.Errorf("infer: %s: %s %q is missing (the model has %s)", file, what, w.name, strings.Join(names, ", "))
		}
		g := got[i]
		if g.DataType != w.dtype {
			return fmt.Errorf("infer: %s: %s %q: want %s, got %s", file, what, w.name, dtypeName(w.dtype), dtypeName(g.DataType))
		}
		if len(g.Dimensions) != len(w.dims) {
			return fmt.Errorf("infer: %s: %s %q: want shape %v, got %v", file, what, w.name, shapeString(w.dims), shapeString(g.Dimensions))
		}
		for d := range w.dims {
			if w.dims[d] >= 0 && g.Dimensions[d] >= 0 && g.Dimensions[d] != w.dims[d] {
				return fmt.Errorf("infer: %s: %s %q: want shape %v, got %v", file, what, w.name, shapeString(w.dims), shapeString(g.Dimensions))
			}
		}
	}
	return nil
}

func shapeString(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		if v < 0 {
			s[i] = "N"
		} else {
			s[i] = strconv.FormatInt(v, 10)
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// ReadMetadata returns the metadata map of a model file.
func ReadMetadata(path string) (map[string]string, error) {
	md, err := ort.GetModelMetadata(path)
	if err != nil {
		return nil, fmt.Errorf("infer: %s: %w", path, err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, fmt.Errorf("infer: %s: metadata: %w", path, err)
	}
	out := map[string]string{}
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, fmt.Errorf("infer: %s: metadata %q: %w", path, k, err)
		}
		out[k] = v
	}
	return out, nil
}

// Open loads a model, checks it against the contract and starts a session.
func Open(path string, o Options) (*Session, error) {
	if err := Init(o.Lib); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("infer: model: %w", err)
	}
	md, err := ReadMetadata(path)
	if err != nil {
		return nil, err
	}
	info, err := ParseInfo(path, md)
	if err != nil {
		return nil, err
	}
	gotIn, gotOut, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("infer: %s: %w", path, err)
	}
	c, s := int64(info.Channels), int64(info.ImageSize)
	var wantIn, wantOut []tensorDesc
	wantIn = append(wantIn, tensorDesc{"x", ort.TensorElementDataTypeFloat, []int64{-1, c, s, s}})
	if info.Kind == "classifier" {
		wantOut = []tensorDesc{{"logits", ort.TensorElementDataTypeFloat, []int64{-1, int64(info.NumClasses)}},
			{"features", ort.TensorElementDataTypeFloat, []int64{-1, -1}}}
	} else {
		wantIn = append(wantIn, tensorDesc{"t", ort.TensorElementDataTypeInt64, []int64{-1}})
		if info.Conditional() {
			wantIn = append(wantIn, tensorDesc{"y", ort.TensorElementDataTypeInt64, []int64{-1}})
		}
		wantOut = []tensorDesc{{"eps", ort.TensorElementDataTypeFloat, []int64{-1, c, s, s}}}
	}
	if err := checkIO(path, "input", gotIn, wantIn); err != nil {
		return nil, err
	}
	if err := checkIO(path, "output", gotOut, wantOut); err != nil {
		return nil, err
	}
	if len(gotIn) != len(wantIn) {
		return nil, fmt.Errorf("infer: %s: the model has %d inputs, the contract for a %s %s model has %d", path, len(gotIn), info.Variant, info.Kind, len(wantIn))
	}

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
		sess.inputs = append(sess.inputs, w.name)
	}
	for _, w := range wantOut {
		sess.outputs = append(sess.outputs, w.name)
	}
	sess.sess, err = ort.NewDynamicAdvancedSession(path, sess.inputs, sess.outputs, opts)
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
			return "", fmt.Errorf("infer: --device %q: the GPU index %q is not an integer", dev, id)
		}
	default:
		return "", fmt.Errorf("infer: --device %q is not cpu, cuda, cuda:ID or auto", dev)
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
		return "", fmt.Errorf("infer: --device %s: the CUDA execution provider did not load: %w (a CUDA build of ONNX Runtime is needed: pass --ort-lib or set CONDIFF_ORT_LIB; see the README)", dev, err)
	}
	return "cuda:" + id, nil
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
	if s.Info.Kind == "classifier" {
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
	if s.Info.Kind != "denoiser" {
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
	err = s.sess.Run(b.in, b.out)
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
	if s.Info.Kind != "classifier" {
		return nil, nil, 0, fmt.Errorf("infer: %s is a %s, not a classifier", s.Path, s.Info.Kind)
	}
	b, err := s.buffersFor(n)
	if err != nil {
		return nil, nil, 0, err
	}
	copy(b.in[0].(*ort.Tensor[float32]).GetData(), x)
	out := []ort.Value{b.out[0], nil}
	if err := s.sess.Run(b.in, out); err != nil {
		return nil, nil, 0, fmt.Errorf("infer: %s: run: %w", s.Path, err)
	}
	defer out[1].Destroy()
	ft, ok := out[1].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, 0, fmt.Errorf("infer: %s: output features is not float32", s.Path)
	}
	shape := ft.GetShape()
	return slices.Clone(b.out[0].(*ort.Tensor[float32]).GetData()), slices.Clone(ft.GetData()), int(shape[1]), nil
}
