package infer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/internal/strictjson"
)

// ReadSampleDir reads the manifest of a sample directory and checks it:
// manifest.json, or the union of the shard manifests
// manifest.shard-K-of-N.json that shards of one run wrote there. Entries
// must name plain .png files inside dir, have non-negative indices and
// classes, and list each index once. Complete is true only if the run (all
// N shards) finished.
func ReadSampleDir(dir string) (*Manifest, error) {
	one := filepath.Join(dir, "manifest.json")
	shards, _ := filepath.Glob(filepath.Join(dir, "manifest.shard-*-of-*.json"))
	if _, err := os.Stat(one); err == nil {
		if len(shards) > 0 {
			return nil, fmt.Errorf("infer: %s holds both manifest.json and shard manifests (%s): two runs wrote there; keep one", dir, filepath.Base(shards[0]))
		}
		m, err := readManifest(one)
		if err != nil {
			return nil, err
		}
		return m, checkEntries(one, m.Images)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("infer: %s holds no manifest.json and no shard manifests", dir)
	}
	sort.Strings(shards)
	var out *Manifest
	seen := map[int]bool{}
	total := 0
	for _, p := range shards {
		sh, ok := manifestShard(filepath.Base(p))
		if !ok {
			return nil, fmt.Errorf("infer: %s: not a shard manifest name", p)
		}
		k, n := sh.K, sh.N
		m, err := readManifest(p)
		if err != nil {
			return nil, err
		}
		if out == nil {
			head := *m
			out = &head
			out.Images = nil
			out.Complete = true
			out.Shard = ""
			total = n
		}
		if n != total {
			return nil, fmt.Errorf("infer: %s: shards of %d and of %d runs share %s", p, total, n, dir)
		}
		if !samePlan(m, out) {
			return nil, fmt.Errorf("infer: %s: its plan (model, sampler, steps, η, guidance, seed, n, class) differs from the other shards'", p)
		}
		seen[k] = true
		out.Complete = out.Complete && m.Complete
		out.Images = append(out.Images, m.Images...)
	}
	out.Complete = out.Complete && len(seen) == total
	sort.Slice(out.Images, func(i, j int) bool { return out.Images[i].Index < out.Images[j].Index })
	return out, checkEntries(filepath.Join(dir, "manifest.shard-*.json"), out.Images)
}

// MaxSampleBytes bounds one sample PNG that grids and eval read back (a
// regular file; anything else is refused before it is read).
const MaxSampleBytes = 64 << 20

// MaxManifestBytes bounds a manifest file (a regular file; anything else
// is refused before it is read): MaxImages entries of about 100 bytes.
const MaxManifestBytes = 1 << 30

func readManifest(path string) (*Manifest, error) {
	b, err := fsutil.ReadSmallFile(path, MaxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	var m Manifest
	if err := strictjson.Decode(b, &m, false); err != nil {
		return nil, fmt.Errorf("infer: %s: not a sample manifest: %w", path, err)
	}
	return &m, nil
}

// checkEntries validates the image entries of a manifest.
func checkEntries(path string, images []ManifestEntry) error {
	if len(images) > MaxImages {
		return fmt.Errorf("infer: %s: %d images listed, over %d", path, len(images), MaxImages)
	}
	index := map[int]bool{}
	files := map[string]bool{}
	for i, e := range images {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("infer: %s: image %d (index %d, file %q): %s", path, i, e.Index, e.File, fmt.Sprintf(format, a...))
		}
		switch {
		case e.File == "" || filepath.Base(e.File) != e.File || !filepath.IsLocal(e.File) || !strings.HasSuffix(e.File, ".png"):
			return bad("the file must be a .png in the manifest's own directory")
		case e.Index < 0:
			return bad("negative index")
		case e.Class < 0:
			return bad("negative class")
		case index[e.Index]:
			return bad("index listed twice")
		case files[e.File]:
			return bad("file listed twice")
		}
		index[e.Index], files[e.File] = true, true
	}
	return nil
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
	Model     string  `json:"model"`
	ModelHash string  `json:"model_sha256"`
	Sampler   string  `json:"sampler"`
	Steps     int     `json:"steps"`
	Eta       float64 `json:"eta"`
	Guidance  float64 `json:"guidance"`
	// GuidanceInterval is the σ range guidance applied in ("": every step).
	GuidanceInterval string `json:"guidance_interval,omitempty"`
	// Guide and GuideHash name the autoguidance guide ("": the null class).
	Guide     string          `json:"guide,omitempty"`
	GuideHash string          `json:"guide_sha256,omitempty"`
	Seed      uint64          `json:"seed"`
	N         int             `json:"n,omitempty"`     // images asked for (per class when Class is "all")
	Class     string          `json:"class,omitempty"` // the class choice: "all" or an index
	Shard     string          `json:"shard,omitempty"`
	Device    string          `json:"device"`
	Backend   string          `json:"backend,omitempty"` // ort or go
	Complete  bool            `json:"complete"`
	Images    []ManifestEntry `json:"images"`
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

// samePlan reports whether two manifests come from one sampling plan: the
// same model, sampler, steps, η, guidance (weight, interval, guide), seed,
// n and class choice.
func samePlan(a, b *Manifest) bool {
	return a.ModelHash == b.ModelHash && a.Sampler == b.Sampler && a.Steps == b.Steps && a.Eta == b.Eta &&
		a.Guidance == b.Guidance && a.GuidanceInterval == b.GuidanceInterval && a.GuideHash == b.GuideHash &&
		a.Seed == b.Seed && a.N == b.N && a.Class == b.Class
}
