package export

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/condiff/condiff/infer"
)

// Inspect prints a model's inputs, outputs, metadata, parameter count and
// op histogram, and whether it follows the condiff model contract. It reads
// the file itself; no ONNX Runtime is needed. The returned error is non-nil
// when the file is unreadable or breaks the contract.
func Inspect(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	var m pb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil || m.Graph == nil {
		return fmt.Errorf("inspect: %s is not an ONNX model: %v", path, err)
	}
	g := m.Graph
	fmt.Fprintf(w, "%s: ONNX IR %d, producer %q", path, m.IrVersion, m.ProducerName)
	for _, o := range m.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			fmt.Fprintf(w, ", opset %d", o.Version)
		}
	}
	fmt.Fprintln(w)
	inits := map[string]bool{}
	params := 0
	for _, t := range g.Initializer {
		inits[t.Name] = true
		n := 1
		for _, d := range t.Dims {
			n *= int(d)
		}
		params += n
	}
	describe := func(vs []*pb.ValueInfoProto) []ioDesc {
		var out []ioDesc
		for _, v := range vs {
			if inits[v.Name] {
				continue
			}
			typ := "?"
			if tt := v.GetType().GetTensorType(); tt != nil {
				dims := []string{}
				for _, d := range tt.GetShape().GetDim() {
					if p := d.GetDimParam(); p != "" {
						dims = append(dims, p)
					} else {
						dims = append(dims, fmt.Sprint(d.GetDimValue()))
					}
				}
				typ = fmt.Sprintf("%s [%s]", strings.ToLower(pb.TensorProto_DataType(tt.ElemType).String()), strings.Join(dims, " "))
			}
			out = append(out, ioDesc{v.Name, typ})
		}
		return out
	}
	ins, outs := describe(g.Input), describe(g.Output)
	fmt.Fprintln(w, "inputs:")
	for _, v := range ins {
		fmt.Fprintf(w, "  %-10s %s\n", v.name, v.typ)
	}
	fmt.Fprintln(w, "outputs:")
	for _, v := range outs {
		fmt.Fprintf(w, "  %-10s %s\n", v.name, v.typ)
	}
	md := map[string]string{}
	fmt.Fprintln(w, "metadata:")
	for _, p := range m.MetadataProps {
		md[p.Key] = p.Value
		fmt.Fprintf(w, "  %s = %s\n", p.Key, p.Value)
	}
	fmt.Fprintf(w, "parameters: %d (%d initializers, %.2f MB)\n", params, len(g.Initializer), float64(4*params)/1e6)
	hist := map[string]int{}
	for _, n := range g.Node {
		hist[n.OpType]++
	}
	ops := make([]string, 0, len(hist))
	for k := range hist {
		ops = append(ops, k)
	}
	sort.Slice(ops, func(i, j int) bool {
		return hist[ops[i]] > hist[ops[j]] || hist[ops[i]] == hist[ops[j]] && ops[i] < ops[j]
	})
	fmt.Fprintf(w, "ops (%d nodes):", len(g.Node))
	for _, k := range ops {
		fmt.Fprintf(w, " %s×%d", k, hist[k])
	}
	fmt.Fprintln(w)

	err = checkContract(path, md, ins, outs)
	if err != nil {
		fmt.Fprintf(w, "contract: NO: %v\n", err)
		return err
	}
	fmt.Fprintln(w, "contract: yes (condiff can sample/evaluate with it)")
	return nil
}

// ioDesc is a graph input or output: its name and type as printed.
type ioDesc struct{ name, typ string }

func checkContract(path string, md map[string]string, ins, outs []ioDesc) error {
	info, err := infer.ParseInfo(path, md)
	if err != nil {
		return err
	}
	c, s := info.Channels, info.ImageSize
	want := map[string]string{"x": fmt.Sprintf("float [N %d %d %d]", c, s, s)}
	wantOut := map[string]string{}
	if info.Kind == "classifier" {
		wantOut["logits"] = fmt.Sprintf("float [N %d]", info.NumClasses)
		wantOut["features"] = "float"
	} else {
		want["t"] = "int64 [N]"
		if info.Conditional() {
			want["y"] = "int64 [N]"
		}
		wantOut["eps"] = want["x"]
	}
	check := func(what string, got []ioDesc, want map[string]string) error {
		if len(got) != len(want) {
			return fmt.Errorf("%d %ss, the contract has %d", len(got), what, len(want))
		}
		for _, v := range got {
			wt, ok := want[v.name]
			if !ok {
				return fmt.Errorf("%s %q is not in the contract", what, v.name)
			}
			// The batch axis may be named anything (or fixed); compare the rest.
			gt := v.typ
			if i := strings.Index(gt, "["); i >= 0 && strings.Contains(wt, "[N") {
				if j := strings.Index(gt[i:], " "); j >= 0 {
					gt = gt[:i] + "[N" + gt[i+j:]
				} else {
					gt = gt[:i] + "[N]"
				}
			}
			if !strings.HasPrefix(gt, wt) {
				return fmt.Errorf("%s %q: want %s, got %s", what, v.name, wt, v.typ)
			}
		}
		return nil
	}
	if err := check("input", ins, want); err != nil {
		return err
	}
	return check("output", outs, wantOut)
}
