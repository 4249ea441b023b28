package train

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/onnxwire"
)

// teacher is a distillation run's teacher (TrainInfo.Distill): the model
// the run started from, run by the Go backend in-process, and the two
// grids: the student's chain of N steps and the teacher's of 2N, which
// holds it (diffusion.TrailingTimesteps).
type teacher struct {
	s           *infer.Session
	consistency bool // contract.DistillConsistency; else progressive
	sampler     diffusion.Sampler
	student     []int // the student's timesteps, then −1 (clean)
	fine        []int // the teacher's: fine[2k] = student[k]; then −1
	guidance    diffusion.Guidance
	wNorm       float64 // the mean of DistillWeight over the steps trained on
	batch       diffusion.Batch
	images      []*diffusion.Image
	zt          []float32 // [B D]: each example's z_t
	next        []int     // [B]: where each example's student step goes
}

// openTeacher opens ck's teacher (its Init) and checks that it can teach:
// a denoiser of the run's schedule and classes (the run started from it,
// so a mismatch means the file changed since).
func openTeacher(ck *checkpoint.Checkpoint, batch int) (*teacher, error) {
	d := ck.Info.Distill
	s, err := infer.Open(ck.Info.Init, infer.Options{Backend: infer.BackendGo, Threads: runtime.NumCPU()})
	if err != nil {
		return nil, fmt.Errorf("distill: teacher: %w", err)
	}
	fail := func(format string, a ...any) (*teacher, error) {
		s.Close()
		return nil, fmt.Errorf("distill: teacher %s: %s", ck.Info.Init, fmt.Sprintf(format, a...))
	}
	if s.Info.Kind != contract.Denoiser || s.Info.Schedule != ck.Info.Schedule || s.Info.NumClasses != ck.Config.NumClasses {
		return fail("is not a denoiser of this run's schedule and %d classes (it changed since the run started from it?)", ck.Config.NumClasses)
	}
	t := &teacher{s: s}
	if t.sampler, err = diffusion.ParseSampler(d.Sampler); err != nil {
		return fail("%v", err)
	}
	T := ck.Info.Schedule.T
	if t.student, err = t.sampler.Timesteps(T, d.Steps); err != nil {
		return fail("%v", err)
	}
	if t.fine, err = t.sampler.Timesteps(T, 2*d.Steps); err != nil {
		return fail("a student of %d steps needs its teacher at %d: %v", d.Steps, 2*d.Steps, err)
	}
	for k, ts := range t.student {
		if t.fine[2*k] != ts {
			return fail("the %s grid of %d steps (%v) does not hold the grid of %d (%v)", d.Sampler, 2*d.Steps, t.fine, d.Steps, t.student)
		}
	}
	t.student, t.fine = append(t.student, -1), append(t.fine, -1)
	t.consistency = d.Method == contract.DistillConsistency
	iv, err := diffusion.ParseInterval(d.GuidanceInterval)
	if err != nil {
		return fail("%v", err)
	}
	t.guidance = diffusion.Guidance{Weight: d.Guidance, Interval: iv, Null: s.Info.Null()}
	if td := s.Info.Distilled; td != nil {
		// A student teaching the next round: its own chain, twice the
		// new one, unguided; its teacher's guidance is handed down.
		if td.Sampler != d.Sampler || td.Steps != 2*d.Steps {
			return fail("is a student of %s in %d steps; it teaches a student of %s in %d steps only", td.Sampler, td.Steps, td.Sampler, td.Steps/2)
		}
		if td.Guidance != d.Guidance || td.GuidanceInterval != d.GuidanceInterval {
			return fail("learned %s; the run records guidance %g in %q", td.What(), d.Guidance, d.GuidanceInterval)
		}
		t.guidance = diffusion.Guidance{}
	}
	if t.guidance.Weight != 0 && !s.Info.HasNull {
		return fail("guidance %g needs a null class, and the teacher has none", d.Guidance)
	}
	sch, err := ck.Info.Schedule.Build()
	if err != nil {
		return fail("%v", err)
	}
	trained := t.student[:d.Steps]
	if t.consistency {
		trained = t.fine[:2*d.Steps]
	}
	for _, ts := range trained {
		t.wNorm += sch.DistillWeight(ts) / float64(len(trained))
	}
	D := ck.Config.Channels * ck.Config.ImageSize * ck.Config.ImageSize
	t.batch.Values = D
	t.images = make([]*diffusion.Image, batch)
	t.zt, t.next = make([]float32, batch*D), make([]int, batch)
	return t, nil
}

