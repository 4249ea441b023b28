package infer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	// Interval limits guidance to the steps whose noise level σ_t lies in
	// it (the zero value: every step).
	Interval diffusion.Interval
	// Guide, if set, is the autoguidance guide: a denoiser file of the same
	// schedule, classes and image shape, whose ε(x, y) takes the null row's
	// place.
	Guide    string
	Shard    Shard
	Session  Options
	Progress io.Writer
	// OnBatch, if set, is called after each batch's images and manifest are
	// written, with the number of images written so far.
	OnBatch func(written int)
	// Replace lets a run write into a directory that already holds sampling
	// outputs it would mix with: those outputs are removed first.
	Replace bool
	// OnResume, if set, is called when Out holds this run's own manifest
	// of the same plan (a run or shard killed partway, or run again): with
	// the images kept from it and how many the plan has. kept == total:
	// the run was done; nothing is sampled.
	OnResume func(kept, total int)
}

// FileHash is the SHA-256 of a file, in hex: what manifests record of the
// model that made their images.
func FileHash(path string) (string, error) {
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

// SampleToDir samples a model into a directory: one PNG per image, a grid
// per class (and one of all classes), and manifest.json, rewritten after
// every batch so that it lists exactly the images on disk.
func SampleToDir(ctx context.Context, o SampleOptions) (*Manifest, error) {
	// Plan checks N and Shard, Request.Check the sampling options; both run
	// before anything is written.
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
	if err := o.Sampling().Check(info); err != nil {
		return nil, err
	}
	var guide *Session
	guideHash := ""
	if o.Guide != "" {
		if guide, err = Open(o.Guide, o.Session); err != nil {
			return nil, err
		}
		defer guide.Close()
		defer guide.StopOn(ctx)()
		if err := guide.Info.CheckGuide(info); err != nil {
			return nil, field.Errorf("infer", "Guide", o.Guide, "%v (%s)", err, o.Model)
		}
		if guideHash, err = FileHash(o.Guide); err != nil {
			return nil, err
		}
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
		Interval: o.Interval, Seed: o.Seed, Batch: o.Batch, Values: D, Indices: indices, Labels: labels}
	if guide != nil {
		req.Guide = guide
	}
	ts, err := req.Check(sch.Spec.T) // every sampling option, before anything is written
	if err != nil {
		return nil, err
	}
	hash, err := FileHash(o.Model)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Model: o.Model, ModelHash: hash, Sampler: o.Sampler.Name(), Steps: len(ts), Eta: o.Eta, Guidance: o.Guidance,
		Seed: o.Seed, N: o.N, Class: o.Class.String(), Shard: o.Shard.String(), Device: s.Device, Backend: s.Backend, Images: []ManifestEntry{}}
	if o.Guidance != 0 && !o.Interval.Everywhere() {
		m.GuidanceInterval = o.Interval.String()
	}
	if guide != nil {
		m.Guide, m.GuideHash = o.Guide, guideHash
	}
	manifestName, suffix := OutputNames(o.Shard)
	// The directory's lock, held for the whole run: a whole run and a
	// --replace have it to themselves; shards share it (and each holds its
	// own manifest's lock, so one shard never runs twice at once).
	lockDir := fsutil.LockShared
	if o.Shard.Whole() || o.Replace {
		lockDir = fsutil.Lock
	}
	unlockDir, err := lockDir(o.Out, "samples")
	if err != nil {
		return nil, fmt.Errorf("infer: %w: another run is writing there (a whole run or a --replace needs the directory to itself; shards of one plan share it)", err)
	}
	defer unlockDir()
	unlock, err := fsutil.Lock(o.Out, strings.TrimSuffix(manifestName, ".json"))
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	defer unlock()
	writeManifest := func() error {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("infer: manifest: %w", err)
		}
		return fsutil.WriteFileAtomic(filepath.Join(o.Out, manifestName), append(b, '\n'))
	}
	// Claiming the directory and stating this run's plan in its manifest is
	// one step for shards starting side by side: a later shard sees the
	// plan of every earlier one and refuses to mix with a different plan.
	unplan, err := fsutil.LockWait(o.Out, "plan")
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	prior, err := claim(o.Out, o.Shard, o.Replace, m)
	if err == nil && prior != nil {
		// The same plan's own manifest: keep its images that are whole,
		// make the rest. Each image's noise comes from (seed, index)
		// alone, so the images made now are those the first run would
		// have made.
		m.Images = kept(o.Out, prior, S)
		have := map[int]bool{}
		for _, e := range m.Images {
			have[e.Index] = true
		}
		var todo, todoLabels []int
		for i, gi := range indices {
			if !have[gi] {
				todo, todoLabels = append(todo, gi), append(todoLabels, labels[i])
			}
		}
		if len(todo) == 0 {
			m.Complete = true
		}
		if o.OnResume != nil {
			o.OnResume(len(m.Images), len(indices))
		}
		indices, labels = todo, todoLabels
		req.Indices, req.Labels = todo, todoLabels
	}
	if err == nil && (!o.Shard.Whole() || prior != nil) {
		err = writeManifest()
	}
	unplan()
	if err != nil {
		return nil, err
	}
	if m.Complete {
		return m, WriteGrids(o.Out, suffix, m, info, C, S)
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
			file := FileName(info, gi, c)
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
	sort.Slice(m.Images, func(i, j int) bool { return m.Images[i].Index < m.Images[j].Index }) // a resumed run's too
	if err := writeManifest(); err != nil {
		return m, err
	}
	bar.Finish()
	return m, WriteGrids(o.Out, suffix, m, info, C, S)
}
