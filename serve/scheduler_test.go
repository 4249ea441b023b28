package serve

import (
	"context"
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

// TestAdmissionShares: a one-image request that arrives behind a request
// filling every row gets a row at the next call where one is free and
// finishes in its own steps, instead of waiting for the large one; with
// one request per call (--max-batch-requests 1) it waits for the whole
// large request.
func TestAdmissionShares(t *testing.T) {
	for _, c := range []struct {
		maxRequests int
		atMost      int // calls from its arrival until the small request is done
		atLeast     int
	}{
		{0, 10 + 10, 10}, // a row frees within one chain of the large job's images
		{1, 90, 85},      // the large job's 8 chains of 10 calls (80, 3 made before it came), then its own 10
	} {
		s := newScheduler(&countingDenoiser{}, 4, 8, c.maxRequests, newMetrics())
		big, small := testJob(t, 64, 10), testJob(t, 1, 10)
		s.queue = []*job{big}
		s.waiting.Add(64)
		arrival := 3
		got := callsUntil(t, s, small, arrival, func() bool { return len(small.finished) == 1 }) - arrival
		if got > c.atMost || got < c.atLeast {
			t.Errorf("max requests %d: the small request took %d calls after it arrived, want %d..%d", c.maxRequests, got, c.atLeast, c.atMost)
		}
		callsUntil(t, s, nil, -1, func() bool { return len(big.finished) == 64 })
		if s.waiting.Load() != 0 || len(s.images) != 0 {
			t.Errorf("max requests %d: %d images waiting, %d in flight after both finished", c.maxRequests, s.waiting.Load(), len(s.images))
		}
	}
}
