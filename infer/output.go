package infer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/field"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/internal/progress"
)

// ClassChoice picks the classes to sample: every class, N images each (the
// zero value), or only class Index when One is set.
type ClassChoice struct {
	One   bool
	Index int
}

// OneClass chooses class i only.
func OneClass(i int) ClassChoice { return ClassChoice{One: true, Index: i} }

func (c ClassChoice) String() string {
	if !c.One {
		return "all"
	}
	return fmt.Sprint(c.Index)
}

// Shard is part K of N of a sampling run: the images whose index ≡ K
// (mod N). The zero value is the whole run.
type Shard struct{ K, N int }

// Whole reports whether s is the whole run.
func (s Shard) Whole() bool { return s.N <= 1 }

// String is "K/N", or "" for the whole run.
func (s Shard) String() string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// ParseShard parses "k/n" (0 <= k < n); "" is the whole run.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	var k, n int
	if _, err := fmt.Sscanf(s, "%d/%d", &k, &n); err != nil || n < 1 || k < 0 || k >= n || fmt.Sprintf("%d/%d", k, n) != s {
		return Shard{}, field.Errorf("infer", "Shard", s, "not k/n with 0 <= k < n")
	}
	return Shard{k, n}, nil
}

func (s Shard) check() error {
	if s.N == 0 && s.K == 0 {
		return nil
	}
	if s.N < 1 || s.K < 0 || s.K >= s.N {
		return field.Errorf("infer", "Shard", fmt.Sprintf("%d/%d", s.K, s.N), "not k/n with 0 <= k < n")
	}
	return nil
}

// SampleOptions is what `condiff sample` asks for.
type SampleOptions struct {
	Model    string
	Out      string
	Class    ClassChoice // an unconditional model takes every class (the zero value) only
	N        int         // images (per class when sampling every class)
	Batch    int
	Seed     uint64
	Sampler  diffusion.Sampler
	Steps    int
	Eta      float64
	Guidance float64
	Shard    Shard
	Session  Options
	Progress io.Writer
	// OnBatch, if set, is called after each batch's images and manifest are
	// written, with the number of images written so far.
	OnBatch func(written int)
	// Replace lets a run write into a directory that already holds sampling
	// outputs it would mix with: those outputs are removed first.
	Replace bool
}

// ManifestEntry is one written image.
type ManifestEntry struct {
	Index     int    `json:"index"`
	Class     int    `json:"class"`
	ClassName string `json:"class_name"`
	Seed      uint64 `json:"seed"`
	File      string `json:"file"`
}

// Manifest lists exactly the images a sampling run has written.
type Manifest struct {
	Model     string          `json:"model"`
	ModelHash string          `json:"model_sha256"`
	Sampler   string          `json:"sampler"`
	Steps     int             `json:"steps"`
	Eta       float64         `json:"eta"`
	Guidance  float64         `json:"guidance"`
	Seed      uint64          `json:"seed"`
	Shard     string          `json:"shard,omitempty"`
	Device    string          `json:"device"`
	Complete  bool            `json:"complete"`
	Images    []ManifestEntry `json:"images"`
}

// SanitizeName makes a class name safe as part of a file name: letters,
// digits, '-', '_' and '.' only, no leading dot, at most 64 bytes.
func SanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 64 {
		out = out[:64]
	}
	if out == "" {
		out = "_"
	}
	return out
}

