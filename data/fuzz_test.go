package data

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIDX: any IDX bytes read or fail, and never allocate by the header's
// claim (a 2^24-image header over a few bytes must fail fast).
func FuzzIDX(f *testing.F) {
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0, 0, 8, 3, 1, 0, 0, 0, 0, 0, 16, 0, 0, 0, 16, 0})
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "x-idx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if px, n, h, w, err := ReadIDXImages(path); err == nil && len(px) != n*h*w {
			t.Fatalf("%d pixels for %d×%d×%d", len(px), n, h, w)
		}
		if l, err := ReadIDXLabels(path, 10); err == nil {
			for _, v := range l {
				if v < 0 || v >= 10 {
					t.Fatalf("label %d", v)
				}
			}
		}
	})
}

// FuzzImage: any image file is read at the requested size or refused.
func FuzzImage(f *testing.F) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 5)))
	f.Add(buf.Bytes())
	huge := append([]byte(nil), buf.Bytes()...)
	huge[16], huge[20] = 0x7f, 0x7f // IHDR width and height near 2^31
	f.Add(huge)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "x.png")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []int{1, 3} {
			if px, err := readImage(path, c, 8); err == nil && len(px) != c*8*8 {
				t.Fatalf("%d values for %d×8×8", len(px), c)
			}
		}
	})
}
