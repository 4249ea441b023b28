package diffusion

import (
	"fmt"
	"math"
)

// Image is one image's reverse chain in flight: its pixels, label,
// guidance, its sampler's Row and its own noise stream. Batch.Step advances
// any mix of images by one denoiser call, whatever their step, sampler,
// step count or guidance: sample and serve both step images this way.
type Image struct {
	// X is x_t before the image's next denoiser call, and the finished image
	// in [-1, 1] once Done.
	X        []float32
	Label    int
	Guidance Guidance
	chain    Chain
	pos      int
	row      Row
	noise    Noise
	err      error // set once: a step met NaN or Inf in this image's rows
}

// NewImage starts an image's chain: x_T drawn from its noise stream, then
// the sampler's row over the chain.
func NewImage(s Sampler, c Chain, label int, g Guidance, noise Noise) *Image {
	x := make([]float32, c.Values)
	for k := range x {
		x[k] = float32(noise.NormFloat64())
	}
	return &Image{X: x, Label: label, Guidance: g, chain: c, row: s.NewRow(c), noise: noise}
}

// Done reports whether the chain has finished.
func (im *Image) Done() bool { return im.pos >= len(im.chain.Timesteps) }

// Err is the *NonFiniteError that ended this image's chain (nil while it
// is well). A failed image is neither stepped nor Done: its caller drops it.
func (im *Image) Err() error { return im.err }

// Progress is the number of denoiser calls made and the chain's length.
func (im *Image) Progress() (done, steps int) { return im.pos, len(im.chain.Timesteps) }

// RowsPerImage is the most denoiser rows one image takes in a call: one,
// two when guided (its null row, or its guide row) at some step.
func RowsPerImage(g Guidance) int {
	if g.Weight != 0 {
		return 2
	}
	return 1
}

// Rows is the number of rows the image's next call takes: two at a step its
// guidance steers, else one.
func (im *Image) Rows() int {
	if im.guidedNow() {
		return 2
	}
	return 1
}

func (im *Image) guidedNow() bool {
	return !im.Done() && im.Guidance.guidedAt(im.chain.Schedule, im.chain.Timesteps[im.pos])
}

// Rows is the number of denoiser rows a call over images takes (the guide
// rows of autoguided images included: they run in the guide's own call).
func Rows(images []*Image) int {
	n := 0
	for _, im := range images {
		n += im.Rows()
	}
	return n
}

// Batch holds the buffers of denoiser calls over images of Values values
// each; they grow to the largest call, then nothing is allocated.
type Batch struct {
	Values int
	// Guide is the autoguidance guide: the denoiser that makes the second
	// row of images whose Guidance is Auto (nil: none may be).
	Guide Denoiser
	main  calls
	guide calls
	x0    []float32
	// second is each image's second row in this step: its index in the
	// main call, −1 − its index in the guide's, or unguided.
	second []int
}

// unguided marks an image that takes one row this step.
const unguided = math.MinInt

// calls holds the rows of one denoiser's call.
type calls struct {
	in, out []float32
	t, y    []int64
	owner   []int // the image of each row
}

// add appends a row (x, t, y) of image i.
func (c *calls) add(x []float32, t, y int64, i int) {
	c.in = append(c.in, x...)
	c.t, c.y, c.owner = append(c.t, t), append(c.y, y), append(c.owner, i)
}

func (c *calls) reset() {
	c.in, c.t, c.y, c.owner = c.in[:0], c.t[:0], c.y[:0], c.owner[:0]
}

// run makes the call and checks its output for NaN and Inf, failing the
// images it belongs to; first is the batch row of its first row.
func (c *calls) run(d Denoiser, D, first int, images []*Image) error {
	rows := len(c.t)
	if rows == 0 {
		return nil
	}
	if cap(c.out) < rows*D {
		c.out = make([]float32, rows*D, cap(c.in))
	}
	c.out = c.out[:rows*D]
	if err := d.Eps(c.in, c.t, c.y, c.out); err != nil {
		return err
	}
	for r := 0; r < rows; r++ {
		im := images[c.owner[r]]
		if im.err != nil {
			continue
		}
		if err := finite(c.out[r*D:(r+1)*D], D, im.pos, len(im.chain.Timesteps), int(c.t[r]), "the model output"); err != nil {
			err.Row = first + r
			im.err = err
		}
	}
	return nil
}

// Step makes one denoiser call over images (none of them Done or failed),
// and one call of the guide over the guide rows of autoguided images, and
// advances each image by one step of its own chain. The main call's rows
// are the images in order, then the null rows of those guided at this step
// with classifier-free guidance; each row carries its own timestep and
// label, so what an image gets does not depend on what shares the call. An
// image whose rows or next state hold NaN or Inf fails alone (Err says
// where) and is not advanced; the others step as if it had not been there.
// Step's own error is a call's: a denoiser failed, and the images of the
// call are left in an unspecified state (the caller fails them all).
func (b *Batch) Step(d Denoiser, images []*Image) error {
	D, n := b.Values, len(images)
	if len(b.x0) != D {
		b.x0 = make([]float32, D)
	}
	b.main.reset()
	b.guide.reset()
	if cap(b.second) < n {
		b.second = make([]int, n)
	}
	second := b.second[:n]
	for i, im := range images {
		if im.Done() || im.err != nil {
			panic("diffusion: Batch.Step on a finished or failed image")
		}
		if len(im.X) != D {
			return fmt.Errorf("diffusion: an image of %d values in a batch of %d", len(im.X), D)
		}
		b.main.add(im.X, int64(im.chain.Timesteps[im.pos]), int64(im.Label), i)
	}
	for i, im := range images {
		second[i] = unguided
		if !im.guidedNow() {
			continue
		}
		t := int64(im.chain.Timesteps[im.pos])
		if im.Guidance.Auto {
			if b.Guide == nil {
				return fmt.Errorf("diffusion: image %d is autoguided and the batch has no guide denoiser", i)
			}
			second[i] = -1 - len(b.guide.t)
			b.guide.add(im.X, t, int64(im.Label), i)
		} else {
			second[i] = len(b.main.t)
			b.main.add(im.X, t, int64(im.Guidance.Null), i)
		}
	}
	if err := b.main.run(d, D, 0, images); err != nil {
		return err
	}
	if err := b.guide.run(b.Guide, D, len(b.main.t), images); err != nil {
		return err
	}
	for i, im := range images {
		eps, x := b.main.out[i*D:(i+1)*D], im.X
		if im.err != nil {
			continue
		}
		switch o := second[i]; {
		case o == unguided:
		case o >= 0:
			Guide(im.Guidance.Weight, eps, b.main.out[o*D:(o+1)*D])
		default:
			o = -1 - o
			Guide(im.Guidance.Weight, eps, b.guide.out[o*D:(o+1)*D])
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