// Plan resolves classes and shards into the images to make: global indices
// and their labels. With every class on a conditional model, image i has
// class i / n; otherwise every image has the chosen class (0 for an
// unconditional model).
func Plan(info contract.Info, class ClassChoice, n int, shard Shard) (indices, labels []int, err error) {
	if n <= 0 {
		return nil, nil, field.Errorf("infer", "N", n, "must be > 0")
	}
	if err := shard.check(); err != nil {
		return nil, nil, err
	}
	var all []int
	switch {
	case !info.Conditional():
		if class.One {
			return nil, nil, field.Errorf("infer", "Class", class.Index, "the model is unconditional (variant %s) and has no classes", info.Variant)
		}
		all = make([]int, n)
	case !class.One:
		if int64(info.NumClasses)*int64(n) > MaxImages {
			return nil, nil, field.Errorf("infer", "N", n, "%d per class × %d classes is over %d images", n, info.NumClasses, MaxImages)
		}
		for c := 0; c < info.NumClasses; c++ {
			for i := 0; i < n; i++ {
				all = append(all, c)
			}
		}
	default:
		if class.Index < 0 || class.Index >= info.NumClasses {
			return nil, nil, field.Errorf("infer", "Class", class.Index, "out of 0..%d", info.NumClasses-1)
		}
		all = make([]int, n)
		for i := range all {
			all[i] = class.Index
		}
	}
	of := max(1, shard.N)
	for i, c := range all {
		if i%of == shard.K {
			indices = append(indices, i)
			labels = append(labels, c)
		}
	}
	return indices, labels, nil
}

// MaxImages bounds the images one sampling run plans.
const MaxImages = 10_000_000

// checkWritable creates dir and proves a file can be written in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return field.Errorf("infer", "Out", dir, "%v", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return field.Errorf("infer", "Out", dir, "not writable: %v", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ToImage converts [C H W] pixels in [-1, 1] to an 8-bit image.
func ToImage(px []float32, c, size int) image.Image {
	q := func(v float32) uint8 {
		return uint8(math.Round(math.Max(0, math.Min(255, (float64(v)+1)*127.5))))
	}
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, size, size))
		for i := 0; i < size*size; i++ {
			g.Pix[i] = q(px[i])
		}
		return g
	}
	m := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := 0; i < size*size; i++ {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = q(px[i]), q(px[size*size+i]), q(px[2*size*size+i]), 255
	}
	return m
}

