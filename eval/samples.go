package eval

import (
	"bytes"
	"fmt"
	"image/png"
	"path/filepath"

	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/fsutil"
)

// SampleSet is images [N C S S] in [-1, 1] with their class labels, read
// from a sample directory.
type SampleSet struct {
	X      []float32
	Labels []int
}

// ReadSamples reads the images a sample directory's manifests list (every
// shard), which must be c-channel size×size PNGs of classes 0..k-1.
func ReadSamples(dir string, c, size, k int) (*SampleSet, *infer.Manifest, error) {
	mp, err := infer.ReadSampleDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: samples: %w", err)
	}
	m := *mp
	s := &SampleSet{}
	for _, e := range m.Images {
		if e.Class < 0 || e.Class >= k {
			return nil, nil, fmt.Errorf("eval: %s has class %d; the classifier knows %d classes", e.File, e.Class, k)
		}
		f, err := fsutil.ReadSmallFile(filepath.Join(dir, e.File), infer.MaxSampleBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("eval: %w", err)
		}
		// The header first: a PNG of another size is refused undecoded.
		if cfg, err := png.DecodeConfig(bytes.NewReader(f)); err != nil || cfg.Width != size || cfg.Height != size {
			return nil, nil, fmt.Errorf("eval: %s: not a %d×%d PNG (%dx%d, %v)", e.File, size, size, cfg.Width, cfg.Height, err)
		}
		img, err := png.Decode(bytes.NewReader(f))
		if err != nil {
			return nil, nil, fmt.Errorf("eval: %s: %w", e.File, err)
		}
		bd := img.Bounds()
		if bd.Dx() != size || bd.Dy() != size {
			return nil, nil, fmt.Errorf("eval: %s is %d×%d, the classifier takes %d×%d", e.File, bd.Dx(), bd.Dy(), size, size)
		}
		for ch := 0; ch < c; ch++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					r, g, bl, _ := img.At(bd.Min.X+x, bd.Min.Y+y).RGBA()
					v := []uint32{r, g, bl}[ch]
					if c == 1 {
						v = r
					}
					s.X = append(s.X, float32(v>>8)/127.5-1)
				}
			}
		}
		s.Labels = append(s.Labels, e.Class)
	}
	return s, &m, nil
}
