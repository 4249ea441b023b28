package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// sampler holds the sampling flags as given; parse types them, resolve
// fills in the model's defaults for the ones not given.
type sampler struct {
	name, interval, guide string
	given                 infer.Given
	o                     *infer.SampleOptions
	f                     *Flags
}

// samplerFlags registers the flags of a sampling run: sampler, steps, η,
// guidance, its interval and guide, batch and seed.
func samplerFlags(fs *Flags, o *infer.SampleOptions) *sampler {
	s := &sampler{o: o, f: fs}
	fs.StringVar(&s.name, "sampler", diffusion.DDIM.Name(), "the reverse-process sampler, one of "+diffusion.SamplerHelp()+" (default: the model's)")
	fs.IntVar(&o.Steps, "steps", 0, fmt.Sprintf("denoiser evaluations (0: the sampler's default, %d or all T for samplers that take only T); %d is as good as 50 on the shipped MNIST model at 2.4× the speed, 50 closer to the data on Fashion-MNIST (docs/frontier)", diffusion.DefaultSteps, diffusion.DefaultSteps))
	fs.Float64Var(&o.Eta, "eta", 0, "stochasticity of the samplers that take it (0: deterministic)")
	fs.Float64Var(&o.Guidance, "guidance", diffusion.DefaultGuidance, "guidance weight W: eps = (1+W)·eps(y) − W·eps(null) (or eps_guide(y) with --guide); default: the model's (its NAME.sampling.json, else 1 for a model trained with label dropout and 0 for the others; docs/guidance)")
	fs.StringVar(&s.interval, "guidance-interval", "none", "apply guidance only at the steps whose noise level σ_t = √((1−ᾱ_t)/ᾱ_t) lies in (LO, HI] (LO,HI; HI may be inf); the other steps take one denoiser row instead of two. none: every step. Default: the model's")
	fs.StringVar(&s.guide, "guide", "", "autoguidance: a guide denoiser (a smaller, less-trained model of the same data, schedule and classes) whose eps(y) replaces eps(null): eps = (1+W)·eps(y) − W·eps_guide(y); needs no null class. Default: the model's; none: no guide")
	fs.IntVar(&o.Batch, "batch", 64, "images per denoiser call (a guided call runs 2× this)")
	fs.Uint64Var(&o.Seed, "seed", infer.DefaultSeed, "noise seed; image i uses its own stream of (seed, i)")
	fs.Sets(map[string]string{
		"sampler":           "Sampler",
		"steps":             "Steps",
		"eta":               "Eta",
		"guidance":          "Guidance",
		"guidance-interval": "Interval",
		"guide":             "Guide",
		"batch":             "Batch",
		"seed":              "infer.Seed",
	})
	return s
}

// parse types the sampling flags into what was given (the flags not set
// stay nil: the model's defaults fill them in resolve). A malformed
// sampler or interval is refused here, with or without a model.
func (s *sampler) parse() error {
	g := &s.given
	smp, err := diffusion.ParseSampler(s.name)
	if err != nil {
		return s.f.Flagged(err)
	}
	iv, err := diffusion.ParseInterval(s.interval)
	if err != nil {
		return s.f.Flagged(err)
	}
	set := s.f.IsSet
	if set("sampler") {
		g.Sampler = smp
	}
	if set("guidance-interval") {
		g.Interval = &iv
	}
	if set("steps") {
		g.Steps = &s.o.Steps
	}
	if set("eta") {
		g.Eta = &s.o.Eta
	}
	if set("guidance") {
		g.Guidance = &s.o.Guidance
	}
	if set("guide") {
		g.Guide = &s.guide
	}
	if set("seed") {
		g.Seed = &s.o.Seed
	}
	return nil
}

// resolve reads the model once and sets the sampling options: the flags
// given (parse), over the model's defaults (infer.ModelDefaults,
// Defaults.Resolve: the one place they are merged), checked against the
// model.
func (s *sampler) resolve(model string) (contract.Info, error) {
	info, err := infer.ReadInfo(model)
	if err != nil {
		return info, err
	}
	d, err := infer.ModelDefaults(model, info)
	if err != nil {
		return info, err
	}
	smp, err := d.Resolve(s.given, info)
	if err != nil {
		return info, err
	}
	if err := smp.Check(info); err != nil {
		return info, fmt.Errorf("%w (%s)", s.f.Flagged(err), model)
	}
	s.o.SetSampling(smp)
	return info, nil
}

