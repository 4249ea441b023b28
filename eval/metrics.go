// Package eval measures how well samples follow their labels: accuracy of
// an independent classifier, classifier-based Inception Score, Fréchet
// distance in the classifier's feature space, a t-SNE embedding with a k-NN
// separability score, and a report that puts it all together.
package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// Softmax turns logits [n K] into probabilities.
func Softmax(logits []float32, k int) []float64 {
	p := make([]float64, len(logits))
	for i := 0; i < len(logits)/k; i++ {
		row := logits[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		s := 0.0
		for j, v := range row {
			p[i*k+j] = math.Exp(float64(v) - m)
			s += p[i*k+j]
		}
		for j := range row {
			p[i*k+j] /= s
		}
	}
	return p
}

// Argmax returns the index of the largest probability of each row.
func Argmax(p []float64, k int) []int {
	out := make([]int, len(p)/k)
	for i := range out {
		best := 0
		for j := 1; j < k; j++ {
			if p[i*k+j] > p[i*k+best] {
				best = j
			}
		}
		out[i] = best
	}
	return out
}

// Accuracy is the share of predictions equal to their labels, overall and
// per class (NaN for a class with no samples).
func Accuracy(pred, labels []int, k int) (overall float64, perClass []float64) {
	hit, n := make([]int, k), make([]int, k)
	total := 0
	for i, l := range labels {
		n[l]++
		if pred[i] == l {
			hit[l]++
			total++
		}
	}
	perClass = make([]float64, k)
	for c := range perClass {
		perClass[c] = math.NaN()
		if n[c] > 0 {
			perClass[c] = float64(hit[c]) / float64(n[c])
		}
	}
	if len(labels) == 0 {
		return math.NaN(), perClass
	}
	return float64(total) / float64(len(labels)), perClass
}

// InceptionScore is exp(E_x[KL(p(y|x) || p(y))]) for probabilities p [n K].
// It lies in [1, K]: K when every sample is confidently one class and the
// classes are used equally.
func InceptionScore(p []float64, k int) float64 {
	n := len(p) / k
	if n == 0 {
		return math.NaN()
	}
	marg := make([]float64, k)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			marg[j] += p[i*k+j] / float64(n)
		}
	}
	kl := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			if v := p[i*k+j]; v > 0 {
				kl += v * (math.Log(v) - math.Log(marg[j]))
			}
		}
	}
	return math.Exp(kl / float64(n))
}

// Gaussian is the mean and covariance of a set of feature vectors.
type Gaussian struct {
	Mu  []float64
	Cov *mat.SymDense
}

// Fit computes the mean and the (n−1)-normalised covariance of x [n d].
func Fit(x []float32, d int) Gaussian {
	n := len(x) / d
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			mu[j] += float64(x[i*d+j]) / float64(n)
		}
	}
	cov := mat.NewSymDense(d, nil)
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			s := 0.0
			for i := 0; i < n; i++ {
				s += (float64(x[i*d+a]) - mu[a]) * (float64(x[i*d+b]) - mu[b])
			}
			cov.SetSym(a, b, s/math.Max(1, float64(n-1)))
		}
	}
	return Gaussian{mu, cov}
}

// sqrtSym is the symmetric square root of a positive semi-definite matrix.
func sqrtSym(s *mat.SymDense) *mat.Dense {
	var e mat.EigenSym
	e.Factorize(s, true)
	vals := e.Values(nil)
	var v mat.Dense
	e.VectorsTo(&v)
	d := len(vals)
	out := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			sum := 0.0
			for k := 0; k < d; k++ {
				sum += v.At(i, k) * math.Sqrt(math.Max(0, vals[k])) * v.At(j, k)
			}
			out.Set(i, j, sum)
		}
	}
	return out
}

// FrechetDistance is |μ1−μ2|² + tr(Σ1 + Σ2 − 2(Σ1^½ Σ2 Σ1^½)^½), the
// distance between two Gaussians (FID's formula, here on classifier features).
func FrechetDistance(a, b Gaussian) float64 {
	d := len(a.Mu)
	fd := 0.0
	for i := 0; i < d; i++ {
		fd += (a.Mu[i] - b.Mu[i]) * (a.Mu[i] - b.Mu[i])
		fd += a.Cov.At(i, i) + b.Cov.At(i, i)
	}
	s1 := sqrtSym(a.Cov)
	var m mat.Dense
	m.Mul(s1, b.Cov)
	m.Mul(&m, s1)
	sym := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			sym.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	var e mat.EigenSym
	e.Factorize(sym, false)
	for _, v := range e.Values(nil) {
		fd -= 2 * math.Sqrt(math.Max(0, v))
	}
	return math.Max(0, fd)
}

