package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Interval is a figure measured several times: mean ± sd over N draws.
type Interval struct {
	Mean Num `json:"mean"`
	SD   Num `json:"sd"`
	N    int `json:"n"`
}

func interval(v []float64) Interval {
	if len(v) == 0 {
		return Interval{Mean: Num(math.NaN()), SD: Num(math.NaN())}
	}
	m := 0.0
	for _, x := range v {
		m += x / float64(len(v))
	}
	s := 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	sd := 0.0
	if len(v) > 1 {
		sd = math.Sqrt(s / float64(len(v)-1))
	}
	return Interval{Mean: Num(m), SD: Num(sd), N: len(v)}
}

// SE is the standard error of the interval's mean: sd/√N (sd itself for
// N ≤ 1).
func (v Interval) SE() float64 {
	return float64(v.SD) / math.Sqrt(float64(max(v.N, 1)))
}

// Ratio is a/b for two intervals' means, with the range the two give at
// ±1 standard error of each mean: [(a−ea)/(b+eb), (a+ea)/(b−eb)]
// (unbounded when b−eb ≤ 0). The interval is the uncertainty of the ratio
// of the means, which is the figure reported: how far another set of real
// draws would move it. (The sd of the draws is the spread of one draw's
// figure; each mean's is smaller by √N.)
type Ratio struct {
	Value Num `json:"value"`
	Lo    Num `json:"lo"`
	Hi    Num `json:"hi"` // +Inf (the divisor's interval reaches 0) is written as null
}

// RatioOf divides two intervals' means.
func RatioOf(a, b Interval) Ratio {
	am, as, bm, bs := float64(a.Mean), a.SE(), float64(b.Mean), b.SE()
	r := Ratio{Value: Num(am / bm), Lo: Num(math.Max(0, am-as) / (bm + bs)), Hi: Num(math.Inf(1))}
	if bm-bs > 0 {
		r.Hi = Num((am + as) / (bm - bs))
	}
	return r
}

// String is "2.00× [1.80, 2.30]" (∞ for an unbounded top).
func (r Ratio) String() string {
	hi := "∞"
	if h := float64(r.Hi); !math.IsInf(h, 0) && !math.IsNaN(h) {
		hi = fmt.Sprintf("%.2f", h)
	}
	return fmt.Sprintf("%.2f× [%.2f, %s]", float64(r.Value), float64(r.Lo), hi)
}

// Wide reports whether the interval is wider than the figure itself: such
// a ratio is noise more than measurement.
func (r Ratio) Wide() bool { return !(float64(r.Hi-r.Lo) <= float64(r.Value)) }

// KID is the Kernel Inception Distance of Bińkowski et al. (2018) on these
// features: the unbiased estimate of the squared MMD with the polynomial
// kernel k(a, b) = (a·b/d + 1)³, over `subsets` random subsets of m rows
// of each set (m at most the smaller set), mean ± sd over the subsets. It
// has no small-sample bias: two draws of one distribution give 0 on average.
func KID(x, y []float32, d, subsets, m int, seed uint64) Interval {
	nx, ny := len(x)/d, len(y)/d
	m = min(m, nx, ny)
	if m < 2 || subsets < 1 {
		return interval(nil)
	}
	k := func(a, b []float32) float64 {
		dot := 0.0
		for i := range a {
			dot += float64(a[i]) * float64(b[i])
		}
		v := dot/float64(d) + 1
		return v * v * v
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b6964))
	var out []float64
	for s := 0; s < subsets; s++ {
		ix, iy := rng.Perm(nx)[:m], rng.Perm(ny)[:m]
		row := func(v []float32, i int) []float32 { return v[i*d : (i+1)*d] }
		var kxx, kyy, kxy float64
		for a := 0; a < m; a++ {
			for b := 0; b < m; b++ {
				kxy += k(row(x, ix[a]), row(y, iy[b]))
				if a != b {
					kxx += k(row(x, ix[a]), row(x, ix[b]))
					kyy += k(row(y, iy[a]), row(y, iy[b]))
				}
			}
		}
		fm := float64(m)
		out = append(out, kxx/(fm*(fm-1))+kyy/(fm*(fm-1))-2*kxy/(fm*fm))
	}
	return interval(out)
}

// PrecisionRecall is the improved precision and recall of Kynkäänniemi et
// al. (2019): each set's manifold is the union of balls around its points
// with radius the distance to the point's k-th nearest neighbour in the
// set; precision is the share of generated points inside the real
// manifold (fidelity), recall the share of real points inside the
// generated one (diversity).
func PrecisionRecall(real, gen []float32, d, k int) (precision, recall float64) {
	rr, gr := knnRadii(real, d, k), knnRadii(gen, d, k)
	return coverage(gen, real, rr, d), coverage(real, gen, gr, d)
}

func sqDist(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		t := float64(a[i]) - float64(b[i])
		s += t * t
	}
	return s
}

// knnRadii is each point's squared distance to its k-th nearest neighbour
// in its own set.
func knnRadii(x []float32, d, k int) []float64 {
	n := len(x) / d
	r := make([]float64, n)
	ds := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		ds = ds[:0]
		for j := 0; j < n; j++ {
			if j != i {
				ds = append(ds, sqDist(x[i*d:(i+1)*d], x[j*d:(j+1)*d]))
			}
		}
		sort.Float64s(ds)
		if len(ds) > 0 {
			r[i] = ds[min(k, len(ds))-1]
		}
	}
	return r
}

// coverage is the share of points of q within radius of some point of m.
func coverage(q, m []float32, radii []float64, d int) float64 {
	nq, nm := len(q)/d, len(m)/d
	if nq == 0 {
		return math.NaN()
	}
	in := 0
	for i := 0; i < nq; i++ {
		for j := 0; j < nm; j++ {
			if sqDist(q[i*d:(i+1)*d], m[j*d:(j+1)*d]) <= radii[j] {
				in++
				break
			}
		}
	}
	return float64(in) / float64(nq)
}
