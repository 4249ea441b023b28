package infer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/condiff/condiff/infer/goexec"

	"github.com/condiff/condiff/internal/onnxwire"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/models"
)

// MaxModelBytes bounds the .onnx files read (protobuf's limit is 2 GiB).
const MaxModelBytes = 1 << 31

// readModel decodes an .onnx file (pure Go; no ONNX Runtime needed).
func readModel(path string) (*onnxwire.File, error) {
	_, m, err := readModelBytes(path)
	return m, err
}

// readModelBytes reads and decodes an .onnx file, returning its bytes too.
func readModelBytes(path string) ([]byte, *onnxwire.File, error) {
	b, err := readFileBounded(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := onnxwire.Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("infer: %s is not an ONNX model: %w", path, err)
	}
	if !m.HasGraph {
		return nil, nil, fmt.Errorf("infer: %s is not an ONNX model: it has no graph", path)
	}
	return b, m, nil
}

// readFileBounded reads a regular file of 1..MaxModelBytes bytes.
func readFileBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("infer: model: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > MaxModelBytes {
		return nil, fmt.Errorf("infer: %s is not a regular file of at most %d bytes (ONNX's own limit is 2 GiB)", path, int64(MaxModelBytes))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("infer: model: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("infer: %s is empty, not an ONNX model", path)
	}
	return b, nil
}

// ReadMetadata returns the metadata_props of a model file, without ONNX
// Runtime.
func ReadMetadata(path string) (map[string]string, error) {
	m, err := readModel(path)
	if err != nil {
		return nil, err
	}
	return m.MetadataMap(), nil
}

// info parses a decoded model's metadata and, when it carries the
// architecture, rebuilds the config and checks it against the rest.
func info(path string, m *onnxwire.File) (contract.Info, error) {
	in, err := contract.Parse(path, m.MetadataMap())
	if err != nil {
		return in, err
	}
	if _, _, err := models.FromContract(path, in); err != nil {
		return in, fmt.Errorf("contract: %w", err)
	}
	return in, nil
}

// ReadInfo reads what a model file's metadata says about it (the model
// contract), without ONNX Runtime.
func ReadInfo(path string) (contract.Info, error) {
	m, err := readModel(path)
	if err != nil {
		return contract.Info{}, err
	}
	return info(path, m)
}

// graphTensors lists the graph inputs or outputs that are not initializers.
func graphTensors(vs []onnxwire.ValueInfo, inits map[string]bool) []contract.Tensor {
	var out []contract.Tensor
	for _, v := range vs {
		if inits[v.Name] {
			continue
		}
		t := contract.Tensor{Name: v.Name, Type: "?", Dims: v.Dims}
		if v.HasType {
			t.Type = onnxwire.ElemTypeName(v.ElemType)
		}
		out = append(out, t)
	}
	return out
}

