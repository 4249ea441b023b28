package serve

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/condiff/condiff/diffusion"
)

// job is one request inside the scheduler: its images, started in index
// order, and what the handler reads of them (under mu; notify wakes it).
type job struct {
	ctx     context.Context
	sampler diffusion.Sampler
	chain   diffusion.Chain
	guide   diffusion.Guidance
	seed    uint64
	indices []int
	labels  []int

	started int // images started (scheduler only)
	active  int // images in flight (scheduler only)

	mu       sync.Mutex
	finished []finished // images done, in the order they finished
	steps    int        // denoiser calls made over all its images
	err      error      // set once: the job failed
	notify   chan struct{}
}

// finished is one image of a job, done.
type finished struct {
	pos int       // position in the job's indices
	x   []float32 // [C H W] in [-1, 1]
}

// totalSteps is the denoiser calls all the job's images take.
func (j *job) totalSteps() int { return len(j.indices) * len(j.chain.Timesteps) }

// wake tells the handler that the job changed, without ever blocking.
func (j *job) wake() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

func (j *job) fail(err error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = err
	}
	j.mu.Unlock()
	j.wake()
}

// scheduler owns the denoiser: it packs the images of every admitted job
// into each call (continuous batching) and moves each by one step of its
// own chain.
type scheduler struct {
	den         diffusion.Denoiser
	values      int
	maxRows     int // denoiser rows per call (a guided image takes two)
	maxRequests int // jobs whose images may share a call (0: any number)
	maxQueue    int // images that may wait to start (enqueue refuses more)
	reserve     int // rows only a job with no image in flight may take
	metrics     *metrics

	submit  chan *job
	waiting atomic.Int64 // images submitted and not yet started

	queue  []*job             // admitted in arrival order, with images left to start
	images []*diffusion.Image // in flight
	owner  []*job             // the job of each image in flight
	pos    []int              // each image's position in its job
	batch  diffusion.Batch
}

// queueFullError refuses a job whose images would take the queue over its
// limit (maxQueue images submitted and not yet started).
type queueFullError struct{ limit int }

func (e *queueFullError) Error() string {
	return fmt.Sprintf("the server's queue holds its limit of %d images; retry later", e.limit)
}

// enqueue admits a job to the queue, or refuses it with a
// *queueFullError; the handler answers that with 429.
func (s *scheduler) enqueue(j *job) error {
	n := int64(len(j.indices))
	if s.waiting.Add(n) > int64(s.maxQueue) {
		s.waiting.Add(-n)
		return &queueFullError{s.maxQueue}
	}
	s.submit <- j
	return nil
}

// wait follows a job until all its images are done, calling each with
// every newly finished image and progress with the steps done; it returns
// the job's error, the context's, or the first of each (the handler's
// cancel then drops the job).
func (j *job) wait(each func(finished) error, progress func(done, total int)) error {
	seen := 0
	for {
		j.mu.Lock()
		fresh := append([]finished(nil), j.finished[seen:]...)
		steps, err := j.steps, j.err
		j.mu.Unlock()
		seen += len(fresh)
		for _, f := range fresh {
			if err := each(f); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(steps, j.totalSteps())
		}
		if err != nil {
			return err
		}
		if seen == len(j.indices) {
			return nil
		}
		select {
		case <-j.notify:
		case <-j.ctx.Done():
			// The scheduler drops the job at its next call; answer now.
			return j.ctx.Err()
		}
	}
}

func newScheduler(den diffusion.Denoiser, values, maxRows, maxRequests, maxQueue int, m *metrics) *scheduler {
	reserve := 0
	if maxRequests == 0 {
		reserve = maxRows / 8
	}
	return &scheduler{den: den, values: values, maxRows: maxRows, maxRequests: maxRequests, maxQueue: maxQueue, reserve: reserve, metrics: m,
		submit: make(chan *job, 1024), batch: diffusion.Batch{Values: values}}
}

