package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// benchBackends times DDIM-20 on a model (guidance 1: two rows per image)
// with ONNX Runtime and with the Go backend on the same threads, at batch
// 64 and 1, and counts the Go backend's allocations per denoiser call once
// its buffers exist.
func benchBackends(model string, threads int) (any, error) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	res := map[string]any{"model": model, "sampler": "ddim", "steps": 20, "guidance": 1, "threads": threads}
	for _, b := range []int{64, 1} {
		n := max(b, 8) // at least 8 images: enough calls to average
		row := map[string]float64{}
		for _, backend := range []string{infer.BackendORT, infer.BackendGo} {
			s, err := infer.Open(model, infer.Options{Backend: backend, Threads: threads})
			if err != nil {
				return nil, err
			}
			sch, err := s.Info.Schedule.Build()
			if err != nil {
				return nil, err
			}
			idx, labels := make([]int, n), make([]int, n)
			for i := range idx {
				idx[i], labels[i] = i, i%s.Info.NumClasses
			}
			req := diffusion.Request{Sampler: diffusion.DDIM, Steps: 20, Seed: 1, Batch: b, Guidance: 1,
				Values: s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize, Indices: idx, Labels: labels, Null: s.Info.Null()}
			// One warm-up image batch (buffers, caches), then the timed run.
			warm := req
			warm.Indices, warm.Labels, warm.Steps = idx[:b], labels[:b], 2
			if err := diffusion.Sample(context.Background(), s, sch, warm, nil, func([]int, []float32) error { return nil }); err != nil {
				return nil, err
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			s.Calls = 0
			start := time.Now()
			if err := diffusion.Sample(context.Background(), s, sch, req, nil, func([]int, []float32) error { return nil }); err != nil {
				return nil, err
			}
			wall := time.Since(start).Seconds()
			runtime.ReadMemStats(&ms1)
			row[backend+"_images_per_s"] = float64(n) / wall
			row[backend+"_allocs_per_call"] = float64(ms1.Mallocs-ms0.Mallocs) / float64(max(s.Calls, 1))
			row[backend+"_kb_alloc_per_call"] = float64(ms1.TotalAlloc-ms0.TotalAlloc) / 1024 / float64(max(s.Calls, 1))
			s.Close()
		}
		row["go_vs_ort_time"] = row["ort_images_per_s"] / row["go_images_per_s"]
		res[fmt.Sprintf("batch%d", b)] = row
	}
	return res, nil
}