// Inspect prints a model's inputs, outputs, metadata, parameter count and
// op histogram, and whether it follows the condiff model contract (the same
// check the sampler makes). It reads the file itself; no ONNX Runtime is
// needed. The returned error is non-nil when the file is unreadable or
// breaks the contract.
func Inspect(path string, w io.Writer) error {
	m, err := readModel(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: ONNX IR %d, producer %q", path, m.IRVersion, m.Producer)
	for _, o := range m.Opsets {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			fmt.Fprintf(w, ", opset %d", o.Version)
		}
	}
	fmt.Fprintln(w)
	inits := map[string]bool{}
	shapes := map[string][]int64{}
	params := 0
	for _, t := range m.Inits {
		inits[t.Name] = true
		shapes[t.Name] = t.Dims
		n := 1
		for _, d := range t.Dims {
			n *= int(d)
		}
		params += n
	}
	ins, outs := graphTensors(m.Inputs, inits), graphTensors(m.Outputs, inits)
	for _, set := range []struct {
		what string
		ts   []contract.Tensor
	}{{"inputs", ins}, {"outputs", outs}} {
		fmt.Fprintf(w, "%s:\n", set.what)
		for _, v := range set.ts {
			fmt.Fprintf(w, "  %-10s %s %s\n", v.Name, v.Type, contract.ShapeString(v.Dims))
		}
	}
	md := m.MetadataMap()
	fmt.Fprintln(w, "metadata:")
	for _, kv := range m.Metadata {
		fmt.Fprintf(w, "  %s = %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(w, "parameters: %d (%d initializers, %.2f MB)\n", params, len(m.Inits), float64(4*params)/1e6)
	hist := map[string]int{}
	for _, n := range m.Nodes {
		hist[n.OpType]++
	}
	ops := make([]string, 0, len(hist))
	for k := range hist {
		ops = append(ops, k)
	}
	sort.Slice(ops, func(i, j int) bool {
		return hist[ops[i]] > hist[ops[j]] || hist[ops[i]] == hist[ops[j]] && ops[i] < ops[j]
	})
	fmt.Fprintf(w, "ops (%d nodes):", len(m.Nodes))
	for _, k := range ops {
		fmt.Fprintf(w, " %s×%d", k, hist[k])
	}
	fmt.Fprintln(w)

	no := func(err error) error {
		fmt.Fprintf(w, "contract: NO: %v\n", err)
		return err
	}
	in, err := contract.Parse(path, md)
	if err != nil {
		return no(err)
	}
	if err := contract.Check(path, in, ins, outs); err != nil {
		return no(err)
	}
	cfg, ok, err := models.FromContract(path, in)
	if err != nil {
		return no(fmt.Errorf("contract: %w", err))
	}
	if ok {
		n, err := checkWeights(path, cfg, shapes)
		if err != nil {
			return no(err)
		}
		what := string(cfg.Kind)
		if cfg.Kind == contract.Denoiser {
			what = string(cfg.Variant) + " " + what
		}
		fmt.Fprintf(w, "config: rebuilds the %s; every parameter of its network present with its shape (%d)\n", what, n)
	}
	fmt.Fprintln(w, "contract: yes (condiff can sample/evaluate with it)")
	if d := in.Distilled; d != nil {
		fmt.Fprintf(w, "student: distilled (%s) for %s in %d steps, predicts %s; it learned its teacher's %s and samples unguided\n", d.MethodName(), d.Sampler, d.Steps, in.Prediction, d.What())
	}
	// The Go backend: whether it runs the model, or why not (any backend
	// runs a model that follows the contract through ONNX Runtime).
	if b, err := readFileBounded(path); err == nil {
		var ne *goexec.NodeError
		if _, err := goexec.Load(b, 1); errors.Is(err, goexec.ErrUnsupported) && errors.As(err, &ne) {
			fmt.Fprintf(w, "go backend: no: operator %s (node %s) is not one it runs (%s); sample it with --backend ort\n", ne.Op, ne.Node, strings.Join(goexec.Supported(), ", "))
		} else if err != nil {
			fmt.Fprintf(w, "go backend: no: %v (sample it with --backend ort)\n", err)
		} else {
			fmt.Fprintln(w, "go backend: yes (runs without ONNX Runtime)")
		}
	}
	return nil
}

// checkWeights compares the initializers with the parameters the config's
// network declares: every one present, with its shape.
func checkWeights(path string, cfg models.Config, shapes map[string][]int64) (int, error) {
	s, _ := models.Trace(cfg, 1)
	for _, p := range s.Params {
		got, ok := shapes[p.Name]
		if !ok {
			return 0, fmt.Errorf("contract: %s: initializer %q of the config's network is missing", path, p.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(p.Shape) {
			return 0, fmt.Errorf("contract: %s: initializer %q has shape %v, the config's network wants %v", path, p.Name, got, p.Shape)
		}
	}
	return len(s.Params), nil
}
