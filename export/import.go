package export

import (
	"fmt"
	"slices"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/internal/onnxwire"
	"github.com/condiff/condiff/models"
)

// maxModelBytes bounds a model file read back (ONNX's own limit).
const maxModelBytes = 2 << 30

// Imported is what a model file gives a new run (train's Init): the
// network's config from its metadata (condiff.config), its schedule (a
// denoiser's), and every parameter of that network, by name, from the
// initializers: the weights the model was exported with (the EMA, by
// default), bit for bit.
type Imported struct {
	Config   models.Config
	Schedule diffusion.Spec
	Weights  map[string]models.Array
}

// Import reads a model file written by Export (or by any exporter that
// writes condiff's contract, its config and its parameter names). A
// batch-norm network is refused: its export folds the running statistics
// into constants that cannot be read back.
func Import(path string) (*Imported, error) {
	b, err := fsutil.ReadSmallFile(path, maxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	f, err := onnxwire.Decode(b)
	if err != nil || !f.HasGraph {
		return nil, fmt.Errorf("import: %s is not an ONNX model (%v)", path, err)
	}
	in, err := contract.Parse(path, f.MetadataMap())
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	cfg, ok, err := models.FromContract(path, in)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("import: %s does not carry its architecture (metadata condiff.config); only a model exported by condiff (or written to its contract) can start a run", path)
	}
	if cfg.Norm == models.BatchNorm {
		return nil, fmt.Errorf("import: %s uses batch norm, whose running statistics an export folds into constants that cannot be read back; continue its run from the checkpoint (train --resume) instead", path)
	}
	inits := map[string]onnxwire.Initializer{}
	for _, t := range f.Inits {
		inits[t.Name] = t
	}
	s, _ := models.Trace(cfg, 1)
	weights := map[string]models.Array{}
	for _, p := range s.Params {
		t, ok := inits[p.Name]
		if !ok {
			return nil, fmt.Errorf("import: %s: parameter %q of its config's network is not an initializer", path, p.Name)
		}
		dims := make([]int, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = int(d)
		}
		if !slices.Equal(dims, p.Shape) {
			return nil, fmt.Errorf("import: %s: parameter %q has shape %v, its config's network %v", path, p.Name, dims, p.Shape)
		}
		vals, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", path, err)
		}
		weights[p.Name] = models.Array{Shape: slices.Clone(p.Shape), Data: vals}
	}
	return &Imported{Config: cfg, Schedule: in.Schedule, Weights: weights}, nil
}
