package infer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/internal/field"
)

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

// ErrUsed is returned when an output directory already holds outputs that
// a new run would mix with.
var ErrUsed = errors.New("already holds sampling outputs")

// claim checks that dir holds no outputs this run would mix with: for a
// whole run, no manifest and no PNG at all; for shard K of N, no whole-run
// manifest, none of another shard count and none of another plan.
// The run's own manifest (manifest.json, or K/N's) of the same plan is no
// clash: it is returned as prior, and the run finishes it (a run killed
// partway, or a retried Kubernetes pod, resumes; a finished one is done).
// With replace, those outputs (the manifests, the files they list, the
// grids) are removed instead, the run's own manifest too.
func claim(dir string, shard Shard, replace bool, plan *Manifest) (prior *Manifest, err error) {
	manifests, _ := filepath.Glob(filepath.Join(dir, "manifest*.json"))
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	own, suffix := OutputNames(shard)
	var clash []string
	for _, mf := range manifests {
		base := filepath.Base(mf)
		other, isShard := manifestShard(base)
		switch {
		case base == own && !replace:
			if m, err := readManifest(mf); err == nil && samePlan(m, plan) {
				prior = m
			} else {
				clash = append(clash, mf)
			}
		case shard.Whole() || base == own || !isShard || other.N != shard.N:
			clash = append(clash, mf)
		default:
			if m, err := readManifest(mf); err != nil || !samePlan(m, plan) {
				clash = append(clash, mf) // a shard of another plan
			}
		}
	}
	if shard.Whole() && len(manifests) == 0 && len(pngs) > 0 {
		return nil, field.Errorf("infer", "Out", dir, "%w: %d PNG files without a manifest; choose an empty directory", ErrUsed, len(pngs))
	}
	if len(clash) == 0 {
		return prior, nil
	}
	if !replace {
		return nil, field.Errorf("infer", "Out", dir, "%w of another plan or run (%s); choose another directory", ErrUsed, filepath.Base(clash[0]))
	}
	// Only what a manifest valid by eval's own rules lists is removed, and
	// only regular .png files: a manifest that lists anything else is not
	// condiff's to act on.
	var doomed []string
	for _, mf := range clash {
		m, err := readManifest(mf)
		if err == nil {
			err = checkEntries(mf, m.Images)
		}
		if err != nil {
			return nil, field.Errorf("infer", "Replace", true, "%s is not a valid sample manifest (%v); nothing was removed: remove it yourself", mf, err)
		}
		for _, e := range m.Images {
			p := filepath.Join(dir, e.File)
			if st, err := os.Lstat(p); err == nil && !st.Mode().IsRegular() {
				return nil, field.Errorf("infer", "Replace", true, "%s lists %s, which is not a regular file; nothing was removed", mf, e.File)
			}
			doomed = append(doomed, p)
		}
	}
	for _, p := range doomed {
		os.Remove(p)
	}
	for _, mf := range clash {
		if err := os.Remove(mf); err != nil {
			return nil, fmt.Errorf("infer: replace %s: %w", mf, err)
		}
	}
	grids, _ := filepath.Glob(filepath.Join(dir, "grid*"+suffix+".png"))
	for _, g := range grids {
		os.Remove(g)
	}
	return nil, nil
}

// kept is the entries of a prior run's manifest whose files are still
// there and whole: regular PNG files of the model's size that decode.
// The others are made again.
func kept(dir string, prior *Manifest, size int) []ManifestEntry {
	if checkEntries(dir, prior.Images) != nil {
		return nil
	}
	var out []ManifestEntry
	for _, e := range prior.Images {
		if img, err := readSample(dir, e.File); err == nil && img.Bounds().Dx() == size && img.Bounds().Dy() == size {
			out = append(out, e)
		}
	}
	return out
}
