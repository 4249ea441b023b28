package infer_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/internal/onnxwire"
	"github.com/condiff/condiff/models"
)

// writeEdited lowers cfg with fresh weights, lets edit change the graph,
// and writes it.
func writeEdited(t *testing.T, cfg models.Config, edit func(g *onnxwire.Graph)) string {
	t.Helper()
	in := cfg.Contract()
	T := 0
	if cfg.Kind == contract.Denoiser {
		sp, _ := diffusion.Default("linear", 50)
		in.Schedule, in.Prediction, T = sp, contract.PredictionEpsilon, 50
	}
	m, err := graphs.Build(cfg, models.InitParams(cfg, 1), models.InitNormStats(cfg), T, in.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	edit(&m.Graph)
	p := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(p, onnxwire.Encode(m), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOutputsByName: both backends take a model's outputs by the
// contract's names, whatever their order in the file: a classifier that
// lists features before logits gives the same logits on both; an eps of
// another shape is refused by both, saying what differs.
func TestOutputsByName(t *testing.T) {
	infertest.ORT(t)
	cfg := models.DefaultClassifier()
	cfg.NumClasses, cfg.ImageSize, cfg.BaseChannels = 3, 8, 8
	swapped := writeEdited(t, cfg, func(g *onnxwire.Graph) { g.Outputs[0], g.Outputs[1] = g.Outputs[1], g.Outputs[0] })
	x := make([]float32, 2*64)
	for i := range x {
		x[i] = float32(i%7) / 7
	}
	var logits [2][]float32
	for k, b := range []string{infer.BackendORT, infer.BackendGo} {
		s, err := infer.Open(swapped, infer.Options{Backend: b, Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		l, _, shape, err := s.Classify(x, 2)
		s.Close()
		if err != nil || len(l) != 6 || shape < 1 {
			t.Fatalf("%s: logits %v, features %v: %v", b, l, shape, err)
		}
		logits[k] = l
	}
	for i := range logits[0] {
		if math.Abs(float64(logits[0][i]-logits[1][i])) > 1e-4 {
			t.Fatalf("logits of a classifier listing features first: ONNX Runtime %v, Go %v", logits[0], logits[1])
		}
	}
	// A denoiser whose eps comes out flattened to [N 64].
	dc := models.DefaultDenoiser()
	dc.Variant, dc.ImageSize, dc.BaseChannels, dc.ChannelMult, dc.NumClasses = contract.CBN, 8, 8, []int{1, 2}, 3
	flat := writeEdited(t, dc, func(g *onnxwire.Graph) {
		for i := range g.Nodes {
			for j, o := range g.Nodes[i].Outputs {
				if o == contract.OutputEps {
					g.Nodes[i].Outputs[j] = "eps_raw"
				}
			}
		}
		g.Inits = append(g.Inits, onnxwire.Int64Tensor("flat_shape", 0, -1))
		g.Nodes = append(g.Nodes, onnxwire.Node{Name: "flatten", OpType: "Reshape", Inputs: []string{"eps_raw", "flat_shape"}, Outputs: []string{contract.OutputEps}})
	})
	for _, b := range []string{infer.BackendORT, infer.BackendGo} {
		s, err := infer.Open(flat, infer.Options{Backend: b, Threads: 1})
		if err != nil {
			t.Logf("%s refuses it at open: %v", b, err)
			continue
		}
		err = s.Eps(x, []int64{3, 4}, []int64{0, 1}, make([]float32, 2*64))
		s.Close()
		if err == nil || b == infer.BackendGo && !strings.Contains(err.Error(), `output "eps" has shape [2 64] (rank 2), the contract wants [2 1 8 8]`) {
			t.Errorf("%s: an eps of shape [2 64]: %v", b, err)
		}
	}
}
