package infer

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeONNX: any bytes decode or fail; nothing panics.
func FuzzDecodeONNX(f *testing.F) {
	b, err := os.ReadFile("testdata/torch_cbn.onnx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:min(len(b), 4096)])
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeONNX(b)
		if err == nil && m == nil {
			t.Fatal("nil model without an error")
		}
	})
}

// FuzzManifest: any manifest bytes are read or refused; what is accepted
// names only plain .png files, each index once.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"model":"m.onnx","images":[{"index":0,"class":1,"file":"000000_a.png"}],"complete":true}`))
	f.Add([]byte(`{"images":[{"index":0,"file":"../x.png"},{"index":0,"file":"x.png"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadSampleDir(dir)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, e := range m.Images {
			if filepath.Base(e.File) != e.File || !filepath.IsLocal(e.File) || seen[e.Index] || e.Index < 0 || e.Class < 0 {
				t.Fatalf("accepted %+v", e)
			}
			seen[e.Index] = true
		}
	})
}

// FuzzParseShard: what parses prints back as itself and is a valid shard.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"", "0/1", "3/8", "8/8", "-1/2", "1/0", "01/2", "1/2/3", " 1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err != nil {
			return
		}
		if !sh.Whole() && (sh.String() != s || sh.K < 0 || sh.K >= sh.N) || sh.Whole() && sh.K != 0 {
			t.Fatalf("ParseShard(%q) = %+v", s, sh)
		}
	})
}
