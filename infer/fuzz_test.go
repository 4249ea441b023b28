package infer

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

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

// FuzzClassifierOutputs: whatever a classifier returns (any shape, any
// values), the check accepts only [n K] logits and [n D] features with D in
// 1..MaxFeatures, all finite, and never panics.
func FuzzClassifierOutputs(f *testing.F) {
	f.Add(2, 3, int64(2), int64(4), []byte{1, 2, 3})
	f.Add(1, 1, int64(1), int64(5000), []byte{0xff, 0xc0, 0, 0}) // too wide; NaN bytes
	f.Add(0, 0, int64(0), int64(0), []byte{})
	f.Add(1, 1, int64(1), int64(1), []byte{0, 0, 0xc0, 0x7f}) // a NaN logit
	f.Fuzz(func(t *testing.T, n, k int, s0, s1 int64, raw []byte) {
		if n < 0 || n > 64 || k < 0 || k > 64 || s1 < -1 || s1 > MaxFeatures+8 || s0 < -1 || s0 > 64 {
			return
		}
		vals := func(m int) []float32 { // values from raw, 4 bytes each, zero past its end
			v := make([]float32, max(m, 0))
			for i := range v {
				if 4*i+4 <= len(raw) {
					v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			}
			return v
		}
		logits, features := vals(n*k), vals(int(max(s0, 0)*max(s1, 0)))
		dim, err := checkClassifierOutputs(logits, features, []int64{s0, s1}, n, k)
		if err != nil {
			return
		}
		if dim < 1 || dim > MaxFeatures || int64(n) != s0 || len(features) != n*dim || len(logits) != n*k {
			t.Fatalf("accepted shape %v for n=%d, k=%d: dim %d", []int64{s0, s1}, n, k, dim)
		}
		for _, x := range append(logits, features...) {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("accepted a non-finite value %v", x)
			}
		}
	})
}