func (t *teacher) close() { t.s.Close() }

// zeros is a noise stream of zeros: the teacher's chains are
// deterministic (η = 0), and NewImage's starting draw is overwritten.
type zeros struct{}

func (zeros) NormFloat64() float64 { return 0 }

// distillBatch draws a distillation batch: for each example an image and
// a step k of the student's chain, z_t at its timestep, the teacher's two
// guided steps from it (one denoiser call per step for the whole batch),
// and the v that makes the student's one step land where they did
// (Schedule.DistillTarget), weighted by DistillWeight over its mean.
func (tr *trainer) distillBatch(rng *rand.Rand, ds *data.Set) error {
	t, gr, cfg := tr.teach, tr.gr, tr.ck.Config
	if t.consistency {
		return tr.consistencyBatch(rng, ds)
	}
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	for i := 0; i < tr.batch; i++ {
		j := rng.IntN(ds.N)
		k := rng.IntN(len(t.student) - 1)
		ts, mid, next := t.student[k], t.fine[2*k+1], t.student[k+1]
		chain := []int{ts, mid}
		if next >= 0 {
			chain = append(chain, next) // the teacher stops before its call at next
		}
		tr.startTeacher(i, rng, ds, j, chain, next)
	}
	for step := 0; step < 2; step++ {
		if err := t.batch.Step(t.s, t.images); err != nil {
			return fmt.Errorf("distill: teacher: %w", err)
		}
		for _, im := range t.images {
			if err := im.Err(); err != nil {
				return fmt.Errorf("distill: teacher: %w", err)
			}
		}
	}
	for i, im := range t.images {
		zt := t.zt[i*D : (i+1)*D]
		copy(tr.x[i*D:(i+1)*D], zt)
		tr.sch.DistillTarget(gr.times[i], t.next[i], zt, im.X, tr.noise[i*D:(i+1)*D])
	}
	return nil
}

// startTeacher draws example i's noise, makes its z_t at chain[0] from
// image j, and starts the teacher's chain from it; next is where the
// student's step from chain[0] goes (−1: the clean image).
func (tr *trainer) startTeacher(i int, rng *rand.Rand, ds *data.Set, j int, chain []int, next int) {
	t, gr, cfg := tr.teach, tr.gr, tr.ck.Config
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	ts := chain[0]
	eps := tr.noise[i*D : (i+1)*D]
	for v := range eps {
		eps[v] = float32(rng.NormFloat64())
	}
	zt := t.zt[i*D : (i+1)*D]
	tr.sch.Noise(ts, ds.Image(j), eps, zt)
	c := diffusion.Chain{Schedule: tr.sch, Timesteps: chain, Values: D}
	im := diffusion.NewImage(t.sampler, c, ds.Labels[j], t.guidance, zeros{})
	copy(im.X, zt)
	t.images[i] = im
	gr.times[i], gr.labels[i], t.next[i] = ts, ds.Labels[j], next
	gr.lossW[i] = float32(tr.sch.DistillWeight(ts) / t.wNorm)
}