// WritePNG encodes an image to path atomically.
func WritePNG(path string, img image.Image) error {
	return fsutil.WriteAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// Grid tiles images in rows (each row a slice of images) with a 2-pixel
// gap, enlarging small images (nearest neighbour) to tiles of at least 64 px.
func Grid(rows [][]image.Image, size int) image.Image {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	scale := max(1, 64/size)
	tile, gap := size*scale, 2
	g := image.NewRGBA(image.Rect(0, 0, cols*(tile+gap)+gap, len(rows)*(tile+gap)+gap))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	for ri, r := range rows {
		for ci, img := range r {
			x0, y0 := gap+ci*(tile+gap), gap+ri*(tile+gap)
			for y := 0; y < tile; y++ {
				for x := 0; x < tile; x++ {
					g.Set(x0+x, y0+y, color.RGBAModel.Convert(img.At(x/scale, y/scale)))
				}
			}
		}
	}
	return g
}

// SampleToDir samples a model into a directory: one PNG per image, a grid
// per class (and one of all classes), and manifest.json, rewritten after
// every batch so that it lists exactly the images on disk.
func SampleToDir(ctx context.Context, o SampleOptions) (*Manifest, error) {
	if o.N <= 0 {
		return nil, field.Errorf("infer", "N", o.N, "must be > 0")
	}
	if err := o.Shard.check(); err != nil {
		return nil, err
	}
	if err := checkWritable(o.Out); err != nil {
		return nil, err
	}
	s, err := Open(o.Model, o.Session)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	defer s.StopOn(ctx)()
	info := s.Info
	if info.Kind != contract.Denoiser {
		return nil, field.Errorf("infer", "Model", o.Model, "is a %s, not a denoiser", info.Kind)
	}
	if o.Guidance != 0 && !info.HasNull {
		return nil, field.Errorf("infer", "Guidance", o.Guidance, "needs a model trained with label dropout; %s has no null class", o.Model)
	}
	sch, err := info.Schedule.Build()
	if err != nil {
		return nil, err
	}
	indices, labels, err := Plan(info, o.Class, o.N, o.Shard)
	if err != nil {
		return nil, err
	}
	C, S := info.Channels, info.ImageSize
	D := C * S * S
	req := diffusion.Request{Sampler: o.Sampler, Steps: o.Steps, Eta: o.Eta, Guidance: o.Guidance, Null: info.Null(),
		Seed: o.Seed, Batch: o.Batch, Values: D, Indices: indices, Labels: labels}
	ts, err := req.Check(sch.Spec.T) // every sampling option, before anything is written
	if err != nil {
		return nil, err
	}
	hash, err := fileHash(o.Model)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Model: o.Model, ModelHash: hash, Sampler: o.Sampler.Name(), Steps: len(ts), Eta: o.Eta, Guidance: o.Guidance,
		Seed: o.Seed, Shard: o.Shard.String(), Device: s.Device, Images: []ManifestEntry{}}
	manifestName, suffix := OutputNames(o.Shard)
	unlock, err := fsutil.Lock(o.Out, strings.TrimSuffix(manifestName, ".json"))
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	defer unlock()
	if err := claim(o.Out, o.Shard, o.Replace); err != nil {
		return nil, err
	}
	writeManifest := func() error {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("infer: manifest: %w", err)
		}
		return fsutil.WriteFileAtomic(filepath.Join(o.Out, manifestName), append(b, '\n'))
	}
	batches := (len(indices) + o.Batch - 1) / o.Batch
	bar := progress.New(o.Progress, batches*len(ts), fmt.Sprintf("sample %d images, %s×%d", len(indices), o.Sampler.Name(), len(ts)))
	defer bar.Close()
	label := map[int]int{}
	for i, gi := range indices {
		label[gi] = labels[i]
	}
	err = diffusion.Sample(ctx, s, sch, req, func() { bar.Add(1) }, func(idx []int, x []float32) (err error) {
		// A batch lands whole or not at all: on any failure its PNGs are
		// removed again, so the manifest on disk lists exactly the files.
		before := len(m.Images)
		defer func() {
			if err != nil {
				for _, e := range m.Images[before:] {
					os.Remove(filepath.Join(o.Out, e.File))
				}
				m.Images = m.Images[:before]
			}
		}()
		for i, gi := range idx {
			c := label[gi]
			file := fmt.Sprintf("%06d_%s.png", gi, fileClass(info, c))
			m.Images = append(m.Images, ManifestEntry{Index: gi, Class: c, ClassName: info.ClassName(c), Seed: o.Seed, File: file})
			if err := WritePNG(filepath.Join(o.Out, file), ToImage(x[i*D:(i+1)*D], C, S)); err != nil {
				return fmt.Errorf("infer: %w", err)
			}
		}
		if err := writeManifest(); err != nil {
			return err
		}
		if o.OnBatch != nil {
			o.OnBatch(len(m.Images))
		}
		return nil
	})
	if err != nil {
		// Whatever ended the run, the manifest says what is on disk; a run
		// that failed before its first image leaves no manifest at all.
		if len(m.Images) == 0 && ctx.Err() == nil {
			os.Remove(filepath.Join(o.Out, manifestName))
			return m, err
		}
		if werr := writeManifest(); werr != nil && ctx.Err() != nil {
			return m, werr
		}
		return m, err
	}
	m.Complete = true
	if err := writeManifest(); err != nil {
		return m, err
	}
	bar.Finish()
	return m, WriteGrids(o.Out, suffix, m, info, C, S)
}

// OutputNames is the manifest name of a run (manifest.json, or
// manifest.shard-K-of-N.json) and the suffix of its grid names ("" or
// ".shard-K-of-N"), so shards sharing a directory never overwrite each
// other's files.
func OutputNames(shard Shard) (manifest, gridSuffix string) {
	if shard.Whole() {
		return "manifest.json", ""
	}
	suffix := fmt.Sprintf(".shard-%d-of-%d", shard.K, shard.N)
	return "manifest" + suffix + ".json", suffix
}

// manifestShard is the shard a manifest file name (OutputNames' first
// result) belongs to; ok is false for manifest.json and for other names.
func manifestShard(name string) (s Shard, ok bool) {
	if _, err := fmt.Sscanf(name, "manifest.shard-%d-of-%d.json", &s.K, &s.N); err != nil || s.N < 1 || s.K < 0 || s.K >= s.N {
		return Shard{}, false
	}
	return s, true
}

