package diffusion

import "fmt"

// Image is one image's reverse chain in flight: its pixels, label,
// guidance, its sampler's Row and its own noise stream. Batch.Step advances
// any mix of images by one denoiser call, whatever their step, sampler,
// step count or guidance: sample and serve both step images this way.
type Image struct {
	// X is x_t before the image's next denoiser call, and the finished image
	// in [-1, 1] once Done.
	X        []float32
	Label    int
	Guidance float64 // classifier-free guidance weight W (0: unguided)
	Null     int     // the null label, for guidance
	chain    Chain
	pos      int
	row      Row
	noise    Noise
	err      error // set once: a step met NaN or Inf in this image's rows
}

// NewImage starts an image's chain: x_T drawn from its noise stream, then
// the sampler's row over the chain.
func NewImage(s Sampler, c Chain, label int, guidance float64, null int, noise Noise) *Image {
	x := make([]float32, c.Values)
	for k := range x {
		x[k] = float32(noise.NormFloat64())
	}
	return &Image{X: x, Label: label, Guidance: guidance, Null: null, chain: c, row: s.NewRow(c), noise: noise}
}

// Done reports whether the chain has finished.
func (im *Image) Done() bool { return im.pos >= len(im.chain.Timesteps) }

// Err is the *NonFiniteError that ended this image's chain (nil while it
// is well). A failed image is neither stepped nor Done: its caller drops it.
func (im *Image) Err() error { return im.err }

// Progress is the number of denoiser calls made and the chain's length.
func (im *Image) Progress() (done, steps int) { return im.pos, len(im.chain.Timesteps) }

// RowsPerImage is the denoiser rows one image takes in a call: one, two
// when guided (its null row).
func RowsPerImage(guidance float64) int {
	if guidance != 0 {
		return 2
	}
	return 1
}

// Rows is the number of denoiser rows a call over images takes.
func Rows(images []*Image) int {
	n := 0
	for _, im := range images {
		n += RowsPerImage(im.Guidance)
	}
	return n
}

// Batch holds the buffers of denoiser calls over images of Values values
// each; they grow to the largest call, then nothing is allocated.
type Batch struct {
	Values int
	in     []float32
	out    []float32
	x0     []float32
	t, y   []int64
	owner  []int // the image of each row
}

// Step makes one denoiser call over images (none of them Done or failed)
// and advances each by one step of its own chain. The rows are the images
// in order, then the null rows of the guided ones; each row carries its own
// timestep and label, so what an image gets does not depend on what shares
// the call. An image whose rows or next state hold NaN or Inf fails alone
// (Err says where) and is not advanced; the others step as if it had not
// been there. Step's own error is the call's: the denoiser failed, and the
// images of the call are left in an unspecified state (the caller fails
// them all).
func (b *Batch) Step(d Denoiser, images []*Image) error {
	D, n, rows := b.Values, len(images), Rows(images)
	if cap(b.t) < rows {
		b.in, b.out = make([]float32, rows*D), make([]float32, rows*D)
		b.t, b.y, b.owner = make([]int64, rows), make([]int64, rows), make([]int, rows)
	}
	if len(b.x0) != D {
		b.x0 = make([]float32, D)
	}
	in, out, t, y := b.in[:rows*D], b.out[:rows*D], b.t[:rows], b.y[:rows]
	g := n // the next null row
	for i, im := range images {
		if im.Done() || im.err != nil {
			panic("diffusion: Batch.Step on a finished or failed image")
		}
		if len(im.X) != D {
			return fmt.Errorf("diffusion: an image of %d values in a batch of %d", len(im.X), D)
		}
		copy(in[i*D:], im.X)
		t[i], y[i], b.owner[i] = int64(im.chain.Timesteps[im.pos]), int64(im.Label), i
		if im.Guidance != 0 {
			copy(in[g*D:], im.X)
			t[g], y[g], b.owner[g] = t[i], int64(im.Null), i
			g++
		}
	}
	if err := d.Eps(in, t, y, out); err != nil {
		return err
	}
	for r := 0; r < rows; r++ {
		im := images[b.owner[r]]
		if im.err != nil {
			continue
		}
		if err := finite(out[r*D:(r+1)*D], D, im.pos, len(im.chain.Timesteps), int(t[r]), "the model output"); err != nil {
			err.Row = r
			im.err = err
		}
	}
	g = n
	for i, im := range images {
		eps, x := out[i*D:(i+1)*D], im.X
		if im.Guidance != 0 {
			if im.err == nil {
				Guide(im.Guidance, eps, out[g*D:(g+1)*D])
			}
			g++
		}
		if im.err != nil {
			continue
		}
		ts := im.chain.Timesteps[im.pos]
		im.chain.Schedule.PredictX0(ts, x, eps, b.x0)
		im.row.Step(im.pos, x, eps, b.x0, im.noise)
		if err := finite(x, D, im.pos, len(im.chain.Timesteps), ts, "the sampler state"); err != nil {
			err.Row = i
			im.err = err
			continue
		}
		im.pos++
	}
	return nil
}