// consistencyBatch draws a consistency-distillation batch: for each
// example an image and a step k of the teacher's grid of 2N, z_t at its
// timestep t, the teacher's one guided step from it to the grid's next
// point s, and the student's own clean image from z_s at s, computed by
// the student's current weights and not trained through (θ⁻ = θ, ECT):
// the student learns to predict at t the clean image it predicts one
// teacher step later. At the grid's last step (s clean) the target is the
// teacher's own clean image. The v that makes the student's x̂ at t that
// image is its target (Schedule.DistillTarget to the clean image),
// weighted by DistillWeight over its mean on the grid.
func (tr *trainer) consistencyBatch(rng *rand.Rand, ds *data.Set) error {
	t, gr, cfg := tr.teach, tr.gr, tr.ck.Config
	D := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	for i := 0; i < tr.batch; i++ {
		j := rng.IntN(ds.N)
		k := rng.IntN(len(t.fine) - 1)
		ts, next := t.fine[k], t.fine[k+1]
		chain := []int{ts}
		if next >= 0 {
			chain = append(chain, next)
		}
		tr.startTeacher(i, rng, ds, j, chain, next)
	}
	if err := t.batch.Step(t.s, t.images); err != nil {
		return fmt.Errorf("distill: teacher: %w", err)
	}
	// The examples not at the grid's last step, in order, ask the student.
	var xs []float32
	var ts, ys []int64
	for i, im := range t.images {
		if err := im.Err(); err != nil {
			return fmt.Errorf("distill: teacher: %w", err)
		}
		if t.next[i] >= 0 {
			xs = append(xs, im.X...)
			ts, ys = append(ts, int64(t.next[i])), append(ys, int64(gr.labels[i]))
		}
	}
	var eps []float32
	if len(ts) > 0 {
		own, err := tr.ownSession()
		if err != nil {
			return err
		}
		defer own.Close()
		eps = make([]float32, len(xs))
		if err := own.Eps(xs, ts, ys, eps); err != nil {
			return fmt.Errorf("distill: the student's own target: %w", err)
		}
	}
	x0 := make([]float32, D)
	n := 0 // the next of the student's answers
	for i, im := range t.images {
		copy(x0, im.X) // the last step's target: the teacher's clean image
		if s := t.next[i]; s >= 0 {
			// x̂ = (z_s − σ_s·ε̂)/α_s from the student's own ε̂ at s.
			c1, c2 := tr.sch.X0Coefficients(s)
			e := eps[n*D : (n+1)*D]
			for v := range x0 {
				x0[v] = float32(c1*float64(im.X[v]) - c2*float64(e[v]))
			}
			n++
		}
		zt := t.zt[i*D : (i+1)*D]
		copy(tr.x[i*D:(i+1)*D], zt)
		tr.sch.DistillTarget(gr.times[i], -1, zt, x0, tr.noise[i*D:(i+1)*D])
	}
	return nil
}

// ownSession is the student as it stands (its current weights, not the
// EMA), exported in memory and opened in the Go backend: consistency
// distillation's target network.
func (tr *trainer) ownSession() (*infer.Session, error) {
	ck := tr.ck
	m, err := graphs.Build(ck.Config, ck.Params, ck.Stats, ck.Info.Schedule.T, export.Metadata(ck))
	if err != nil {
		return nil, fmt.Errorf("distill: the student's own target: %w", err)
	}
	s, err := infer.OpenGoBytes("the student at step "+strconv.Itoa(ck.Step), onnxwire.Encode(m), infer.Options{Backend: infer.BackendGo, Threads: runtime.NumCPU()})
	if err != nil {
		return nil, fmt.Errorf("distill: the student's own target: %w", err)
	}
	return s, nil
}

// checkDistill refuses distillation options that cannot make a student:
// no teacher (Init), a classifier, no steps, or options of ordinary
// training that distillation replaces (label dropout, Min-SNR weighting,
// the auxiliary classifier). The sampler, the guidance and the chain
// against the teacher's schedule are contract.Distilled.Check's, once
// prepare has read the teacher.
func (o *Options) checkDistill() error {
	d := o.Distill
	if d == nil {
		return nil
	}
	if o.Model.Kind != contract.Denoiser {
		return bad("Distill", d.Steps, "distils a denoiser; this run trains a %s", o.Model.Kind)
	}
	if o.Init == "" && !o.Resume {
		return bad("Distill", d.Steps, "needs its teacher: the model the student starts from (Init)")
	}
	if d.Steps < 1 {
		return bad("Distill", d.Steps, "must be >= 1 (the student's steps)")
	}
	if err := contract.CheckDistillMethod(d.Method); err != nil {
		return bad("Distill.Method", d.Method, "%v", err)
	}
	switch {
	case o.CFGDrop != 0:
		return bad("CFGDrop", o.CFGDrop, "must be 0 when distilling: the student learns its teacher's guided output, not label dropout")
	case o.MinSNRGamma != 0:
		return bad("MinSNRGamma", o.MinSNRGamma, "must be 0 when distilling: each example is weighted by what its error does to the student's step")
	case o.ACWeight != 0:
		return bad("ACWeight", o.ACWeight, "must be 0 when distilling")
	}
	return nil
}
