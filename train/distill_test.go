package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/export"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
	"github.com/condiff/condiff/models"
)

// distillTeacher trains a tiny guided teacher (synthetic 16×16, label
// dropout) for steps steps and exports it.
func distillTeacher(t *testing.T, steps int) string {
	t.Helper()
	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Steps, o.CFGDrop, o.SaveEvery = steps, 0.2, 0
	if _, err := Run(o); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "teacher.onnx")
	if err := export.Export(o.Out, model, export.Options{}); err != nil {
		t.Fatal(err)
	}
	return model
}

// studentOptions distils teacher into a student of n steps at guidance w.
func studentOptions(t *testing.T, teacher string, n int, w float64) Options {
	o := tinyOptions(t, contract.CBN, models.GroupNorm)
	o.Init, o.LR, o.SaveEvery = teacher, 1e-3, 0
	o.Distill = &contract.Distilled{Sampler: diffusion.DDIMTrailing.Name(), Steps: n, Guidance: w}
	return o
}

// TestDistillBatch: the targets a distillation step trains on, against
// the teacher's two guided DDIM steps computed here by hand (its ε for the
// label and the null class, (1+w)·ε(y) − w·ε(∅), the clipped x̂, DDIM's
// update) and the student's step solved for its v.
func TestDistillBatch(t *testing.T) {
	teacher := distillTeacher(t, 20)
	ck, ds := freshCheckpoint(t, studentOptions(t, teacher, 2, 1.5))
	tr, err := newTrainer(ck, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if err := tr.distillBatch(rand.New(rand.NewPCG(1, 2)), ds); err != nil {
		t.Fatal(err)
	}
	s, err := infer.Open(teacher, infer.Options{Backend: infer.BackendGo, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sch := tr.sch
	D := 16 * 16
	step := guidedStep(t, s, sch, 1.5)
	grid := map[int][2]int{999: {749, 499}, 499: {249, -1}} // ddim-trailing: 2 steps of 1000 in 4
	seen := map[int]bool{}
	var worst float64
	for i := 0; i < 16; i++ {
		ts := tr.gr.times[i]
		g, ok := grid[ts]
		if !ok {
			t.Fatalf("example %d at t=%d, not a step of the student's chain (999, 499)", i, ts)
		}
		seen[ts] = true
		zt := tr.x[i*D : (i+1)*D]
		z2 := step(step(zt, ts, g[0], tr.gr.labels[i]), g[0], g[1], tr.gr.labels[i])
		a, sg := math.Sqrt(sch.AlphaBar[ts]), math.Sqrt(1-sch.AlphaBar[ts])
		a2, s2 := 1.0, 0.0
		if g[1] >= 0 {
			a2, s2 = math.Sqrt(sch.AlphaBar[g[1]]), math.Sqrt(1-sch.AlphaBar[g[1]])
		}
		for k := 0; k < D; k++ {
			// The student's x̃ lands on z2 in one step: z2 = a2·x̃ + s2·(z_t − a·x̃)/sg.
			x := (float64(z2[k]) - s2/sg*float64(zt[k])) / (a2 - s2/sg*a)
			want := (a*float64(zt[k]) - x) / sg // v = α·ε̃ − σ·x̃
			worst = max(worst, math.Abs(float64(tr.noise[i*D+k])-want)/(1+math.Abs(want)))
		}
		if w := float64(tr.gr.lossW[i]); !(w > 0) || math.IsInf(w, 0) {
			t.Errorf("example %d: loss weight %v", i, w)
		}
	}
	t.Logf("largest difference from the hand-made target: %.2g (relative to 1 + |ṽ|)", worst)
	// float32 states through two steps and the solve: the division by
	// a2 − s2·a/sg (≈ 0.05 at t = 999) magnifies their rounding ~20×.
	if worst > 2e-4 {
		t.Errorf("targets differ from the hand-made ones by %.3g", worst)
	}
	if len(seen) != 2 {
		t.Errorf("16 examples drew the student's steps %v; want both", seen)
	}
}

// guidedStep is one guided DDIM step (η = 0) of the teacher s at weight w
// from ts to next (−1: clean), computed here by hand: its ε for the label
// and the null class, (1+w)·ε(y) − w·ε(∅), the clipped x̂, DDIM's update.
func guidedStep(t *testing.T, s *infer.Session, sch *diffusion.Schedule, w float64) func(x []float32, ts, next, y int) []float32 {
	D := s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize
	eps := func(x []float32, ts, y int) []float64 {
		out := make([]float32, D)
		if err := s.Eps(x, []int64{int64(ts)}, []int64{int64(y)}, out); err != nil {
			t.Fatal(err)
		}
		r := make([]float64, D)
		for k := range r {
			r[k] = float64(out[k])
		}
		return r
	}
	return func(x []float32, ts, next, y int) []float32 {
		c, u := eps(x, ts, y), eps(x, ts, s.Info.Null())
		a, sg := math.Sqrt(sch.AlphaBar[ts]), math.Sqrt(1-sch.AlphaBar[ts])
		an := 1.0
		if next >= 0 {
			an = math.Sqrt(sch.AlphaBar[next])
		}
		out := make([]float32, D)
		for k := range out {
			e := (1+w)*c[k] - w*u[k]
			x0 := math.Max(-1, math.Min(1, (float64(x[k])-sg*e)/a))
			e = (float64(x[k]) - a*x0) / sg
			out[k] = float32(an*x0 + math.Sqrt(1-an*an)*e)
		}
		return out
	}
}

// TestConsistencyBatch: the targets of a consistency-distillation step,
// against the teacher's one guided step computed here by hand and the
// student's own clean image at the next point of the teacher's grid (its
// current weights exported through the file path, read as v and turned
// into ε by the session), the clean image the student's x̂ at t must be.
func TestConsistencyBatch(t *testing.T) {
	teacher := distillTeacher(t, 20)
	o := studentOptions(t, teacher, 2, 1.5)
	o.Distill.Method = contract.DistillConsistency
	ck, ds := freshCheckpoint(t, o)
	// One ordinary step first, so that the student's own weights are no
	// longer its teacher's.
	warm, err := newTrainer(ck, 16)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := warm.step(rng, ds); err != nil {
		t.Fatal(err)
	}
	warm.close()
	tr, err := newTrainer(ck, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if err := tr.distillBatch(rng, ds); err != nil {
		t.Fatal(err)
	}
	s, err := infer.Open(teacher, infer.Options{Backend: infer.BackendGo, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	ownFile := filepath.Join(t.TempDir(), "own.onnx")
	if err := export.Export(dir, ownFile, export.Options{Raw: true}); err != nil {
		t.Fatal(err)
	}
	own, err := infer.Open(ownFile, infer.Options{Backend: infer.BackendGo, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	sch := tr.sch
	D := 16 * 16
	step := guidedStep(t, s, sch, 1.5)
	next := map[int]int{999: 749, 749: 499, 499: 249, 249: -1} // ddim-trailing: the teacher's 4 steps of 1000
	seen := map[int]bool{}
	var worst float64
	for i := 0; i < 16; i++ {
		ts, y := tr.gr.times[i], tr.gr.labels[i]
		nx, ok := next[ts]
		if !ok {
			t.Fatalf("example %d at t=%d, not a step of the teacher's grid (999, 749, 499, 249)", i, ts)
		}
		seen[ts] = true
		zt := tr.x[i*D : (i+1)*D]
		zs := step(zt, ts, nx, y)
		x0 := make([]float64, D)
		for k := range x0 {
			x0[k] = float64(zs[k])
		}
		if nx >= 0 {
			e := make([]float32, D)
			if err := own.Eps(zs, []int64{int64(nx)}, []int64{int64(y)}, e); err != nil {
				t.Fatal(err)
			}
			a, sg := math.Sqrt(sch.AlphaBar[nx]), math.Sqrt(1-sch.AlphaBar[nx])
			for k := range x0 {
				x0[k] = (float64(zs[k]) - sg*float64(e[k])) / a
			}
		}
		a, sg := math.Sqrt(sch.AlphaBar[ts]), math.Sqrt(1-sch.AlphaBar[ts])
		for k := 0; k < D; k++ {
			want := (a*float64(zt[k]) - x0[k]) / sg // v whose x̂ = α·z_t − σ·v is x0
			worst = max(worst, math.Abs(float64(tr.noise[i*D+k])-want)/(1+math.Abs(want)))
		}
	}
	t.Logf("largest difference from the hand-made target: %.2g (relative to 1 + |ṽ|)", worst)
	// float32 states and ε; x̂ = (z_s − σ·ε̂)/α divides by α_s ≥ 0.06 (at
	// s = 749), magnifying their rounding ~17×.
	if worst > 2e-4 {
		t.Errorf("targets differ from the hand-made ones by %.3g", worst)
	}
	if len(seen) < 3 {
		t.Errorf("16 examples drew the teacher's steps %v; want at least 3 of the 4", seen)
	}
}

// TestDistillRefusals: what cannot make a student is refused, naming the
// option.
func TestDistillRefusals(t *testing.T) {
	teacher := distillTeacher(t, 2)
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no teacher", func(o *Options) { o.Init = "" }, "needs its teacher"},
		{"label dropout", func(o *Options) { o.CFGDrop = 0.1 }, "CFGDrop"},
		{"min-snr", func(o *Options) { o.MinSNRGamma = 5 }, "MinSNRGamma"},
		{"no sampler", func(o *Options) { o.Distill.Sampler = "euler" }, "euler"},
		{"steps 0", func(o *Options) { o.Distill.Steps = 0 }, "must be >= 1"},
		{"too many steps", func(o *Options) { o.Distill.Steps = 600 }, "its teacher would run 1200 steps of 1000 timesteps: at most 500"},
		{"bad interval", func(o *Options) { o.Distill.GuidanceInterval = "5,1" }, "LO < HI"},
		{"bad method", func(o *Options) { o.Distill.Method = "rectified" }, `Distill.Method "rectified": not one of progressive, consistency`},
	} {
		o := studentOptions(t, teacher, 2, 1)
		o.Steps = 1
		c.edit(&o)
		_, err := Run(o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestStudentExports: a distilled run exports as a student, a v-prediction
// model whose metadata names its chain and the guidance it learned, and
// it samples by that chain with no options (its defaults); the session
// turns its v into the ε samplers take (ε = σ·x + α·v, checked on one call
// against the raw output of the same graph read as ε).
func TestStudentExports(t *testing.T) {
	teacher := distillTeacher(t, 3)
	o := studentOptions(t, teacher, 2, 1)
	o.Steps = 2
	if _, err := Run(o); err != nil {
		t.Fatal(err)
	}
	student := filepath.Join(t.TempDir(), "student.onnx")
	if err := export.Export(o.Out, student, export.Options{}); err != nil {
		t.Fatal(err)
	}
	info, err := infer.ReadInfo(student)
	if err != nil {
		t.Fatal(err)
	}
	want := contract.Distilled{Sampler: "ddim-trailing", Steps: 2, Guidance: 1}
	if info.Distilled == nil || *info.Distilled != want || info.Prediction != contract.PredictionV {
		t.Fatalf("the student's metadata: prediction %q, distilled %+v; want v, %+v", info.Prediction, info.Distilled, want)
	}
	var inspect strings.Builder
	if err := infer.Inspect(student, &inspect); err != nil || !strings.Contains(inspect.String(), "student: distilled (progressive) for ddim-trailing in 2 steps, predicts v; it learned its teacher's guidance 1") {
		t.Errorf("inspect: %v\n%s", err, inspect.String())
	}
	s, err := infer.Open(student, infer.Options{Backend: infer.BackendGo, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sm, images := infertest.SampleByDefault(t, s, student, 4)
	if sm.Sampler != diffusion.DDIMTrailing || sm.Steps != 2 || sm.Guidance != 0 || images != 4 || s.Calls != 2 {
		t.Fatalf("sampled %d images in %d calls by default (%+v); want 4 in 2, ddim-trailing, unguided", images, s.Calls, sm)
	}
	// v → ε: the same weights exported as an ε model give the raw v; the
	// student's session gives σ·x + α·v.
	sch, _ := info.Schedule.Build()
	x := make([]float32, 256)
	for k := range x {
		x[k] = float32(k%7)/3 - 1
	}
	got := make([]float32, 256)
	if err := s.Eps(x, []int64{600}, []int64{1}, got); err != nil {
		t.Fatal(err)
	}
	raw, err := infer.Open(epsilonCopy(t, o.Out), infer.Options{Backend: infer.BackendGo, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	v := make([]float32, 256)
	if err := raw.Eps(x, []int64{600}, []int64{1}, v); err != nil {
		t.Fatal(err)
	}
	a, sg := sch.SqrtAB[600], sch.SqrtOneAB[600]
	for k := range v {
		if want := sg*float64(x[k]) + a*float64(v[k]); math.Abs(float64(got[k])-want) > 1e-5 {
			t.Fatalf("value %d: ε %v, want σ·x + α·v = %v", k, got[k], want)
		}
	}
}

// epsilonCopy exports the run's weights as an ordinary (ε) model: its
// checkpoint without the distillation record.
func epsilonCopy(t *testing.T, run string) string {
	t.Helper()
	ck, err := checkpoint.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Distill = nil
	dir := t.TempDir()
	if err := ck.Save(filepath.Join(dir, checkpoint.File)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "eps.onnx")
	if err := export.Export(dir, out, export.Options{}); err != nil {
		t.Fatal(err)
	}
	return out
}
