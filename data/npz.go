package data

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// WriteNPZ writes the set as a NumPy .npz archive (numpy.load reads it):
// images float32 [N C H W] in [-1, 1] as condiff trains on them, labels
// int64 [N], classes (the class names, unicode [K]) and name (the
// dataset's name, as runs record it). The torch trainer trains on such a
// file (condiff_torch.train --data-file) for datasets it cannot read itself
// — the synthetic set, image folders, class subsets — with condiff's own
// preprocessing by construction.
func (s *Set) WriteNPZ(w io.Writer) error {
	z := zip.NewWriter(w)
	arrays := []struct {
		name  string
		descr string
		shape []int
		data  func(io.Writer) error
	}{
		{"images", "<f4", []int{s.N, s.C, s.Size, s.Size}, func(w io.Writer) error {
			b := make([]byte, 4*len(s.Images))
			for i, v := range s.Images {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			_, err := w.Write(b)
			return err
		}},
		{"labels", "<i8", []int{s.N}, func(w io.Writer) error {
			b := make([]byte, 8*len(s.Labels))
			for i, v := range s.Labels {
				binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(v)))
			}
			_, err := w.Write(b)
			return err
		}},
		{"classes", unicodeDescr(s.ClassNames), []int{len(s.ClassNames)}, func(w io.Writer) error {
			return writeUnicode(w, s.ClassNames)
		}},
		{"name", unicodeDescr([]string{s.Name}), []int{}, func(w io.Writer) error {
			return writeUnicode(w, []string{s.Name})
		}},
	}
	for _, a := range arrays {
		f, err := z.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Store})
		if err != nil {
			return err
		}
		if _, err := f.Write(npyHeader(a.descr, a.shape)); err != nil {
			return err
		}
		if err := a.data(f); err != nil {
			return err
		}
	}
	return z.Close()
}

// npyHeader is the .npy (format 1.0) header of a C-order array: the magic,
// the version, the header's length and the dict, padded with spaces to a
// multiple of 64 bytes in all and ended by a newline.
func npyHeader(descr string, shape []int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	tuple += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	pad := 64 - (10+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	dict += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	return b.Bytes()
}

// unicodeDescr is the NumPy type of strings as long as the longest (in
// code points, at least 1).
func unicodeDescr(ss []string) string {
	n := 1
	for _, s := range ss {
		n = max(n, utf8.RuneCountInString(s))
	}
	return fmt.Sprintf("<U%d", n)
}

// writeUnicode writes ss as NumPy unicode: UTF-32LE, each padded with
// zeros to the longest.
func writeUnicode(w io.Writer, ss []string) error {
	var n int
	fmt.Sscanf(unicodeDescr(ss), "<U%d", &n)
	b := make([]byte, 4*n*len(ss))
	for i, s := range ss {
		k := 0
		for _, r := range s {
			binary.LittleEndian.PutUint32(b[4*(i*n+k):], uint32(r))
			k++
		}
	}
	_, err := w.Write(b)
	return err
}
