package infer

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/internal/fsutil"
)

// SanitizeName makes a class name safe as part of a file name: letters,
// digits, '-', '_' and '.' only, no leading dot, at most 64 bytes.
func SanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 64 {
		out = out[:64]
	}
	if out == "" {
		out = "_"
	}
	return out
}

// ToImage converts [C H W] pixels in [-1, 1] to an 8-bit image.
func ToImage(px []float32, c, size int) image.Image {
	q := func(v float32) uint8 {
		return uint8(math.Round(math.Max(0, math.Min(255, (float64(v)+1)*127.5))))
	}
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, size, size))
		for i := 0; i < size*size; i++ {
			g.Pix[i] = q(px[i])
		}
		return g
	}
	m := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := 0; i < size*size; i++ {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = q(px[i]), q(px[size*size+i]), q(px[2*size*size+i]), 255
	}
	return m
}

// WritePNG encodes an image to path atomically.
func WritePNG(path string, img image.Image) error {
	return fsutil.WriteAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// Grid tiles images in rows (each row a slice of images) with a 2-pixel
// gap, enlarging small images (nearest neighbour) to tiles of at least 64 px.
func Grid(rows [][]image.Image, size int) image.Image {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	scale := max(1, 64/size)
	tile, gap := size*scale, 2
	g := image.NewRGBA(image.Rect(0, 0, cols*(tile+gap)+gap, len(rows)*(tile+gap)+gap))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	for ri, r := range rows {
		for ci, img := range r {
			x0, y0 := gap+ci*(tile+gap), gap+ri*(tile+gap)
			for y := 0; y < tile; y++ {
				for x := 0; x < tile; x++ {
					g.Set(x0+x, y0+y, color.RGBAModel.Convert(img.At(x/scale, y/scale)))
				}
			}
		}
	}
	return g
}

// fileClass is the class part of an image or grid file name.
// FileName is the name sample gives image index of class c:
// 000042_name.png.
func FileName(info contract.Info, index, c int) string {
	return fmt.Sprintf("%06d_%s.png", index, fileClass(info, c))
}

func fileClass(info contract.Info, c int) string {
	if !info.Conditional() {
		return string(contract.Uncond)
	}
	return SanitizeName(info.ClassName(c))
}

// readSample reads and decodes a sample PNG a manifest lists (a regular
// file of at most MaxSampleBytes).
func readSample(dir, file string) (image.Image, error) {
	f, err := fsutil.ReadSmallFile(filepath.Join(dir, file), MaxSampleBytes)
	if err != nil {
		return nil, err
	}
	img, err := png.Decode(bytes.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return img, nil
}

// WriteGrids writes grid_CLASS.png per class (at most 64 images, 8 a row)
// and grid.png with a row per class (at most 16 images a row) from the
// images a manifest lists, suffix inserted before ".png". Only those images
// are read, so memory does not grow with the number of samples. Classes
// whose names sanitise alike get their index in the name.
func WriteGrids(dir, suffix string, m *Manifest, info contract.Info, c, size int) error {
	byClass := map[int][]image.Image{}
	var classes []int
	for _, e := range m.Images {
		if len(byClass[e.Class]) >= 64 {
			continue
		}
		img, err := readSample(dir, e.File)
		if err != nil {
			return fmt.Errorf("infer: grid: %w", err)
		}
		if _, ok := byClass[e.Class]; !ok {
			classes = append(classes, e.Class)
		}
		byClass[e.Class] = append(byClass[e.Class], img)
	}
	sort.Ints(classes)
	uses := map[string]int{}
	for _, cl := range classes {
		uses[fileClass(info, cl)]++
	}
	var rows [][]image.Image
	for _, cl := range classes {
		imgs := byClass[cl]
		row := imgs[:min(16, len(imgs))]
		rows = append(rows, row)
		name := fileClass(info, cl)
		if uses[name] > 1 {
			name = fmt.Sprintf("%d_%s", cl, name)
		}
		var crow [][]image.Image
		for i := 0; i < len(imgs); i += 8 {
			crow = append(crow, imgs[i:min(i+8, len(imgs))])
		}
		if err := WritePNG(filepath.Join(dir, "grid_"+name+suffix+".png"), Grid(crow, size)); err != nil {
			return err
		}
	}
	return WritePNG(filepath.Join(dir, "grid"+suffix+".png"), Grid(rows, size))
}
