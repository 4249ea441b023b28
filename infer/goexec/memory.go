package goexec

import "fmt"

// The memory plan. Each value's buffer is freed after the last node that
// reads it (computed at Load) into a pool that later values of this run
// and of later runs draw from, so a run holds its live values and little
// else, and a run at a batch size it has seen allocates nothing. Views
// (Reshape, Identity) keep the buffer they look at alive. Every buffer
// held, pooled or not, the im2col scratch and the initializers count
// against MaxMemory; past it the run fails naming the node and the figure,
// and a model whose initializers alone pass it is refused at Load.

// MaxMemory bounds what one model holds: initializers, values and scratch.
const MaxMemory = 2 << 30

// MaxNodes bounds a graph's node count (condiff's U-Nets have a few
// hundred).
const MaxNodes = 1 << 16

// memory is a model's account of its buffers.
type memory struct {
	held, limit int64 // bytes allocated (live, pooled and scratch), and the bound
	f32         [][]float32
	i64         [][]int64
	f64         [][]float64
}

// ErrMemory says a run needs more than the bound.
type ErrMemory struct {
	Need, Held, Limit int64
}

func (e *ErrMemory) Error() string {
	return fmt.Sprintf("needs %s more while holding %s: over the Go backend's bound of %s for a model (the run's batch may be too large for it)", mib(e.Need), mib(e.Held), mib(e.Limit))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// reserve accounts for bytes about to be allocated, dropping the pool
// first when they would pass the bound.
func (mm *memory) reserve(bytes int64) error {
	if mm.held+bytes <= mm.limit {
		mm.held += bytes
		return nil
	}
	for _, b := range mm.f32 {
		mm.held -= int64(cap(b)) * 4
	}
	for _, b := range mm.i64 {
		mm.held -= int64(cap(b)) * 8
	}
	for _, b := range mm.f64 {
		mm.held -= int64(cap(b)) * 8
	}
	mm.f32, mm.i64, mm.f64 = nil, nil, nil
	if mm.held+bytes > mm.limit {
		return &ErrMemory{Need: bytes, Held: mm.held, Limit: mm.limit}
	}
	mm.held += bytes
	return nil
}

// take returns a pooled buffer of at least n elements (the smallest that
// fits), or a new one accounted for.
func take[T any](mm *memory, pool *[][]T, n int, size int64) ([]T, error) {
	best := -1
	for k, b := range *pool {
		if cap(b) >= n && (best < 0 || cap(b) < cap((*pool)[best])) {
			best = k
		}
	}
	if best >= 0 {
		b := (*pool)[best][:n]
		(*pool)[best] = (*pool)[len(*pool)-1]
		*pool = (*pool)[:len(*pool)-1]
		return b, nil
	}
	if err := mm.reserve(int64(n) * size); err != nil {
		return nil, err
	}
	return make([]T, n), nil
}

// free returns a slot's buffer to the pool.
func (mm *memory) free(t *tensor) {
	if t.f != nil {
		mm.f32 = append(mm.f32, t.f[:0])
	}
	if t.i != nil {
		mm.i64 = append(mm.i64, t.i[:0])
	}
	if t.d != nil {
		mm.f64 = append(mm.f64, t.d[:0])
	}
	t.f, t.i, t.d = nil, nil, nil
}

// release ends a slot's value after its last reader: an owner's buffer
// goes to the pool once no view looks at it; a view lets go of its base.
func (m *Model) release(j int) {
	t := &m.slots[j]
	if t.keep {
		return
	}
	if t.view {
		if b := t.base; b != nil && !b.keep {
			b.refs--
			if b.refs == 0 && b.dead {
				m.mem.free(b)
			}
		}
		t.f, t.i, t.d, t.view, t.base = nil, nil, nil, false, nil
		return
	}
	t.dead = true
	if t.refs == 0 {
		m.mem.free(t)
	}
}

// plan computes each slot's last reader (outputs and initializers are
// kept) and the steps after which each slot is released.
func (m *Model) plan() {
	last := make([]int, len(m.slots))
	for j := range last {
		last[j] = -1
	}
	for si, s := range m.steps {
		for _, j := range s.in {
			if j >= 0 {
				last[j] = si
			}
		}
	}
	for _, j := range m.out {
		m.slots[j].keep = true
	}
	m.frees = make([][]int, len(m.steps))
	for si, s := range m.steps {
		if last[s.out] < si { // read by nobody: released at once
			last[s.out] = si
		}
	}
	m.values = append(m.values, m.in...)
	for _, s := range m.steps {
		m.values = append(m.values, s.out)
	}
	for j, si := range last {
		if si >= 0 && !m.slots[j].keep {
			m.frees[si] = append(m.frees[si], j)
		}
	}
}
