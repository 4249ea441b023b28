//go:build cgo

package infer

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/internal/field"
)

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
		if err := checkLibrary(path); err != nil {
			envErr = fmt.Errorf("infer: load ONNX Runtime: %w", err)
			return
		}
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

func envLibPath() string { return envLib }

// ortRunner is an ONNX Runtime session, with input and output tensors
// reused across calls of the same batch size.
type ortRunner struct {
	info    contract.Info
	inputs  []string
	outputs []string
	sess    *ort.DynamicAdvancedSession
	bufs    map[int]*buffers
	run     *ort.RunOptions // its terminate flag stops a Run in progress
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

// openORT opens the model in ONNX Runtime.
func openORT(path string, o Options) (*Session, error) {
	if err := Init(o.Lib); err != nil {
		return nil, err
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
	r := &ortRunner{info: info, bufs: map[int]*buffers{}}
	for _, w := range wantIn {
		r.inputs = append(r.inputs, w.Name)
	}
	for _, w := range wantOut {
		r.outputs = append(r.outputs, w.Name)
	}
	if r.run, err = ort.NewRunOptions(); err != nil {
		return nil, fmt.Errorf("infer: run options: %w", err)
	}
	r.sess, err = ort.NewDynamicAdvancedSession(path, r.inputs, r.outputs, opts)
	if err != nil {
		r.run.Destroy()
	}
	if err != nil && device != "cpu" && o.Device == "auto" {
		warn(o, fmt.Sprintf("CUDA session failed (%v); using the CPU", err))
		o.Device = "cpu"
		return openORT(path, o)
	}
	if err != nil {
		return nil, fmt.Errorf("infer: %s: session on %s: %w", path, device, err)
	}
	return &Session{Path: path, Info: info, Device: device, Backend: BackendORT, r: r}, nil
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

func (r *ortRunner) terminate() { _ = r.run.Terminate() }

func (r *ortRunner) close() error {
	for _, b := range r.bufs {
		for _, v := range append(b.in, b.out...) {
			if v != nil {
				v.Destroy()
			}
		}
	}
	r.bufs = nil
	if r.run != nil {
		r.run.Destroy()
		r.run = nil
	}
	if r.sess != nil {
		err := r.sess.Destroy()
		r.sess = nil
		return err
	}
	return nil
}

// buffersFor returns the reusable tensors of batch size n.
func (r *ortRunner) buffersFor(n int) (*buffers, error) {
	if b, ok := r.bufs[n]; ok {
		return b, nil
	}
	c, sz := int64(r.info.Channels), int64(r.info.ImageSize)
	b := &buffers{}
	x, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), c, sz, sz))
	if err != nil {
		return nil, err
	}
	b.in = append(b.in, x)
	if r.info.Kind == contract.Classifier {
		logits, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(r.info.NumClasses)))
		if err != nil {
			return nil, err
		}
		b.out = append(b.out, logits, nil) // features: allocated by ORT (its width is the model's)
	} else {
		for range r.inputs[1:] {
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
	r.bufs[n] = b
	return b, nil
}

func (r *ortRunner) eps(x []float32, t, y []int64, out []float32) error {
	b, err := r.buffersFor(len(t))
	if err != nil {
		return err
	}
	copy(b.in[0].(*ort.Tensor[float32]).GetData(), x)
	copy(b.in[1].(*ort.Tensor[int64]).GetData(), t)
	if len(b.in) > 2 {
		copy(b.in[2].(*ort.Tensor[int64]).GetData(), y)
	}
	if err := r.sess.RunWithOptions(b.in, b.out, r.run); err != nil {
		return err
	}
	copy(out, b.out[0].(*ort.Tensor[float32]).GetData())
	return nil
}

func (r *ortRunner) classify(x []float32, n int) (logits, features []float32, shape []int64, err error) {
	b, err := r.buffersFor(n)
	if err != nil {
		return nil, nil, nil, err
	}
	copy(b.in[0].(*ort.Tensor[float32]).GetData(), x)
	out := []ort.Value{b.out[0], nil}
	if err := r.sess.RunWithOptions(b.in, out, r.run); err != nil {
		return nil, nil, nil, err
	}
	defer out[1].Destroy()
	ft, ok := out[1].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, nil, checkOutput(contract.OutputFeatures, fmt.Sprintf("%T", out[1]), nil, []int{n, -1})
	}
	fs := make([]int, len(ft.GetShape()))
	for i, d := range ft.GetShape() {
		fs[i] = int(d)
	}
	if err := checkOutput(contract.OutputFeatures, contract.Float32, fs, []int{n, -1}); err != nil {
		return nil, nil, nil, err
	}
	return b.out[0].(*ort.Tensor[float32]).GetData(), slices.Clone(ft.GetData()), slices.Clone([]int64(ft.GetShape())), nil
}
