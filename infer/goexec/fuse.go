package goexec

import (
	"math"

	"github.com/condiff/condiff/internal/kernel"
)

// fuse rewrites two patterns every norm and SiLU of the exported networks
// makes, so that they run as one pass over the tensor instead of four:
//
//   - SiLU: S = Sigmoid(A); Y = Mul(A, S)
//   - affine + SiLU: P = Mul(X, G); A = Add(P, B); then SiLU of A, where G
//     and B hold one value per (image, channel) (the norm's affine,
//     class-conditional for M_CBN)
//
// A fused step computes y = SiLU(x·g + b) with train/kernel's
// ScaleShiftSiLU (AVX2 where the CPU has it). The intermediate values are
// not computed, so a pattern is fused only where nothing else reads them
// and none is a graph output. When the shapes at run time do not fit (G
// or B not per (image, channel)), the fused step runs the original nodes.
func (m *Model) fuse() {
	uses := make([]int, len(m.slots))
	for _, s := range m.steps {
		for _, j := range s.in {
			if j >= 0 {
				uses[j]++
			}
		}
	}
	for _, j := range m.out {
		uses[j] += 2 // never an intermediate
	}
	producer := make([]int, len(m.slots))
	for i := range producer {
		producer[i] = -1
	}
	for i, s := range m.steps {
		producer[s.out] = i
	}
	made := func(slot int, op string) int {
		if slot < 0 {
			return -1
		}
		if p := producer[slot]; p >= 0 && m.steps[p].op == op && m.steps[p].run != nil {
			return p
		}
		return -1
	}
	drop := map[int]bool{}
	for yi := range m.steps {
		y := &m.steps[yi]
		if y.op != "Mul" || len(y.in) != 2 {
			continue
		}
		// Y = Mul(A, Sigmoid(A)) in either order.
		si, a := -1, -1
		for k := 0; k < 2; k++ {
			if p := made(y.in[k], "Sigmoid"); p >= 0 && m.steps[p].in[0] == y.in[1-k] {
				si, a = p, y.in[1-k]
			}
		}
		if si < 0 || uses[m.steps[si].out] != 1 {
			continue
		}
		orig := []step{m.steps[si], *y}
		fs := &fused{silu: true, orig: orig}
		drop[si] = true
		// A = Add(Mul(X, G), B), each used only here.
		if ai := made(a, "Add"); ai >= 0 && uses[a] == 2 {
			add := m.steps[ai]
			for k := 0; k < 2; k++ {
				if mi := made(add.in[k], "Mul"); mi >= 0 && uses[add.in[k]] == 1 && len(m.steps[mi].in) == 2 {
					fs.orig = append([]step{m.steps[mi], add}, fs.orig...)
					fs.affine = true
					fs.in = []int{m.steps[mi].in[0], m.steps[mi].in[1], add.in[1-k]}
					drop[ai], drop[mi] = true, true
					break
				}
			}
		}
		if !fs.affine {
			fs.in = []int{a}
		} else {
			fuseGroupNorm(m, fs, made, uses, drop)
		}
		y.op = "SiLU"
		if fs.affine {
			y.op = "ScaleShiftSiLU"
		}
		y.in = fs.in
		y.args = make([]*tensor, len(y.in))
		y.run = fs.run
	}
	var steps []step
	for i, s := range m.steps {
		if !drop[i] {
			steps = append(steps, s)
		}
	}
	m.steps = steps
}

// fuseGroupNorm extends an affine + SiLU whose X is a group norm, as the
// exported networks write one:
//
//	R = Reshape(X0, [N, G, −1]); I = InstanceNormalization(R, s, b);
//	X = Reshape(I, Shape(X0))
//
// (each intermediate used only there), into one step: per (image, group)
// the statistics of X0, then y = SiLU(x·scale + shift) per channel with the
// norm's and the affine's scales and shifts folded together. It reads X0
// twice and writes y once, where the three steps read and wrote the tensor
// five times.
func fuseGroupNorm(m *Model, fs *fused, made func(slot int, op string) int, uses []int, drop map[int]bool) {
	xi := 0
	r2 := made(fs.in[0], "Reshape")
	if r2 < 0 {
		xi, r2 = 1, made(fs.in[1], "Reshape") // Mul(G, X)
	}
	if r2 < 0 || uses[fs.in[xi]] != 1 || len(m.steps[r2].in) != 2 {
		return
	}
	ins := made(m.steps[r2].in[0], "InstanceNormalization")
	if ins < 0 || uses[m.steps[r2].in[0]] != 1 || len(m.steps[ins].in) != 3 {
		return
	}
	r1 := made(m.steps[ins].in[0], "Reshape")
	if r1 < 0 || uses[m.steps[ins].in[0]] != 1 || len(m.steps[r1].in) != 2 {
		return
	}
	x0 := m.steps[r1].in[0]
	// The second Reshape gives I back X0's shape.
	if sh := made(m.steps[r2].in[1], "Shape"); sh < 0 || m.steps[sh].in[0] != x0 {
		return
	}
	eps, err := m.steps[ins].attrs.float("epsilon", 1e-5)
	if err != nil {
		return
	}
	g, b := fs.in[1-xi], fs.in[2]
	is := m.steps[ins]
	fs.norm, fs.eps = true, eps
	// Every slot the original nodes read from outside is an input (the
	// memory plan keeps them for the fallback): the last is Shape(X0).
	fs.in = []int{x0, g, b, is.in[1], is.in[2], m.steps[r1].in[1], m.steps[r2].in[1]}
	fs.orig = append([]step{m.steps[r1], is, m.steps[r2]}, fs.orig...)
	drop[r1], drop[ins], drop[r2] = true, true, true
}

