package onnxwire

import (
	"os"
	"testing"
)

// FuzzDecode: any bytes decode or fail; nothing panics.
func FuzzDecode(f *testing.F) {
	b, err := os.ReadFile("../../infer/testdata/torch_cbn.onnx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:min(len(b), 4096)])
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err == nil && m == nil {
			t.Fatal("nil model without an error")
		}
	})
}
