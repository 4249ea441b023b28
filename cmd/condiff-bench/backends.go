package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

// benchBackends times DDIM-20 on a model (guidance 1: two rows per image)
// with ONNX Runtime and with the Go backend on the same threads, at batch
// 64 and 1, and counts the Go backend's allocations per denoiser call once
// its buffers exist. The two backends take turns, rounds times each, and
// each backend's median is reported: a shared machine's slow spells then
// fall on both alike instead of on whichever ran second.
func benchBackends(model string, threads int) (any, error) {
	const rounds = 3
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	res := map[string]any{"model": model, "sampler": "ddim", "steps": 20, "guidance": 1, "threads": threads, "rounds": rounds}
	backends := []string{infer.BackendORT, infer.BackendGo}
	for _, b := range []int{64, 1} {
		n := max(b, 8) // at least 8 images: enough calls to average
		row := map[string]any{}
		sessions := map[string]*infer.Session{}
		for _, backend := range backends {
			s, err := infer.Open(model, infer.Options{Backend: backend, Threads: threads})
			if err != nil {
				return nil, err
			}
			defer s.Close()
			sessions[backend] = s
		}
		info := sessions[infer.BackendGo].Info
		sch, err := info.Schedule.Build()
		if err != nil {
			return nil, err
		}
		idx, labels := make([]int, n), make([]int, n)
		for i := range idx {
			idx[i], labels[i] = i, i%info.NumClasses
		}
		req := diffusion.Request{Sampler: diffusion.DDIM, Steps: 20, Seed: 1, Batch: b, Guidance: 1,
			Values: info.Channels * info.ImageSize * info.ImageSize, Indices: idx, Labels: labels, Null: info.Null()}
		discard := func([]int, []float32) error { return nil }
		// One warm-up image batch each (buffers, caches).
		warm := req
		warm.Indices, warm.Labels, warm.Steps = idx[:b], labels[:b], 2
		for _, backend := range backends {
			if err := diffusion.Sample(context.Background(), sessions[backend], sch, warm, nil, discard); err != nil {
				return nil, err
			}
		}
		walls := map[string][]float64{}
		for r := 0; r < rounds; r++ {
			for _, backend := range backends {
				s := sessions[backend]
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				s.Calls = 0
				start := time.Now()
				if err := diffusion.Sample(context.Background(), s, sch, req, nil, discard); err != nil {
					return nil, err
				}
				walls[backend] = append(walls[backend], time.Since(start).Seconds())
				runtime.ReadMemStats(&ms1)
				row[backend+"_allocs_per_call"] = float64(ms1.Mallocs-ms0.Mallocs) / float64(max(s.Calls, 1))
				row[backend+"_kb_alloc_per_call"] = float64(ms1.TotalAlloc-ms0.TotalAlloc) / 1024 / float64(max(s.Calls, 1))
			}
		}
		ratios := make([]float64, rounds)
		for r := range ratios {
			ratios[r] = walls[infer.BackendGo][r] / walls[infer.BackendORT][r]
		}
		for _, backend := range backends {
			row[backend+"_images_per_s"] = float64(n) / median(walls[backend])
			row[backend+"_images_per_s_rounds"] = perSecond(n, walls[backend])
		}
		row["go_vs_ort_time"] = median(walls[infer.BackendGo]) / median(walls[infer.BackendORT])
		row["go_vs_ort_time_rounds"] = ratios
		res[fmt.Sprintf("batch%d", b)] = row
	}
	return res, nil
}

// median is the middle value of xs (the mean of the two middle ones for
// an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// perSecond is n over each of walls.
func perSecond(n int, walls []float64) []float64 {
	out := make([]float64, len(walls))
	for i, w := range walls {
		out[i] = float64(n) / w
	}
	return out
}
