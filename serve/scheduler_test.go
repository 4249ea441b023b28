package serve

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/condiff/condiff/diffusion"
)

// countingDenoiser predicts zero noise and counts its calls.
type countingDenoiser struct{ calls int }

func (d *countingDenoiser) Eps(x []float32, t, y []int64, out []float32) error {
	d.calls++
	clear(out)
	return nil
}

func testJob(t *testing.T, n, steps int) *job {
	t.Helper()
	sp, _ := diffusion.Default("linear", 100)
	sch, err := sp.Build()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := diffusion.DDIM.Timesteps(100, steps)
	if err != nil {
		t.Fatal(err)
	}
	j := &job{ctx: context.Background(), sampler: diffusion.DDIM, notify: make(chan struct{}, 1),
		chain: diffusion.Chain{Schedule: sch, Timesteps: ts, Values: 4}}
	for i := 0; i < n; i++ {
		j.indices, j.labels = append(j.indices, i), append(j.labels, 0)
	}
	return j
}

// callsUntil steps the scheduler (without its loop) until done says so,
// submitting late after `after` calls; it returns the calls made.
func callsUntil(t *testing.T, s *scheduler, late *job, after int, done func() bool) int {
	t.Helper()
	for call := 0; call < 10000; call++ {
		if call == after {
			s.queue = append(s.queue, late)
			s.waiting.Add(int64(len(late.indices)))
		}
		if done() {
			return call
		}
		s.admit()
		s.step()
	}
	t.Fatal("the jobs never finished")
	return 0
}

// TestAdmissionShares: a one-image request that arrives behind ten
// requests filling every row gets the next free row (it has none in flight)
// and finishes in about its own steps, instead of waiting for the large
// ones; with one request per call (--max-batch-requests 1) it waits for
// all of them.
func TestAdmissionShares(t *testing.T) {
	for _, c := range []struct {
		maxRequests int
		atMost      int // calls from its arrival until the small request is done
		atLeast     int
	}{
		{0, 10 + 10, 10},   // a row frees within one chain (10 calls), then its own 10
		{1, 200 + 10, 195}, // ten jobs of 16 images in rows of 8: 20 chains of 10 calls, 3 made before it came
	} {
		s := newScheduler(&countingDenoiser{}, 4, 8, c.maxRequests, 1<<20, newMetrics())
		var big []*job
		for i := 0; i < 10; i++ {
			big = append(big, testJob(t, 16, 10))
			s.queue = append(s.queue, big[i])
			s.waiting.Add(16)
		}
		small := testJob(t, 1, 10)
		arrival := 3
		got := callsUntil(t, s, small, arrival, func() bool { return len(small.finished) == 1 }) - arrival
		if got > c.atMost || got < c.atLeast {
			t.Errorf("max requests %d: the small request took %d calls after it arrived, want %d..%d", c.maxRequests, got, c.atLeast, c.atMost)
		}
		callsUntil(t, s, nil, -1, func() bool {
			for _, j := range big {
				if len(j.finished) != 16 {
					return false
				}
			}
			return true
		})
		if s.waiting.Load() != 0 || len(s.images) != 0 {
			t.Errorf("max requests %d: %d images waiting, %d in flight after all finished", c.maxRequests, s.waiting.Load(), len(s.images))
		}
	}
}

// failingDenoiser fails (or panics) on call number `at`.
type failingDenoiser struct {
	calls, at int
	panics    bool
}

func (d *failingDenoiser) Eps(x []float32, t, y []int64, out []float32) error {
	d.calls++
	if d.calls == d.at {
		if d.panics {
			panic("boom")
		}
		return errors.New("device lost")
	}
	clear(out)
	return nil
}

// TestFailedCall: a denoiser call that fails, or panics, fails the jobs
// whose images were in it and no other; the scheduler goes on.
func TestFailedCall(t *testing.T) {
	for _, panics := range []bool{false, true} {
		s := newScheduler(&failingDenoiser{at: 2, panics: panics}, 4, 4, 0, 1<<20, newMetrics())
		a, b := testJob(t, 4, 5), testJob(t, 2, 5)
		s.queue = []*job{a}
		s.waiting.Add(4)
		s.admit()
		s.step()
		s.queue = append(s.queue, b) // arrives after the rows are full
		s.waiting.Add(2)
		s.admit()
		s.step() // fails: only a's images are in it
		if a.err == nil || !strings.Contains(a.err.Error(), "denoiser call") {
			t.Fatalf("panics %v: the job in the failed call has error %v", panics, a.err)
		}
		callsUntil(t, s, nil, -1, func() bool { return len(b.finished) == 2 })
		if b.err != nil || s.waiting.Load() != 0 {
			t.Errorf("panics %v: the later job: error %v, %d images waiting", panics, b.err, s.waiting.Load())
		}
	}
}
