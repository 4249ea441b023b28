package infer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeManifest(t *testing.T, path string, m Manifest) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadSampleDir: shard manifests are read as their union, complete only
// with every shard complete; hostile entries are refused with the manifest
// and the entry named.
func TestReadSampleDir(t *testing.T) {
	dir := t.TempDir()
	base := Manifest{Model: "m.onnx", ModelHash: "h", Sampler: "ddim", Steps: 10, Seed: 1, Complete: true}
	s0, s1 := base, base
	s0.Images = []ManifestEntry{{Index: 0, File: "000000_a.png"}, {Index: 2, File: "000002_a.png"}}
	s1.Images = []ManifestEntry{{Index: 1, Class: 1, File: "000001_b.png"}}
	writeManifest(t, filepath.Join(dir, "manifest.shard-0-of-2.json"), s0)
	if m, err := ReadSampleDir(dir); err != nil || m.Complete || len(m.Images) != 2 {
		t.Fatalf("one shard of two: complete %v, %d images, %v", m != nil && m.Complete, len(m.Images), err)
	}
	writeManifest(t, filepath.Join(dir, "manifest.shard-1-of-2.json"), s1)
	m, err := ReadSampleDir(dir)
	if err != nil || !m.Complete || len(m.Images) != 3 || m.Images[1].Index != 1 {
		t.Fatalf("both shards: %+v %v", m, err)
	}
	other := base
	other.Seed = 9
	writeManifest(t, filepath.Join(dir, "manifest.shard-1-of-2.json"), other)
	if _, err := ReadSampleDir(dir); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("shards of different runs: %v", err)
	}

	for _, c := range []struct {
		images []ManifestEntry
		want   string
	}{
		{[]ManifestEntry{{Index: 0, File: "../secret.png"}}, "in the manifest's own directory"},
		{[]ManifestEntry{{Index: 0, File: "/etc/passwd"}}, "in the manifest's own directory"},
		{[]ManifestEntry{{Index: 0, File: "sub/x.png"}}, "in the manifest's own directory"},
		{[]ManifestEntry{{Index: 0, File: "x.jpg"}}, "in the manifest's own directory"},
		{[]ManifestEntry{{Index: 0, Class: -1, File: "x.png"}}, "negative class"},
		{[]ManifestEntry{{Index: -3, File: "x.png"}}, "negative index"},
		{[]ManifestEntry{{Index: 0, File: "x.png"}, {Index: 0, File: "y.png"}}, "index listed twice"},
		{[]ManifestEntry{{Index: 0, File: "x.png"}, {Index: 1, File: "x.png"}}, "file listed twice"},
	} {
		d := t.TempDir()
		bad := base
		bad.Images = c.images
		writeManifest(t, filepath.Join(d, "manifest.json"), bad)
		if _, err := ReadSampleDir(d); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "manifest.json") {
			t.Errorf("%+v: %v; want %q", c.images, err, c.want)
		}
	}
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "manifest.json"), []byte("\n"), 0o644)
	if _, err := ReadSampleDir(d); err == nil || !strings.Contains(err.Error(), "not a sample manifest") {
		t.Errorf("empty manifest: %v", err)
	}
	if _, err := ReadSampleDir(t.TempDir()); err == nil {
		t.Error("a directory without manifests accepted")
	}
}
