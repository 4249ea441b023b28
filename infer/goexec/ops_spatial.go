package goexec

// The spatial operators: Resize (nearest) and GlobalAveragePool.

import (
	"fmt"
	"math"
)

// compileGlobalAveragePool is ONNX GlobalAveragePool: the mean of each
// float32 plane of [N C …] (the classifier's head).
func compileGlobalAveragePool(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 1); err != nil {
		return nil, err
	}
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, f32, "X"); err != nil {
			return err
		}
		x := in[0]
		if len(x.shape) < 3 {
			return fmt.Errorf("input of rank %d, want [N C ...]", len(x.shape))
		}
		shape := []int{x.shape[0], x.shape[1]}
		for range x.shape[2:] {
			shape = append(shape, 1)
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		nc := x.shape[0] * x.shape[1]
		hw := x.size() / max(nc, 1)
		for k := 0; k < nc; k++ {
			var s float64
			for _, v := range x.f[k*hw : (k+1)*hw] {
				s += float64(v)
			}
			out.f[k] = float32(s / float64(hw))
		}
		return nil
	}, a.check()
}

// compileResize is ONNX Resize in mode nearest by scales or sizes, with the
// coordinate transformations asymmetric, half_pixel, pytorch_half_pixel
// and align_corners and every nearest_mode; the linear and cubic modes,
// antialias, exclude_outside, axes and the aspect-ratio policies other than
// stretch are refused (the U-Net's upsampling is nearest ×2).
func compileResize(a attrs, nin int) (opFunc, error) {
	if err := inputs(nin, 1, 4); err != nil {
		return nil, err
	}
	if _, err := a.oneOf("mode", "nearest", "nearest"); err != nil {
		return nil, err
	}
	ctm, err := a.oneOf("coordinate_transformation_mode", "half_pixel", "asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners")
	if err != nil {
		return nil, err
	}
	nm, err := a.oneOf("nearest_mode", "round_prefer_floor", "floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
	if err != nil {
		return nil, err
	}
	if v, err := a.float("cubic_coeff_a", -0.75); err != nil || v != -0.75 {
		return nil, fmt.Errorf("cubic_coeff_a %g (%v)", v, err)
	}
	if v, err := a.int("exclude_outside", 0); err != nil || v != 0 {
		return nil, fmt.Errorf("exclude_outside %d (%v)", v, err)
	}
	if v, err := a.int("antialias", 0); err != nil || v != 0 {
		return nil, fmt.Errorf("antialias %d (%v)", v, err)
	}
	if _, err := a.float("extrapolation_value", 0); err != nil {
		return nil, err
	}
	if _, ok, _ := a.ints("axes"); ok {
		return nil, fmt.Errorf("attribute axes is not supported by the Go backend")
	}
	if v, err := a.oneOf("keep_aspect_ratio_policy", "stretch", "stretch"); err != nil {
		return nil, fmt.Errorf("keep_aspect_ratio_policy %q: %v", v, err)
	}
	var maps [][]int
	return func(m *Model, in []*tensor, out *tensor) error {
		if err := need(in, 0, f32, "X"); err != nil {
			return err
		}
		x := in[0]
		r := len(x.shape)
		shape := make([]int, r)
		scales := make([]float64, r)
		switch {
		case len(in) > 3 && in[3] != nil && len(in[3].i) > 0:
			if in[3].dt != i64 || len(in[3].i) != r {
				return fmt.Errorf("sizes %v for rank %d", in[3].shape, r)
			}
			for d := range shape {
				shape[d] = int(in[3].i[d])
				if shape[d] < 1 || shape[d] > MaxElements {
					return fmt.Errorf("sizes %v", in[3].i)
				}
				scales[d] = float64(shape[d]) / float64(x.shape[d])
			}
		case len(in) > 2 && in[2] != nil && len(in[2].f) > 0:
			if in[2].dt != f32 || len(in[2].f) != r {
				return fmt.Errorf("scales %v for rank %d", in[2].shape, r)
			}
			for d := range shape {
				scales[d] = float64(in[2].f[d])
				if !(scales[d] > 0) || scales[d]*float64(x.shape[d]) > MaxElements {
					return fmt.Errorf("scales %v", in[2].f)
				}
				shape[d] = int(math.Floor(float64(x.shape[d]) * scales[d]))
			}
		default:
			return fmt.Errorf("neither scales nor sizes given")
		}
		if err := out.resize(f32, shape...); err != nil {
			return err
		}
		if out.size() == 0 {
			return nil // nothing to read: no index maps either
		}
		if x.size() == 0 {
			return fmt.Errorf("X %v is empty and the output %v is not: nothing to take its values from", x.shape, shape)
		}
		// Per axis, the source index of each output index.
		for len(maps) < r {
			maps = append(maps, nil)
		}
		for d := 0; d < r; d++ {
			mp := grow(maps[d], shape[d])
			for i := range mp {
				mp[i] = nearest(i, x.shape[d], shape[d], scales[d], ctm, nm)
			}
			maps[d] = mp
		}
		if r == 4 { // [N C H W]: whole output rows from one input row
			xs := x.shape
			for n := 0; n < shape[0]; n++ {
				for ch := 0; ch < shape[1]; ch++ {
					plane := x.f[((maps[0][n]*xs[1])+maps[1][ch])*xs[2]*xs[3]:]
					for y := 0; y < shape[2]; y++ {
						line := plane[maps[2][y]*xs[3]:]
						o := out.f[((n*shape[1]+ch)*shape[2]+y)*shape[3]:][:shape[3]]
						for xx, sx := range maps[3] {
							o[xx] = line[sx]
						}
					}
				}
			}
			return nil
		}
		idx := make([]int, r)
		src := make([]int, r)
		stride := make([]int, r)
		s := 1
		for d := r - 1; d >= 0; d-- {
			stride[d] = s
			s *= x.shape[d]
		}
		for o := range out.f {
			rem := o
			for d := r - 1; d >= 0; d-- {
				idx[d] = rem % shape[d]
				rem /= shape[d]
				src[d] = maps[d][idx[d]]
			}
			off := 0
			for d := range src {
				off += src[d] * stride[d]
			}
			out.f[o] = x.f[off]
		}
		return nil
	}, a.check()
}

// nearest is the input index Resize (mode nearest) reads for output index
// i along an axis of in → out elements at this scale.
func nearest(i, in, out int, scale float64, ctm, nm string) int {
	var x float64
	switch ctm {
	case "asymmetric":
		x = float64(i) / scale
	case "half_pixel":
		x = (float64(i)+0.5)/scale - 0.5
	case "pytorch_half_pixel":
		if out > 1 {
			x = (float64(i)+0.5)/scale - 0.5
		}
	case "align_corners":
		if out > 1 {
			x = float64(i) * float64(in-1) / float64(out-1)
		}
	}
	var k float64
	switch nm {
	case "floor":
		k = math.Floor(x)
	case "ceil":
		k = math.Ceil(x)
	case "round_prefer_floor":
		k = math.Ceil(x - 0.5)
	case "round_prefer_ceil":
		k = math.Floor(x + 0.5)
	}
	return min(max(int(k), 0), in-1)
}