// KNNSeparability is the share of points whose k nearest neighbours (in y
// [n 2], excluding itself) have the point's label as their majority label.
// Chance is about 1/K for K balanced classes.
func KNNSeparability(y []float64, labels []int, k int) float64 {
	n := len(labels)
	if n <= k {
		return math.NaN()
	}
	hits := 0
	type nd struct {
		d float64
		i int
	}
	ds := make([]nd, 0, n)
	for i := 0; i < n; i++ {
		ds = ds[:0]
		for j := 0; j < n; j++ {
			if j != i {
				dx, dy := y[2*i]-y[2*j], y[2*i+1]-y[2*j+1]
				ds = append(ds, nd{dx*dx + dy*dy, j})
			}
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a].d < ds[b].d || ds[a].d == ds[b].d && ds[a].i < ds[b].i })
		votes := map[int]int{}
		for _, e := range ds[:k] {
			votes[labels[e.i]]++
		}
		best, bestN := -1, -1
		for l, c := range votes {
			if c > bestN || c == bestN && l < best {
				best, bestN = l, c
			}
		}
		if best == labels[i] {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// TSNE embeds x [n d] in 2-D with exact t-SNE (van der Maaten & Hinton
// 2008): Gaussian affinities at the given perplexity, Student-t in the
// embedding, gradient descent with momentum and early exaggeration. It is
// deterministic for a seed. It stops early with ctx.Err() when ctx is
// cancelled.
func TSNE(ctx context.Context, x []float32, d int, perplexity float64, iters int, seed uint64) ([]float64, error) {
	n := len(x) / d
	// squared distances
	D := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			s := 0.0
			for k := 0; k < d; k++ {
				v := float64(x[i*d+k] - x[j*d+k])
				s += v * v
			}
			D[i*n+j], D[j*n+i] = s, s
		}
	}
	// conditional P by binary search on the precision, then symmetrise
	P := make([]float64, n*n)
	target := math.Log(perplexity)
	for i := 0; i < n; i++ {
		lo, hi, beta := 0.0, math.Inf(1), 1.0
		for it := 0; it < 64; it++ {
			sum, hsum := 0.0, 0.0
			for j := 0; j < n; j++ {
				if j == i {
					continue
				}
				p := math.Exp(-D[i*n+j] * beta)
				P[i*n+j] = p
				sum += p
				hsum += D[i*n+j] * p
			}
			if sum == 0 {
				sum = 1e-300
			}
			h := math.Log(sum) + beta*hsum/sum
			for j := 0; j < n; j++ {
				P[i*n+j] /= sum
			}
			if math.Abs(h-target) < 1e-5 {
				break
			}
			if h > target {
				lo = beta
				if math.IsInf(hi, 1) {
					beta *= 2
				} else {
					beta = (beta + hi) / 2
				}
			} else {
				hi = beta
				beta = (beta + lo) / 2
			}
		}
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			v := math.Max((P[i*n+j]+P[j*n+i])/(2*float64(n)), 1e-12)
			P[i*n+j], P[j*n+i] = v, v
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x74736e65))
	Y := make([]float64, 2*n)
	for i := range Y {
		Y[i] = 1e-4 * rng.NormFloat64()
	}
	vel := make([]float64, 2*n)
	gains := make([]float64, 2*n)
	for i := range gains {
		gains[i] = 1
	}
	Q := make([]float64, n*n)
	grad := make([]float64, 2*n)
	lr := math.Max(float64(n)/12, 50)
	for it := 0; it < iters; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		exag, mom := 1.0, 0.8
		if it < 100 {
			exag, mom = 12, 0.5
		}
		sum := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				dx, dy := Y[2*i]-Y[2*j], Y[2*i+1]-Y[2*j+1]
				q := 1 / (1 + dx*dx + dy*dy)
				Q[i*n+j], Q[j*n+i] = q, q
				sum += 2 * q
			}
		}
		for i := range grad {
			grad[i] = 0
		}
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i == j {
					continue
				}
				q := Q[i*n+j]
				f := 4 * (exag*P[i*n+j] - q/sum) * q
				grad[2*i] += f * (Y[2*i] - Y[2*j])
				grad[2*i+1] += f * (Y[2*i+1] - Y[2*j+1])
			}
		}
		for k := range Y {
			if (grad[k] > 0) != (vel[k] > 0) {
				gains[k] += 0.2
			} else {
				gains[k] = math.Max(0.01, gains[k]*0.8)
			}
			vel[k] = mom*vel[k] - lr*gains[k]*grad[k]
			Y[k] += vel[k]
		}
		mx, my := 0.0, 0.0
		for i := 0; i < n; i++ {
			mx += Y[2*i] / float64(n)
			my += Y[2*i+1] / float64(n)
		}
		for i := 0; i < n; i++ {
			Y[2*i] -= mx
			Y[2*i+1] -= my
		}
	}
	return Y, nil
}

// randPerm is a seeded permutation of 0..n-1.
func randPerm(n int, seed uint64) []int {
	return rand.New(rand.NewPCG(seed, 0x7065726d)).Perm(n)
}

// Spread returns min(n, k) indices in [0, n), increasing and evenly spaced, so
// that a subset of a set stored class by class still holds every class.
func Spread(n, k int) []int {
	k = min(n, k)
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i * n / k
	}
	return idx
}