// Sample is `sample`: generate labelled images from an .onnx denoiser.
func Sample(args []string) error {
	fs := NewFlags("sample")
	var o infer.SampleOptions
	fs.StringVar(&o.Model, "model", "", "denoiser .onnx (default: the shipped "+DefaultModel+")")
	fs.StringVar(&o.Out, "out", "samples", "output directory")
	class := fs.String("class", "all", "class name or index, or all (--n per class)")
	fs.IntVar(&o.N, "n", 16, "images (per class with --class all)")
	shard := fs.String("shard", "", "k/n: make only the images whose index ≡ k mod n; auto: the task's place in a Slurm array (evenly spaced: --array=0-7, 1-15:2) of n tasks; auto/n: the index of a Kubernetes Indexed Job of n completions, or of a Slurm array whose indices are the shards (--array=3,5 reruns two of n)")
	fs.BoolVar(&o.Replace, "replace", false, "remove the sampling outputs already in --out that this run would mix with (outputs of the same plan are no clash: a run killed partway resumes, a finished one is done)")
	fs.Sets(map[string]string{
		"model":   "Model",
		"out":     "Out",
		"class":   "Class",
		"n":       "N",
		"shard":   "Shard",
		"replace": "Replace",
	})
	smp := samplerFlags(fs, &o)
	so := Session(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := smp.parse(); err != nil {
		return err
	}
	spec, err := AutoShard(*shard, os.Getenv)
	if err != nil {
		return err
	}
	if o.Shard, err = infer.ParseShard(spec); err != nil {
		return fs.Flagged(err)
	}
	if err := withDefaultModel(&o.Model); err != nil {
		return err
	}
	info, err := smp.resolve(o.Model)
	if err != nil {
		return err
	}
	if *class != "all" {
		if !info.Conditional() {
			return fmt.Errorf("--class %q: %s is unconditional (variant %s) and has no classes", *class, o.Model, info.Variant)
		}
		c, err := info.ClassIndex(*class)
		if err != nil {
			return fmt.Errorf("--class: %w", err)
		}
		o.Class = infer.OneClass(c)
	}
	o.Session, o.Progress = *so, os.Stderr
	manifest, suffix := infer.OutputNames(o.Shard)
	done := false
	o.OnResume = func(kept, total int) {
		if done = kept == total; done {
			fmt.Fprintf(os.Stderr, "sample: already done: %s lists all %d images of this plan\n", filepath.Join(o.Out, manifest), total)
		} else {
			fmt.Fprintf(os.Stderr, "sample: resuming: %d of %d images kept from %s, making the other %d\n", kept, total, filepath.Join(o.Out, manifest), total-kept)
		}
	}
	ctx, stop := Interruptible()
	defer stop()
	m, err := infer.SampleToDir(ctx, o)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %d complete images in %s are listed in its manifest; the same command resumes", len(m.Images), o.Out)
	}
	if errors.Is(err, infer.ErrUsed) {
		return fmt.Errorf("%w, or give --replace to remove them", fs.Flagged(err))
	}
	if err != nil {
		return fs.Flagged(err)
	}
	if !done {
		fmt.Fprintf(os.Stderr, "sample: %d images in %s (grid: %s, manifest: %s)\n", len(m.Images), o.Out,
			filepath.Join(o.Out, "grid"+suffix+".png"), filepath.Join(o.Out, manifest))
	}
	return nil
}

// AutoShard resolves --shard auto and auto/N from a batch scheduler's
// environment: a Slurm array (SLURM_ARRAY_TASK_ID counted from
// SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT tasks) or a Kubernetes
// Indexed Job (JOB_COMPLETION_INDEX; its completion count is N, which the
// job's environment does not carry). Any other value comes back as it is.
func AutoShard(spec string, getenv func(string) string) (string, error) {
	if spec != "auto" && !strings.HasPrefix(spec, "auto/") {
		return spec, nil
	}
	num := func(name string) (int, bool, error) {
		v := getenv(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("--shard %s: $%s=%q is not a non-negative integer", spec, name, v)
		}
		return n, true, nil
	}
	n := 0
	if rest, ok := strings.CutPrefix(spec, "auto/"); ok {
		var err error
		if n, err = strconv.Atoi(rest); err != nil || n < 1 {
			return "", fmt.Errorf("--shard %s: not auto/N with N >= 1", spec)
		}
	}
	if k, ok, err := num("JOB_COMPLETION_INDEX"); err != nil || ok {
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("--shard auto: a Kubernetes Indexed Job's environment does not say how many completions it has; give --shard auto/N")
		}
		if k >= n {
			return "", fmt.Errorf("--shard %s: $JOB_COMPLETION_INDEX=%d is not below the %d completions of auto/%d", spec, k, n, n)
		}
		return fmt.Sprintf("%d/%d", k, n), nil
	}
	id, ok, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("--shard %s: neither $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor $SLURM_ARRAY_TASK_ID (Slurm array) is set; give --shard k/n", spec)
	}
	if n > 0 {
		// auto/N: the array's indices are the shards (--array=0-7 for
		// eight; --array=3,5 runs shards 3 and 5 of them again).
		if id >= n {
			return "", fmt.Errorf("--shard %s: $SLURM_ARRAY_TASK_ID=%d is not a shard of %d (with auto/N the array's indices are the shards: --array=0-%d)", spec, id, n, n-1)
		}
		return fmt.Sprintf("%d/%d", id, n), nil
	}
	// auto: the task's place in the array, which must be evenly spaced
	// (--array=0-15, --array=1-15:2); its tasks are the shards.
	vars := map[string]int{}
	for _, name := range []string{"SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP"} {
		v, ok, err := num(name)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("--shard auto: $%s is not set (Slurm sets it in an array task); give --shard auto/N, with the array's indices 0..N-1", name)
		}
		vars[name] = v
	}
	count, lo, hi, step := vars["SLURM_ARRAY_TASK_COUNT"], vars["SLURM_ARRAY_TASK_MIN"], vars["SLURM_ARRAY_TASK_MAX"], vars["SLURM_ARRAY_TASK_STEP"]
	if count < 1 || step < 1 || hi != lo+(count-1)*step || id < lo || id > hi || (id-lo)%step != 0 {
		return "", fmt.Errorf("--shard auto: the array's indices are not evenly spaced ($SLURM_ARRAY_TASK_ID=%d, _MIN=%d, _MAX=%d, _STEP=%d, _COUNT=%d), so a task's place in it is unknown; number the shards 0..N-1 in --array and give --shard auto/N", id, lo, hi, step, count)
	}
	return fmt.Sprintf("%d/%d", (id-lo)/step, count), nil
}
