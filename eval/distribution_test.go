package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gaussianMixture draws n points of d dims from `classes` well-separated
// Gaussians (class c centred at 3 on axis c), skipping the classes in drop;
// noise adds N(0, noise²) to every coordinate.
func gaussianMixture(rng *rand.Rand, n, d, classes int, drop map[int]bool, noise float64) []float32 {
	x := make([]float32, 0, n*d)
	for len(x) < n*d {
		c := rng.IntN(classes)
		if drop[c] {
			continue
		}
		for j := 0; j < d; j++ {
			v := rng.NormFloat64() * 0.5
			if j == c {
				v += 3
			}
			x = append(x, float32(v+noise*rng.NormFloat64()))
		}
	}
	return x
}

// TestProtocolKnownAnswers: the distribution figures on features whose
// answer is known. Real vs real (one distribution, disjoint draws): KID's
// interval covers 0, the FD ratio against the floor is about 1, precision
// and recall about the same as the real reference. A known corruption
// moves each figure the expected way: noise (less fidelity) raises KID and
// FD and lowers precision; a dropped class (less diversity) lowers recall
// and leaves precision up.
func TestProtocolKnownAnswers(t *testing.T) {
	const n, d, K = 300, 8, 5
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(drop map[int]bool, noise float64) []float32 { return gaussianMixture(rng, n, d, K, drop, noise) }
	realA, realB, realC, realD := draw(nil, 0), draw(nil, 0), draw(nil, 0), draw(nil, 0)
	same, noisy, dropped := draw(nil, 0), draw(nil, 0.8), draw(map[int]bool{0: true, 1: true}, 0)

	floor := interval([]float64{FrechetDistance(Fit(realA, d), Fit(realB, d)), FrechetDistance(Fit(realC, d), Fit(realD, d))})
	fdTo := func(x []float32) Interval {
		var v []float64
		for _, r := range [][]float32{realA, realB, realC, realD} {
			v = append(v, FrechetDistance(Fit(x, d), Fit(r, d)))
		}
		return interval(v)
	}
	r := RatioOf(fdTo(same), floor)
	t.Logf("FD ratio, same distribution: %.2f [%.2f, %.2f]; floor %.3f ± %.3f", r.Value, r.Lo, r.Hi, floor.Mean, floor.SD)
	if r.Value < 0.5 || r.Value > 2 || !(r.Lo <= 1 && 1 <= r.Hi) {
		t.Errorf("same distribution: FD ratio %.2f [%.2f, %.2f], want about 1 and an interval that covers 1", r.Value, r.Lo, r.Hi)
	}
	kid := KID(same, realA, d, 20, 200, 1)
	t.Logf("KID same %.4f ± %.4f", kid.Mean, kid.SD)
	if !(kid.Mean-kid.SD <= 0 && 0 <= kid.Mean+kid.SD) { // the reported interval covers 0
		t.Errorf("same distribution: KID %.4f ± %.4f does not cover 0", kid.Mean, kid.SD)
	}
	kidNoisy := KID(noisy, realA, d, 20, 200, 1)
	// The subsets' spread is of one subset's estimate; their mean's standard
	// error is sd/√20: the rise must exceed twice the two errors together.
	se := float64(kid.SD+kidNoisy.SD) / math.Sqrt(20)
	if !(float64(kidNoisy.Mean-kid.Mean) > 2*se) || !(fdTo(noisy).Mean > 2*fdTo(same).Mean) {
		t.Errorf("noise: KID %.4f ± %.4f (same %.4f), FD %.3f (same %.3f): both must rise", kidNoisy.Mean, kidNoisy.SD, kid.Mean, fdTo(noisy).Mean, fdTo(same).Mean)
	}
	p0, r0 := PrecisionRecall(realA, same, d, 3)
	pn, rn := PrecisionRecall(realA, noisy, d, 3)
	pd, rd := PrecisionRecall(realA, dropped, d, 3)
	t.Logf("precision/recall: same %.2f/%.2f, noisy %.2f/%.2f, two classes dropped %.2f/%.2f", p0, r0, pn, rn, pd, rd)
	if p0 < 0.8 || r0 < 0.8 {
		t.Errorf("same distribution: precision %.2f recall %.2f, want both high", p0, r0)
	}
	if !(pn < p0-0.2) {
		t.Errorf("noise must lower precision: %.2f vs %.2f", pn, p0)
	}
	if !(rd < r0-0.25) || !(pd > 0.8) {
		t.Errorf("a dropped class must lower recall (%.2f vs %.2f) and keep precision (%.2f)", rd, r0, pd)
	}
	if w := (Ratio{Value: 1, Lo: 0.2, Hi: 1.5}); !w.Wide() {
		t.Error("an interval wider than its value is not flagged")
	}
	if nw := RatioOf(Interval{Mean: 2, SD: 0.1}, Interval{Mean: 1, SD: 0.05}); nw.Wide() || math.Abs(float64(nw.Value)-2) > 1e-12 {
		t.Errorf("ratio %+v", nw)
	}
	// The interval is ±1 standard error of each mean: sd 0.4 over 4 draws
	// is 0.2, sd 0.2 over 4 pairs 0.1: [1.8/1.1, 2.2/0.9].
	means := RatioOf(Interval{Mean: 2, SD: 0.4, N: 4}, Interval{Mean: 1, SD: 0.2, N: 4})
	if math.Abs(float64(means.Lo)-1.8/1.1) > 1e-12 || math.Abs(float64(means.Hi)-2.2/0.9) > 1e-12 {
		t.Errorf("ratio of means over 4 draws: [%v, %v], want [%v, %v]", means.Lo, means.Hi, 1.8/1.1, 2.2/0.9)
	}
}

