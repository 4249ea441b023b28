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
