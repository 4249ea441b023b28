package goexec

import (
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

// fused is a rewritten SiLU or affine + SiLU (see fuse).
type fused struct {
	silu, affine bool
	in           []int  // slots: A; or X, G, B
	orig         []step // the nodes it replaces, in order
	tmp          [3]tensor
}

func (f *fused) run(m *Model, in []*tensor, out *tensor) error {
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
			dst = &f.tmp[i]
		}
		if err := s.run(m, args, dst); err != nil {
			return err
		}
		vals[s.out] = dst
	}
	return nil
}