// run is the scheduler's loop; it returns when ctx is cancelled, failing
// the jobs still in it.
func (s *scheduler) run(ctx context.Context) {
	defer func() {
		for _, j := range s.queue {
			j.fail(fmt.Errorf("the server is shutting down"))
		}
	}()
	for {
		if len(s.images) == 0 && len(s.queue) == 0 {
			select {
			case j := <-s.submit:
				s.queue = append(s.queue, j)
			case <-ctx.Done():
				return
			}
		}
		for more := true; more; {
			select {
			case j := <-s.submit:
				s.queue = append(s.queue, j)
			default:
				more = false
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.dropCancelled()
		s.admit()
		s.metrics.queue.Set(float64(s.waiting.Load()))
		if len(s.images) == 0 {
			continue
		}
		s.step()
	}
}

// dropCancelled removes the jobs whose client left or whose time ran out,
// and their images.
func (s *scheduler) dropCancelled() {
	s.abandon(func(j *job) error { return j.ctx.Err() })
}

// abandon ends the jobs, queued or in flight, for which why gives an
// error: each fails with it, its images stop waiting and leave the batch.
func (s *scheduler) abandon(why func(*job) error) {
	gone := map[*job]bool{}
	for _, j := range append(slices.Clone(s.queue), s.owner...) {
		if gone[j] {
			continue
		}
		if err := why(j); err != nil {
			gone[j] = true
			s.waiting.Add(-int64(len(j.indices) - j.started))
			j.started = len(j.indices)
			j.fail(err)
		}
	}
	if len(gone) == 0 {
		return
	}
	s.queue = slices.DeleteFunc(s.queue, func(j *job) bool { return gone[j] })
	s.keep(func(i int) bool { return !gone[s.owner[i]] })
}

// keep keeps in flight the images for whose index ok holds.
func (s *scheduler) keep(ok func(i int) bool) {
	k := 0
	for i := range s.images {
		if ok(i) {
			s.images[k], s.owner[k], s.pos[k] = s.images[i], s.owner[i], s.pos[i]
			k++
		}
	}
	s.images, s.owner, s.pos = s.images[:k], s.owner[:k], s.pos[:k]
}

// admit starts images of the queued jobs while they fit in a call, each
// free row going to the job with the fewest images in flight, then the
// fewest started, then the oldest: a one-image request gets one of the
// next free rows however many large requests came before it, the rows are
// shared evenly between the requests waiting, and every request makes
// progress (none starves). The last reserve rows (an eighth) are kept
// for requests with no image in flight, so that a request arriving while
// every other row is taken still starts at the next call: without them,
// rows free up in waves (images started together finish together) and a
// small request waits up to a whole chain. With maxRequests set, only that
// many jobs share a call, oldest first (1: one request at a time).
func (s *scheduler) admit() {
	rows := diffusion.Rows(s.images)
	sharing := map[*job]bool{}
	for _, j := range s.owner {
		sharing[j] = true
	}
	for rows < s.maxRows {
		var best *job // nil: no job may take a row
		for _, j := range s.queue {
			if j.started == len(j.indices) || !sharing[j] && s.maxRequests > 0 && len(sharing) >= s.maxRequests {
				continue
			}
			limit := s.maxRows - s.reserve
			if j.active == 0 {
				limit = s.maxRows
			}
			if rows+diffusion.RowsPerImage(j.guide) > limit {
				continue
			}
			if s.maxRequests > 0 { // a few requests at a time: the oldest first
				best = j
				break
			}
			if best == nil || j.active < best.active || j.active == best.active && j.started < best.started {
				best = j
			}
		}
		if best == nil {
			break
		}
		j, p := best, best.started
		im := diffusion.NewImage(j.sampler, j.chain, j.labels[p], j.guide, diffusion.ImageRNG(j.seed, j.indices[p]))
		s.images, s.owner, s.pos = append(s.images, im), append(s.owner, j), append(s.pos, p)
		j.started++
		j.active++
		rows += diffusion.RowsPerImage(j.guide)
		sharing[j] = true
		s.waiting.Add(-1)
	}
	s.queue = slices.DeleteFunc(s.queue, func(j *job) bool { return j.started == len(j.indices) })
}

// step makes one denoiser call over every image in flight and hands the
// finished ones to their jobs. A failed call fails the jobs in it.
func (s *scheduler) step() {
	rows := diffusion.Rows(s.images)
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("denoiser call panicked: %v", r)
			}
		}()
		return s.batch.Step(s.den, s.images)
	}()
	s.metrics.calls.Inc()
	s.metrics.rows.Observe(float64(rows))
	if err != nil {
		s.metrics.errors.WithLabelValues("denoiser").Inc()
		inCall := map[*job]bool{}
		for _, j := range s.owner {
			inCall[j] = true
		}
		s.abandon(func(j *job) error {
			if inCall[j] {
				return fmt.Errorf("denoiser call of %d rows: %w", rows, err)
			}
			return nil
		})
		return
	}
	// An image that met NaN or Inf fails its own request; the others in
	// the call were stepped as if it had not been there.
	failed := map[*job]error{}
	for i, im := range s.images {
		if err := im.Err(); err != nil && failed[s.owner[i]] == nil {
			j := s.owner[i]
			failed[j] = &imageError{index: j.indices[s.pos[i]], class: j.labels[s.pos[i]], err: err}
		}
	}
	if len(failed) > 0 {
		s.metrics.errors.WithLabelValues("non_finite").Add(float64(len(failed)))
		s.abandon(func(j *job) error { return failed[j] })
	}
	touched := map[*job]bool{}
	for i, im := range s.images {
		j := s.owner[i]
		touched[j] = true
		j.mu.Lock()
		j.steps++
		if im.Done() {
			j.finished = append(j.finished, finished{pos: s.pos[i], x: im.X})
			j.active--
			s.metrics.images.Inc()
		}
		j.mu.Unlock()
	}
	for j := range touched {
		j.wake()
	}
	s.keep(func(i int) bool { return !s.images[i].Done() })
}

// imageError is a request's image that met NaN or Inf: the model's answer
// for that class and noise, not the server's failure.
type imageError struct {
	index, class int
	err          error
}

func (e *imageError) Error() string {
	return fmt.Sprintf("image %d (class %d): %v", e.index, e.class, e.err)
}

func (e *imageError) Unwrap() error { return e.err }
