package goexec

// The normalisations: InstanceNormalization (group norm is exported as
// one), BatchNormalization (inference form) and Softmax.

import (
	"fmt"
	"math"

	"github.com/condiff/condiff/internal/kernel"
)

// compileSoftmax is softmax over the last axis (opset 13's default; the
// only axis the Go backend supports).
func compileSoftmax(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	axis, err := a.int("axis", -1)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "input"); err != nil {
			return err
		}
		x := in[0]
		r := len(x.shape)
		if r == 0 || (axis != -1 && axis != r-1) {
			return fmt.Errorf("axis %d of a rank-%d input: the Go backend takes softmax over the last axis", axis, r)
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		n := x.shape[r-1]
		if n == 0 {
			return nil
		}
		copy(out.f, x.f)
		for o := 0; o < len(out.f); o += n {
			kernel.SoftmaxRow(out.f[o:o+n], 1)
		}
		return nil
	}, a.check()
}

// compileInstanceNorm is ONNX InstanceNormalization: float32 X [N C …],
// per-channel scale and B, epsilon; each plane normalised by its own mean
// and biased variance (meanVar, in float64). Group norm is exported as
// one over the reshaped groups.
func compileInstanceNorm(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 3, 3); err != nil {
		return nil, err
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "input", "scale", "B"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 3 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		n, ch := x.shape[0], x.shape[1]
		if len(in[1].f) != ch || len(in[2].f) != ch {
			return fmt.Errorf("scale %v and B %v for %d channels", in[1].shape, in[2].shape, ch)
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		planes(m, x, out, n*ch, func(k int, src []float32) (float32, float32) {
			c := k % ch
			mean, vr := meanVar(src)
			r := 1 / math.Sqrt(vr+float64(eps))
			g, b := float64(in[1].f[c])*r, float64(in[2].f[c])
			return float32(g), float32(b - mean*g)
		})
		return nil
	}, a.check()
}

// compileBatchNorm is ONNX BatchNormalization in inference form (running
// mean and variance inputs, epsilon; momentum taken and unused);
// training_mode = 1 is refused.
func compileBatchNorm(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 5, 5); err != nil {
		return nil, err
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	if _, err := a.float("momentum", 0.9); err != nil {
		return nil, err
	}
	if tm, err := a.int("training_mode", 0); err != nil || tm != 0 {
		return nil, fmt.Errorf("training_mode %d: the Go backend runs inference (%v)", tm, err)
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := needs(in, f32, "X", "scale", "B", "mean", "var"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 2 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		n, ch := x.shape[0], x.shape[1]
		for k := 1; k < 5; k++ {
			if len(in[k].f) != ch {
				return fmt.Errorf("input %d has %d values for %d channels", k, len(in[k].f), ch)
			}
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		planes(m, x, out, n*ch, func(k int, _ []float32) (float32, float32) {
			c := k % ch
			r := float64(in[1].f[c]) / math.Sqrt(float64(in[4].f[c])+float64(eps))
			return float32(r), float32(float64(in[2].f[c]) - float64(in[3].f[c])*r)
		})
		return nil
	}, a.check()
}

// meanVar is the mean and the (biased) variance of x, in one pass
// (kernel.SumSquares: float64 sums, far from cancelling for float32 x).
func meanVar(x []float32) (mean, variance float64) {
	s, q := kernel.SumSquares(x)
	n := float64(len(x))
	mean = s / n
	return mean, max(0, q/n-mean*mean)
}

// planes sets each of the p planes of x (the values of one image and
// channel) to x·scale + shift with the plane's affine, in parallel.
func planes(m *Model, x, out *tensor, p int, affine func(k int, plane []float32) (scale, shift float32)) {
	l := x.size() / max(p, 1)
	m.parallel(p, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			src, dst := x.f[k*l:(k+1)*l], out.f[k*l:(k+1)*l]
			sc, sh := affine(k, src)
			kernel.ScaleShift(src, dst, sc, sh)
		}
	})
}