// TestIntervalHolds: the FD ratio's interval says how far other real draws
// move the figure. One fixed set of samples (a noisier copy of the real
// distribution) is measured against 12 independent sets of ten disjoint
// real draws: the spread (sd) of the 12 ratios must match the intervals'
// mean half-width within a factor of two either way (±1 standard error of
// each mean; the sd of the draws themselves, √N wider, fails this), and at
// least half of the intervals must cover the ratios' mean (±1 se covers
// about two thirds). (Evaluations with other --eval-seed values partition
// one test set anew, so their draws overlap and their ratios spread less.)
func TestIntervalHolds(t *testing.T) {
	const d, K, n, draws, seeds = 8, 5, 400, 10, 12
	rng := rand.New(rand.NewPCG(3, 4))
	samples := gaussianMixture(rng, n, d, K, nil, 0.5)
	var vals, half []float64
	var reps []Report
	for s := uint64(1); s <= seeds; s++ {
		var feats [][]float32
		for j := 0; j < draws; j++ {
			feats = append(feats, gaussianMixture(rng, n, d, K, nil, 0))
		}
		var r Report
		r.figures(samples, feats, d, s)
		vals = append(vals, float64(r.FDRatio.Value))
		half = append(half, float64(r.FDRatio.Hi-r.FDRatio.Lo)/2)
		reps = append(reps, r)
	}
	spread, width := interval(vals), interval(half)
	t.Logf("ratios %.2f ± %.2f over %d sets of real draws; mean half-width of the intervals %.2f", spread.Mean, spread.SD, seeds, width.Mean)
	if q := float64(spread.SD / width.Mean); q < 0.5 || q > 2 {
		t.Errorf("the ratios spread by %.3f, the intervals' half-width is %.3f: ratio %.2f, want within [0.5, 2]", spread.SD, width.Mean, q)
	}
	covered := 0
	for _, r := range reps {
		if float64(r.FDRatio.Lo) <= float64(spread.Mean) && float64(spread.Mean) <= float64(r.FDRatio.Hi) {
			covered++
		}
	}
	if covered < seeds/2 {
		t.Errorf("%d of %d intervals cover the ratios' mean %.2f, want at least half", covered, seeds, spread.Mean)
	}
	if spread.Mean < 1.5 {
		t.Errorf("the noisier samples sit %.2f× the floor; the test needs them clearly apart from real", spread.Mean)
	}
}