// fused is a rewritten SiLU, affine + SiLU, or group norm + affine + SiLU
// (see fuse and fuseGroupNorm).
type fused struct {
	silu, affine bool
	norm         bool    // the affine's X is a group norm of in[0]
	eps          float32 // the norm's epsilon
	in           []int   // slots: A; or X, G, B; or X0, G, B, the norm's scale and bias, the Reshapes' shapes
	orig         []step  // the nodes it replaces, in order
	tmp          []tensor
}

// runGroupNorm is the fused group norm + affine + SiLU, or the original
// nodes when the tensors at run time do not have the shapes it assumes.
func (f *fused) runGroupNorm(m *Model, in []*tensor, out *tensor) error {
	x, g, b, ns, nb, shape := in[0], in[1], in[2], in[3], in[4], in[5]
	if x.dt != f32 || len(x.shape) != 4 || !planeParam(g, x) || !planeParam(b, x) || ns.dt != f32 || nb.dt != f32 {
		return f.unfused(m, in, out)
	}
	n, c := x.shape[0], x.shape[1]
	groups := len(ns.f)
	if groups == 0 || c%groups != 0 || len(nb.f) != groups || shape.dt != i64 || len(shape.i) != 3 ||
		(shape.i[0] != 0 && shape.i[0] != int64(n)) || shape.i[1] != int64(groups) || (shape.i[2] != -1 && shape.i[2] != int64(c/groups*x.shape[2]*x.shape[3])) {
		return f.unfused(m, in, out)
	}
	if err := out.resize(f32, x.shape...); err != nil {
		return err
	}
	hw, per := x.shape[2]*x.shape[3], c/groups
	gs, bs := planeStrides(g, x), planeStrides(b, x)
	m.parallel(n*groups, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i, gr := k/groups, k%groups
			src := x.f[k*per*hw : (k+1)*per*hw]
			mean, vr := meanVar(src)
			r := 1 / math.Sqrt(vr+float64(f.eps))
			s, sb := float64(ns.f[gr])*r, float64(nb.f[gr])-float64(ns.f[gr])*mean*r // the norm: x·s + sb
			for j := 0; j < per; j++ {
				ch := gr*per + j
				gv, bv := float64(g.f[i*gs[0]+ch*gs[1]]), float64(b.f[i*bs[0]+ch*bs[1]])
				p := (i*c + ch) * hw
				kernel.ScaleShiftSiLU(x.f[p:p+hw], out.f[p:p+hw], nil, float32(gv*s), float32(gv*sb+bv))
			}
		}
	})
	return nil
}

func (f *fused) run(m *Model, in []*tensor, out *tensor) error {
	if f.norm {
		return f.runGroupNorm(m, in, out)
	}
	if !f.affine {
		x := in[0]
		if x.dt != f32 {
			return f.unfused(m, in, out)
		}
		if err := out.resize(f32, x.shape...); err != nil {
			return err
		}
		xs, ys := x.f, out.f
		m.parallel(len(xs), 8192, func(lo, hi int) { kernel.ScaleShiftSiLU(xs[lo:hi], ys[lo:hi], nil, 1, 0) })
		return nil
	}
	x, g, b := in[0], in[1], in[2]
	if !planeParam(g, x) {
		x, g = g, x // Mul(G, X)
	}
	if x.dt != f32 || len(x.shape) != 4 || !planeParam(g, x) || !planeParam(b, x) {
		return f.unfused(m, in, out)
	}
	if err := out.resize(f32, x.shape...); err != nil {
		return err
	}
	n, c := x.shape[0], x.shape[1]
	hw := x.shape[2] * x.shape[3]
	gs, bs := planeStrides(g, x), planeStrides(b, x)
	m.parallel(n*c, max(1, 4096/max(hw, 1)), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			i, ch := p/c, p%c
			kernel.ScaleShiftSiLU(x.f[p*hw:(p+1)*hw], out.f[p*hw:(p+1)*hw], nil,
				g.f[i*gs[0]+ch*gs[1]], b.f[i*bs[0]+ch*bs[1]])
		}
	})
	return nil
}

// planeParam: p holds one float32 per (image, channel) of x [N C H W], or
// per channel, or one value: its shape, padded to rank 4, is [1|N 1|C 1 1].
func planeParam(p, x *tensor) bool {
	if p.dt != f32 || len(x.shape) != 4 || len(p.shape) > 4 {
		return false
	}
	pad := 4 - len(p.shape)
	for d := 0; d < 4; d++ {
		v := 1
		if d >= pad {
			v = p.shape[d-pad]
		}
		if v != 1 && (d >= 2 || v != x.shape[d]) {
			return false
		}
	}
	return true
}

// planeStrides are p's strides along x's N and C (0 where broadcast).
func planeStrides(p, x *tensor) [2]int {
	s := bstrides(p.shape, 4, nil)
	return [2]int{s[0], s[1]}
}

// unfused runs the original nodes through temporaries.
func (f *fused) unfused(m *Model, in []*tensor, out *tensor) error {
	vals := map[int]*tensor{}
	for k, j := range f.in {
		vals[j] = in[k]
	}
	for i, s := range f.orig {
		args := make([]*tensor, len(s.in))
		for k, j := range s.in {
			if t, ok := vals[j]; ok {
				args[k] = t
			} else {
				args[k] = &m.slots[j]
			}
		}
		dst := out
		if i < len(f.orig)-1 {
			if len(f.tmp) < len(f.orig)-1 {
				f.tmp = make([]tensor, len(f.orig)-1)
			}
			dst = &f.tmp[i]
		}
		if err := s.run(m, args, dst); err != nil {
			return err
		}
		vals[s.out] = dst
	}
	return nil
}
