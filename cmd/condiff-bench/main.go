// Command condiff-bench measures training and sampling throughput and prints
// JSON. `make bench` runs it (twice for training: OpenBLAS and pure-Go BLAS
// builds) beside the PyTorch reference in scripts/torch_ref.py.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/condiff/condiff/internal/onnxwire"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/train"
)

func benchConfig(variant contract.Variant, norm models.NormKind) models.Config {
	c := models.DefaultDenoiser()
	c.Variant, c.Norm, c.NumClasses, c.ImageSize, c.BaseChannels = variant, norm, 10, 32, 32
	c.NullClass = variant != contract.Uncond
	return c
}

func main() {
	mode := flag.String("mode", "train", "train, train-rss, sample, rss, serve, backends, students or gemm")
	threads := flag.Int("threads", 0, "backends, students: threads of the backends (0: all CPUs)")
	serveBin := flag.String("serve-bin", "bin/condiff-run", "serve: the condiff-run binary to load-test")
	serveModel := flag.String("serve-model", "assets/pretrained/mnist-cbn.onnx", "serve: the model to serve; backends: the model to time")
	serveFor := flag.Duration("serve-for", 60*time.Second, "serve: how long the throughput load runs")
	latencyFor := flag.Duration("latency-for", 30*time.Second, "serve: how long each latency comparison runs")
	rssFor := flag.Duration("rss-for", 10*time.Minute, "serve: how long the memory load runs (RSS every minute)")
	steps := flag.Int("steps", 5, "training steps timed per variant")
	model := flag.String("model", "", "rss: model to sample; students: the teacher")
	student := flag.String("student", "", "students: the teacher's distilled student")
	teacherInterval := flag.String("teacher-interval", "", "students: the teacher's guidance interval LO,HI or none (every step) instead of its default's")
	n := flag.Int("n", 64, "rss: images")
	only := flag.String("variant", "", "train: time only this variant (uncond, cbn_batch, cbn_group, ac)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof -top)")
	flag.Parse()
	onlyVariant = *only
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "condiff-bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var out any
	var err error
	switch *mode {
	case "train":
		out, err = benchTrain(*steps)
	case "sample":
		out, err = benchSample()
	case "rss":
		out, err = rss(*model, *n)
	case "train-rss":
		out, err = trainRSS()
	case "serve":
		out, err = benchServe(*serveBin, *serveModel, *serveFor, *latencyFor, *rssFor)
	case "backends":
		out, err = benchBackends(*serveModel, *threads)
	case "students":
		out, err = benchStudents(*model, *student, *teacherInterval, *threads)
	case "gemm":
		out, err = benchGemm()
	default:
		err = fmt.Errorf("unknown --mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "condiff-bench:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
}

// trainRSS trains a small cbn U-Net (16×16, base 16, batch 32) for 500
// steps and reports the resident set every 50 steps.
func trainRSS() (any, error) {
	cfg := benchConfig(contract.CBN, models.BatchNorm)
	cfg.ImageSize, cfg.BaseChannels = 16, 16
	trace, err := train.RSSTrace(cfg, 32, 500, 50)
	if err != nil {
		return nil, err
	}
	return map[string]any{"config": "cbn batch norm, 16x16, base 16, batch 32", "steps": 500, "rss_mb_every_50_steps": trace,
		"rss_growth_mb_step50_to_500": trace[len(trace)-1] - trace[0]}, nil
}

// onlyVariant, if set, restricts the training bench to one variant.
var onlyVariant string

func benchTrain(steps int) (any, error) {
	res := map[string]any{"blas": train.BLAS, "blas_core": train.BLASCore(), "size": 32, "batch": 64, "base": 32}
	for _, v := range []struct {
		name    string
		variant contract.Variant
		norm    models.NormKind
	}{
		{"uncond", contract.Uncond, models.BatchNorm}, {"cbn_batch", contract.CBN, models.BatchNorm},
		{"cbn_group", contract.CBN, models.GroupNorm}, {"ac", contract.AC, models.BatchNorm}} {
		if onlyVariant != "" && v.name != onlyVariant {
			continue
		}
		st, err := train.Measure(benchConfig(v.variant, v.norm), 64, steps, 0.1)
		if err != nil {
			return nil, err
		}
		res[v.name+"_img_per_s"] = st.ImgPerS
		res[v.name+"_mb_alloc_per_step"] = st.BytesPerStep / 1e6
		res[v.name+"_allocs_per_step"] = st.AllocsPerStep
		res[v.name+"_peak_rss_mb"] = st.PeakRSSMB
	}
	return res, nil
}

// exportRandom writes a denoiser with initial weights (output layer perturbed
// so it computes something) for timing.
func exportRandom(path string) error {
	cfg := benchConfig(contract.CBN, models.BatchNorm)
	w := models.InitParams(cfg, 1)
	for i := range w["conv_out.weight"].Data {
		w["conv_out.weight"].Data[i] = 0.01
	}
	sp, _ := diffusion.Default("linear", 1000)
	in := cfg.Contract()
	in.Schedule, in.Prediction = sp, contract.PredictionEpsilon
	md := in.Metadata()
	m, err := graphs.Build(cfg, w, models.InitNormStats(cfg), 1000, md)
	if err != nil {
		return err
	}
	return os.WriteFile(path, onnxwire.Encode(m), 0o644)
}

func benchSample() (any, error) {
	dir, err := os.MkdirTemp("", "condiff-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.onnx")
	if err := exportRandom(path); err != nil {
		return nil, err
	}
	s, err := infer.Open(path, infer.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	sch, _ := s.Info.Schedule.Build()
	res := map[string]any{"model": "U-Net 32x32, base 32, mult 1,2,2, cbn", "sampler": "ddim", "steps": 50}
	for _, b := range []int{1, 16, 64} {
		n := max(b, 16) // at least 16 images: enough calls to average
		idx := make([]int, n)
		labels := make([]int, n)
		for i := range idx {
			idx[i], labels[i] = i, i%10
		}
		req := diffusion.Request{Sampler: diffusion.DDIM, Steps: 50, Seed: 1, Batch: b, Values: 32 * 32, Indices: idx, Labels: labels, Null: s.Info.Null()}
		s.RunTime, s.Calls = 0, 0
		start := time.Now()
		if err := diffusion.Sample(context.Background(), s, sch, req, nil, func([]int, []float32) error { return nil }); err != nil {
			return nil, err
		}
		wall := time.Since(start).Seconds()
		res[fmt.Sprintf("batch%d", b)] = map[string]float64{
			"denoiser_evals_per_s": float64(n*50) / wall,
			"images_per_s":         float64(n) / wall,
			"frac_outside_run":     1 - s.RunTime.Seconds()/wall,
		}
	}
	// Peak RSS of a child process sampling n = 64 vs n = 4096 (2 DDIM steps).
	exe, _ := os.Executable()
	for _, n := range []int{64, 4096} {
		out, err := exec.Command(exe, "-mode", "rss", "-model", path, "-n", strconv.Itoa(n)).Output()
		if err != nil {
			return nil, fmt.Errorf("rss %d: %w", n, err)
		}
		var r map[string]float64
		if err := json.Unmarshal(out, &r); err != nil {
			return nil, err
		}
		res[fmt.Sprintf("peak_rss_mb_n%d", n)] = r["peak_rss_mb"]
	}
	return res, nil
}

func rss(model string, n int) (any, error) {
	dir, err := os.MkdirTemp("", "condiff-rss")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	_, err = infer.SampleToDir(context.Background(), infer.SampleOptions{Model: model, Out: dir, N: n / 10,
		Batch: 64, Seed: 1, Sampler: diffusion.DDIM, Steps: 2})
	if err != nil {
		return nil, err
	}
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return map[string]float64{"peak_rss_mb": float64(kb) / 1024}, nil
		}
	}
	return nil, fmt.Errorf("no VmHWM in /proc/self/status")
}
