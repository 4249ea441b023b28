package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// rowCounter counts the rows (images) a denoiser is asked for.
type rowCounter struct {
	d    diffusion.Denoiser
	rows int
}

func (c *rowCounter) Eps(x []float32, t, y []int64, out []float32) error {
	c.rows += len(t)
	return c.d.Eps(x, t, y, out)
}

// benchStudents times a teacher and its distilled student, each at its
// own defaults (the sidecar's sampler, steps, guidance and interval for
// the teacher; the student's metadata for the student), on ONNX Runtime
// and the Go backend at batch 64 and 1, and reports images/s, denoiser
// rows per image and the student's speed-up. Teacher and student take
// turns, rounds times each, and medians are compared (as benchBackends).
// teacherInterval, if not empty, replaces the teacher's default guidance
// interval ("none": guidance at every step).
func benchStudents(teacher, student, teacherInterval string, threads int) (any, error) {
	const rounds = 3
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	models := map[string]string{"teacher": teacher, "student": student}
	given := map[string]infer.Given{}
	discard := func([]int, []float32) error { return nil }
	res := map[string]any{"teacher": teacher, "student": student, "threads": threads, "rounds": rounds}
	if teacherInterval != "" {
		iv, err := diffusion.ParseInterval(teacherInterval)
		if err != nil {
			return nil, fmt.Errorf("-teacher-interval: %w", err)
		}
		given["teacher"] = infer.Given{Interval: &iv}
		res["teacher_interval"] = teacherInterval
	}
	for _, backend := range []string{infer.BackendORT, infer.BackendGo} {
		for _, b := range []int{64, 1} {
			n := max(b, 8)
			row := map[string]any{}
			walls := map[string][]float64{}
			type job struct {
				s   *infer.Session
				sch *diffusion.Schedule
				req diffusion.Request
			}
			jobs := map[string]job{}
			for _, who := range []string{"teacher", "student"} {
				path := models[who]
				s, err := infer.Open(path, infer.Options{Backend: backend, Threads: threads})
				if err != nil {
					return nil, err
				}
				defer s.Close()
				d, err := infer.ModelDefaults(path, s.Info)
				if err != nil {
					return nil, err
				}
				smp, err := d.Resolve(given[who], s.Info)
				if err != nil {
					return nil, err
				}
				if err := smp.Check(s.Info); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				if smp.Guide != "" {
					return nil, fmt.Errorf("%s: its defaults name a guide (%s): not timed here", path, smp.Guide)
				}
				sch, err := s.Info.Schedule.Build()
				if err != nil {
					return nil, err
				}
				idx, labels := make([]int, n), make([]int, n)
				for i := range idx {
					idx[i], labels[i] = i, i%s.Info.NumClasses
				}
				req := diffusion.Request{Sampler: smp.Sampler, Steps: smp.Steps, Eta: smp.Eta, Guidance: smp.Guidance,
					Interval: smp.Interval, Null: s.Info.Null(), Seed: 1, Batch: b,
					Values: s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize, Indices: idx, Labels: labels}
				ts, err := req.Check(sch.Spec.T)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				chain := fmt.Sprintf("%s %d steps", smp.Sampler.Name(), len(ts))
				if smp.Guidance != 0 {
					chain += fmt.Sprintf(", guidance %g in %s", smp.Guidance, smp.Interval)
				}
				row[who+"_chain"] = chain
				jobs[who] = job{s, sch, req}
				// One warm-up batch (buffers, caches), which also counts
				// the rows per image of the whole chain.
				warm := req
				warm.Indices, warm.Labels = idx[:b], labels[:b]
				rc := &rowCounter{d: s}
				if err := diffusion.Sample(context.Background(), rc, sch, warm, nil, discard); err != nil {
					return nil, err
				}
				row[who+"_rows_per_image"] = float64(rc.rows) / float64(b)
			}
			for r := 0; r < rounds; r++ {
				for _, who := range []string{"teacher", "student"} {
					j := jobs[who]
					start := time.Now()
					if err := diffusion.Sample(context.Background(), j.s, j.sch, j.req, nil, discard); err != nil {
						return nil, err
					}
					walls[who] = append(walls[who], time.Since(start).Seconds())
				}
			}
			ratios := make([]float64, rounds)
			for r := range ratios {
				ratios[r] = walls["teacher"][r] / walls["student"][r]
			}
			for _, who := range []string{"teacher", "student"} {
				row[who+"_images_per_s"] = float64(n) / median(walls[who])
				row[who+"_images_per_s_rounds"] = perSecond(n, walls[who])
			}
			row["student_speedup"] = median(walls["teacher"]) / median(walls["student"])
			row["student_speedup_rounds"] = ratios
			res[fmt.Sprintf("%s_batch%d", backend, b)] = row
		}
	}
	return res, nil
}