// ErrUsed is returned when an output directory already holds outputs that
// a new run would mix with.
var ErrUsed = errors.New("already holds sampling outputs")

// claim checks that dir holds no outputs this run would mix with: for a
// whole run, no manifest and no PNG at all; for shard K of N, no whole-run
// manifest, no manifest of K/N itself and none of another shard count.
// With replace, those outputs (the manifests, the files they list, the
// grids) are removed instead.
func claim(dir string, shard Shard, replace bool) error {
	manifests, _ := filepath.Glob(filepath.Join(dir, "manifest*.json"))
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	own, suffix := OutputNames(shard)
	var clash []string
	for _, mf := range manifests {
		base := filepath.Base(mf)
		other, isShard := manifestShard(base)
		if shard.Whole() || base == own || !isShard || other.N != shard.N {
			clash = append(clash, mf)
		}
	}
	if shard.Whole() && len(manifests) == 0 && len(pngs) > 0 {
		return field.Errorf("infer", "Out", dir, "%w: %d PNG files without a manifest; choose an empty directory", ErrUsed, len(pngs))
	}
	if len(clash) == 0 {
		return nil
	}
	if !replace {
		return field.Errorf("infer", "Out", dir, "%w (%s); choose another directory, or replace them", ErrUsed, filepath.Base(clash[0]))
	}
	for _, mf := range clash {
		if m, err := readManifest(mf); err == nil {
			for _, e := range m.Images {
				if filepath.IsLocal(e.File) && filepath.Dir(e.File) == "." {
					os.Remove(filepath.Join(dir, e.File))
				}
			}
		}
		if err := os.Remove(mf); err != nil {
			return fmt.Errorf("infer: replace %s: %w", mf, err)
		}
	}
	grids, _ := filepath.Glob(filepath.Join(dir, "grid*"+suffix+".png"))
	for _, g := range grids {
		os.Remove(g)
	}
	return nil
}

// fileClass is the class part of an image or grid file name.
func fileClass(info contract.Info, c int) string {
	if !info.Conditional() {
		return string(contract.Uncond)
	}
	return SanitizeName(info.ClassName(c))
}

// WriteGrids writes grid_CLASS.png per class (at most 64 images, 8 a row)
// and grid.png with a row per class (at most 16 images a row) from the
// images a manifest lists, suffix inserted before ".png". Only those images
// are read, so memory does not grow with the number of samples. Classes
// whose names sanitise alike get their index in the name.
func WriteGrids(dir, suffix string, m *Manifest, info contract.Info, c, size int) error {
	byClass := map[int][]image.Image{}
	var classes []int
	for _, e := range m.Images {
		if len(byClass[e.Class]) >= 64 {
			continue
		}
		f, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			return fmt.Errorf("infer: grid: %w", err)
		}
		img, err := png.Decode(bytes.NewReader(f))
		if err != nil {
			return fmt.Errorf("infer: grid: %s: %w", e.File, err)
		}
		if _, ok := byClass[e.Class]; !ok {
			classes = append(classes, e.Class)
		}
		byClass[e.Class] = append(byClass[e.Class], img)
	}
	sort.Ints(classes)
	uses := map[string]int{}
	for _, cl := range classes {
		uses[fileClass(info, cl)]++
	}
	var rows [][]image.Image
	for _, cl := range classes {
		imgs := byClass[cl]
		row := imgs[:min(16, len(imgs))]
		rows = append(rows, row)
		name := fileClass(info, cl)
		if uses[name] > 1 {
			name = fmt.Sprintf("%d_%s", cl, name)
		}
		var crow [][]image.Image
		for i := 0; i < len(imgs); i += 8 {
			crow = append(crow, imgs[i:min(i+8, len(imgs))])
		}
		if err := WritePNG(filepath.Join(dir, "grid_"+name+suffix+".png"), Grid(crow, size)); err != nil {
			return err
		}
	}
	return WritePNG(filepath.Join(dir, "grid"+suffix+".png"), Grid(rows, size))
}
