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
// manifest, no manifest of K/N itself, none of another shard count and none
// of another plan.
// With replace, those outputs (the manifests, the files they list, the
// grids) are removed instead.
func claim(dir string, shard Shard, replace bool, plan *Manifest) error {
	manifests, _ := filepath.Glob(filepath.Join(dir, "manifest*.json"))
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	own, suffix := OutputNames(shard)
	var clash []string
	for _, mf := range manifests {
		base := filepath.Base(mf)
		other, isShard := manifestShard(base)
		if shard.Whole() || base == own || !isShard || other.N != shard.N {
			clash = append(clash, mf)
		} else if m, err := readManifest(mf); err != nil || !samePlan(m, plan) {
			clash = append(clash, mf) // a shard of another plan
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
			return field.Errorf("infer", "Replace", true, "%s is not a valid sample manifest (%v); nothing was removed: remove it yourself", mf, err)
		}
		for _, e := range m.Images {
			p := filepath.Join(dir, e.File)
			if st, err := os.Lstat(p); err == nil && !st.Mode().IsRegular() {
				return field.Errorf("infer", "Replace", true, "%s lists %s, which is not a regular file; nothing was removed", mf, e.File)
			}
			doomed = append(doomed, p)
		}
	}
	for _, p := range doomed {
		os.Remove(p)
	}
	for _, mf := range clash {
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
