// Package graphstest writes hand-made ONNX models for tests: a network of
// any models.Config lowered by graphs with chosen weights, and a tiny
// conditional denoiser with an optional edit of its weights and metadata.
package graphstest

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/internal/onnxwire"
	"github.com/condiff/condiff/models"
)

// WriteModel lowers the network of cfg with these weights to ONNX
// (graphs.Build, T diffusion steps, metadata md) and writes it to path.
func WriteModel(t testing.TB, path string, cfg models.Config, weights, stats map[string]models.Array, T int, md map[string]string) string {
	t.Helper()
	m, err := graphs.Build(cfg, weights, stats, T, md)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, onnxwire.Encode(m), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// PatternWeights is an edit for TinyDenoiser that sets every weight to a
// fixed pattern times scale: the tiny denoiser's output layer starts at
// zero (ε ≡ 0: classes and guides would change nothing), this one
// predicts something that depends on x, t and y.
func PatternWeights(scale float32) func(map[string]models.Array) {
	return func(w map[string]models.Array) {
		for name, a := range w {
			for k := range a.Data {
				a.Data[k] = scale * 0.3 * float32(math.Sin(1.7*float64(k)+float64(len(name))))
			}
		}
	}
}

// TinyDenoiser writes dir/name.onnx: a small M_CBN denoiser (8×8 grey,
// base width 8, two levels, three classes and a null class, a linear
// schedule of T steps), its weights edited by edit and its metadata by
// meta when they are not nil.
func TinyDenoiser(t testing.TB, dir, name string, T int, edit func(w map[string]models.Array), meta func(md map[string]string)) string {
	t.Helper()
	cfg := models.DefaultDenoiser()
	cfg.Variant, cfg.ImageSize, cfg.BaseChannels, cfg.ChannelMult, cfg.NumClasses, cfg.NullClass = contract.CBN, 8, 8, []int{1, 2}, 3, true
	sp, err := diffusion.Default("linear", T)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Contract()
	in.Schedule, in.Prediction = sp, contract.PredictionEpsilon
	md := in.Metadata()
	if meta != nil {
		meta(md)
	}
	w := models.InitParams(cfg, 1)
	if edit != nil {
		edit(w)
	}
	return WriteModel(t, filepath.Join(dir, name+".onnx"), cfg, w, models.InitNormStats(cfg), T, md)
}
