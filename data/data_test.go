package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeIDX(t *testing.T, path string, magic uint32, dims []uint32, body []byte) {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	binary.Write(z, binary.BigEndian, magic)
	binary.Write(z, binary.BigEndian, dims)
	z.Write(body)
	z.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIDX(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, []uint32{2, 2, 2}, []byte{0, 255, 128, 0, 10, 20, 30, 40})
	writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, []uint32{2}, []byte{3, 9})
	s, err := Load(Options{Name: "mnist", Dir: dir, Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 2 || len(s.Images) != 2*16 || !slices.Equal(s.Labels, []int{3, 9}) {
		t.Fatalf("loaded %d images, %d values, labels %v", s.N, len(s.Images), s.Labels)
	}
	if s.Images[0] != -1 || s.Images[3] != 1 { // corners keep the source pixels: 0 -> -1, 255 -> 1
		t.Fatalf("pixels %v", s.Images[:4])
	}
	// truncated images
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, []uint32{3, 2, 2}, []byte{0, 1, 2, 3, 4})
	if _, err := Load(Options{Name: "mnist", Dir: dir, Size: 4}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated: %v", err)
	}
	// label out of range
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, []uint32{2, 2, 2}, make([]byte, 8))
	writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, []uint32{2}, []byte{3, 12})
	if _, err := Load(Options{Name: "mnist", Dir: dir, Size: 4}); err == nil || !strings.Contains(err.Error(), "label 12 of item 1 is out of range") {
		t.Fatalf("label range: %v", err)
	}
	// wrong magic
	writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x803, []uint32{2}, []byte{3, 1})
	if _, err := Load(Options{Name: "mnist", Dir: dir, Size: 4}); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("magic: %v", err)
	}
}

func writePNG(t *testing.T, path string, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 6, 4))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	img.Set(0, 0, color.Gray{255 - v})
	var b bytes.Buffer
	png.Encode(&b, img)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"cars", "dogs"} {
		os.MkdirAll(filepath.Join(dir, c), 0o755)
		writePNG(t, filepath.Join(dir, c, "a.png"), 10)
		writePNG(t, filepath.Join(dir, c, "b.png"), 200)
	}
	s, err := Load(Options{Name: "folder:" + dir, Size: 4, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || s.C != 3 || !slices.Equal(s.ClassNames, []string{"cars", "dogs"}) || len(s.Images) != 4*3*16 {
		t.Fatalf("folder: %d images, %d channels, classes %v", s.N, s.C, s.ClassNames)
	}
	bad := filepath.Join(dir, "dogs", "c.png")
	os.WriteFile(bad, []byte("not a png"), 0o644)
	if _, err := Load(Options{Name: "folder:" + dir, Size: 4}); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "SkipBad false") {
		t.Fatalf("corrupt image: %v", err)
	}
	skipped := 0
	s, err = Load(Options{Name: "folder:" + dir, Size: 4, SkipBad: true, Skipped: &skipped})
	if err != nil || skipped != 1 || s.N != 4 {
		t.Fatalf("skip-bad: %v, skipped %d, %d images", err, skipped, s.N)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	if _, err := Load(Options{Name: "folder:" + dir, Size: 4, SkipBad: true}); err == nil || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "no readable") {
		t.Fatalf("empty class: %v", err)
	}
}

func TestSyntheticAndClasses(t *testing.T) {
	a := Synthetic(Options{Size: 8, Channels: 1, Seed: 3, PerClass: 5})
	b := Synthetic(Options{Size: 8, Channels: 1, Seed: 3, PerClass: 5})
	test := Synthetic(Options{Size: 8, Channels: 1, Seed: 3, PerClass: 5, Test: true})
	if !slices.Equal(a.Images, b.Images) || slices.Equal(a.Images, test.Images) || a.N != 20 {
		t.Fatal("synthetic is not deterministic per seed and split")
	}
	s, err := Load(Options{Name: "synthetic", Size: 8, Seed: 3, PerClass: 5, Classes: []string{"vstripes", "0"}})
	if err != nil || !slices.Equal(s.ClassNames, []string{"vstripes", "disc"}) || s.N != 10 || s.Labels[0] != 1 {
		t.Fatalf("subset: %v %v %d %v", err, s.ClassNames, s.N, s.Labels[:1])
	}
	if _, err := Load(Options{Name: "synthetic", Size: 8, Classes: []string{"disc", "disc"}}); err == nil {
		t.Fatal("a class given twice was accepted")
	}
}

func TestRealDatasets(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 70k images")
	}
	for _, name := range []string{"mnist", "fashion-mnist"} {
		s, err := Load(Options{Name: name, Size: 32, Test: true, Classes: []string{"1", "8"}})
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
		if s.N < 1900 || s.Size != 32 || len(s.Images) != s.N*32*32 {
			t.Fatalf("%s: %d images of size %d", name, s.N, s.Size)
		}
	}
}
