package data

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"strings"
	"testing"
)

// TestWriteNPZ: the archive holds the four arrays, each a .npy of format
// 1.0 whose header pads the data to 64 bytes, with the set's values
// (numpy.load reading it is TestRecipeParity/synthetic's part).
func TestWriteNPZ(t *testing.T) {
	s := &Set{Name: "synthetic", N: 2, C: 1, Size: 2, Images: []float32{-1, 0, 0.5, 1, 1, 1, -1, -0.25},
		Labels: []int{3, 0}, ClassNames: []string{"disc", "ü", "x", "y"}}
	var b bytes.Buffer
	if err := s.WriteNPZ(&b); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"images.npy":  "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2), }",
		"labels.npy":  "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
		"classes.npy": "{'descr': '<U4', 'fortran_order': False, 'shape': (4,), }",
		"name.npy":    "{'descr': '<U9', 'fortran_order': False, 'shape': (), }",
	}
	body := map[string][]byte{}
	for _, f := range z.File {
		r, _ := f.Open()
		all, _ := io.ReadAll(r)
		if string(all[:8]) != "\x93NUMPY\x01\x00" {
			t.Fatalf("%s: magic %q", f.Name, all[:8])
		}
		n := int(binary.LittleEndian.Uint16(all[8:10]))
		if (10+n)%64 != 0 || all[10+n-1] != '\n' {
			t.Errorf("%s: header of %d bytes does not end a 64-byte block with a newline", f.Name, n)
		}
		if h := strings.TrimRight(string(all[10:10+n]), " \n"); h != want[f.Name] {
			t.Errorf("%s: header %q, want %q", f.Name, h, want[f.Name])
		}
		body[f.Name] = all[10+n:]
	}
	if len(body) != 4 {
		t.Fatalf("%d arrays, want 4", len(body))
	}
	for i, v := range s.Images {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(body["images.npy"][4*i:])); got != v {
			t.Fatalf("image value %d: %v, want %v", i, got, v)
		}
	}
	if binary.LittleEndian.Uint64(body["labels.npy"][0:]) != 3 || len(body["labels.npy"]) != 16 {
		t.Errorf("labels %v", body["labels.npy"])
	}
	// "ü" is one code point, padded to 4 with zeros.
	if got := binary.LittleEndian.Uint32(body["classes.npy"][16:]); got != 'ü' || len(body["classes.npy"]) != 4*4*4 {
		t.Errorf("classes: second name starts with %U, %d bytes", got, len(body["classes.npy"]))
	}
}
