package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestInceptionScore(t *testing.T) {
	// perfectly confident, classes used equally: IS = K
	for _, k := range []int{2, 4, 10} {
		p := make([]float64, 5*k*k)
		for i := 0; i < 5*k; i++ {
			p[i*k+i%k] = 1
		}
		if got := InceptionScore(p, k); math.Abs(got-float64(k)) > 1e-9 {
			t.Errorf("K=%d: IS %g, want %d", k, got, k)
		}
	}
	// uniform predictions: IS = 1
	p := []float64{0.5, 0.5, 0.5, 0.5}
	if got := InceptionScore(p, 2); math.Abs(got-1) > 1e-12 {
		t.Errorf("uniform: IS %g, want 1", got)
	}
}

func TestFrechetDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	d, n := 3, 4000
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * float64(1+i%d))
	}
	a := Fit(x, d)
	if fd := FrechetDistance(a, a); fd > 1e-9 {
		t.Errorf("FD of a set with itself = %g, want 0", fd)
	}
	// Same covariance, mean shifted by s: closed form |s|² exactly.
	shift := []float64{0.5, -1, 2}
	b := Gaussian{Mu: slices.Clone(a.Mu), Cov: a.Cov}
	for i := range b.Mu {
		b.Mu[i] += shift[i]
	}
	if fd := FrechetDistance(a, b); math.Abs(fd-5.25) > 1e-6 {
		t.Errorf("shifted: FD %g, want 5.25", fd)
	}
	// Scaled: N(0, I) vs N(0, 4I) in d dims: tr(I + 4I − 2·2I) = d.
	id := Fit([]float32{1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1}, 3) // cov = I·(2/5)
	four := Fit([]float32{2, 0, 0, -2, 0, 0, 0, 2, 0, 0, -2, 0, 0, 0, 2, 0, 0, -2}, 3)
	want := 3 * (0.4 + 1.6 - 2*0.8) // tr(Σ1+Σ2−2(Σ1Σ2)^½) with Σ1=0.4I, Σ2=1.6I
	if fd := FrechetDistance(id, four); math.Abs(fd-want) > 1e-9 {
		t.Errorf("scaled: FD %g, want %g", fd, want)
	}
}

func TestAccuracy(t *testing.T) {
	acc, per := Accuracy([]int{0, 1, 1, 2, 0}, []int{0, 1, 0, 2, 1}, 4)
	if acc != 0.6 || per[0] != 0.5 || per[1] != 0.5 || per[2] != 1 || !math.IsNaN(per[3]) {
		t.Fatalf("accuracy %v per class %v", acc, per)
	}
	p := Softmax([]float32{1, 3, 0, 5, 2, 2}, 2)
	if got := Argmax(p, 2); !slices.Equal(got, []int{1, 1, 0}) {
		t.Fatalf("argmax %v", got)
	}
}

func TestTSNEDeterministicAndSeparates(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	d, per := 5, 30
	var x []float32
	var labels []int
	for c := 0; c < 3; c++ {
		for i := 0; i < per; i++ {
			for k := 0; k < d; k++ {
				v := rng.NormFloat64() * 0.3
				if k == c {
					v += 4
				}
				x = append(x, float32(v))
			}
			labels = append(labels, c)
		}
	}
	a, _ := TSNE(context.Background(), x, d, 15, 300, 7)
	b, _ := TSNE(context.Background(), x, d, 15, 300, 7)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TSNE(ctx, x, d, 15, 300, 7); err != context.Canceled {
		t.Fatalf("cancelled t-SNE: %v", err)
	}
	if !slices.Equal(a, b) {
		t.Fatal("t-SNE differs between two runs with the same seed")
	}
	if s := KNNSeparability(a, labels, 5); s < 0.95 {
		t.Fatalf("three well separated clusters: 5-NN separability %.2f < 0.95", s)
	}
	shuffled := slices.Clone(labels)
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if s := KNNSeparability(a, shuffled, 5); s > 0.6 {
		t.Fatalf("random labels: separability %.2f, expected near chance (1/3)", s)
	}
}

func TestSpread(t *testing.T) {
	// 500 samples stored class by class, 50 each: a 400-subset must hold all
	// ten classes, 40 of each.
	counts := map[int]int{}
	idx := Spread(500, 400)
	for j, i := range idx {
		if j > 0 && i <= idx[j-1] || i < 0 || i >= 500 {
			t.Fatalf("index %d = %d: not increasing within [0, 500)", j, i)
		}
		counts[i/50]++
	}
	for c := 0; c < 10; c++ {
		if counts[c] != 40 {
			t.Errorf("class %d has %d of the 400, want 40", c, counts[c])
		}
	}
	if got := Spread(7, 400); len(got) != 7 || got[6] != 6 {
		t.Errorf("Spread(7, 400) = %v, want 0..6", got)
	}
}
