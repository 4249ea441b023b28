package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

const serveMaxBatch = 64

// benchServe load-tests condiff-run serve on a model: throughput of mixed
// requests from 32 clients against offline sampling of the same work at
// the same rows per call; the latency of one-image requests on a server
// saturated by 64-image ones, with batching between requests and one
// request at a time; and the server's RSS under load, every minute.
func benchServe(bin, model string, loadFor, latencyFor, rssFor time.Duration) (any, error) {
	res := map[string]any{"model": model, "max_batch_rows": serveMaxBatch}
	off, err := offlineRate(model)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	res["offline_image_steps_per_s"] = off

	// Throughput: 32 clients, n 1–64, guidance 0 or 1, steps 10–50.
	srv, err := startServe(bin, model)
	if err != nil {
		return nil, err
	}
	load, err := mixedLoad(srv.url, 32, loadFor, nil)
	srv.stop()
	if err != nil {
		return nil, err
	}
	offlineSeconds := load.steps[0]/off["guidance0"] + load.steps[1]/off["guidance1"]
	res["throughput"] = map[string]any{
		"clients": 32, "seconds": round(load.seconds), "requests": load.requests, "errors": load.errors,
		"image_steps_guidance0": load.steps[0], "image_steps_guidance1": load.steps[1],
		"image_steps_per_s":         round((load.steps[0] + load.steps[1]) / load.seconds),
		"offline_seconds_same_work": round(offlineSeconds),
		"vs_offline":                round(offlineSeconds / load.seconds),
	}

	// Latency: n=1 probes on a server saturated by n=64 requests.
	lat := map[string]any{}
	for _, c := range []struct {
		name string
		args []string
	}{{"continuous_batching", nil}, {"one_request_at_a_time", []string{"--max-batch-requests", "1"}}} {
		srv, err := startServe(bin, model, c.args...)
		if err != nil {
			return nil, err
		}
		p, errs, err := probeLatency(srv.url, 8, latencyFor)
		srv.stop()
		if err != nil {
			return nil, err
		}
		lat[c.name] = map[string]any{"probes": len(p), "p50_s": round(pct(p, 0.5)), "p99_s": round(pct(p, 0.99)), "errors": errs}
	}
	b, o := lat["continuous_batching"].(map[string]any), lat["one_request_at_a_time"].(map[string]any)
	lat["p99_ratio"] = round(b["p99_s"].(float64) / o["p99_s"].(float64))
	lat["saturating_clients"] = 8
	res["latency"] = lat

	// Memory under the mixed load, every minute.
	if rssFor <= 0 {
		return res, nil
	}
	srv, err = startServe(bin, model)
	if err != nil {
		return nil, err
	}
	var trace []float64
	load, err = mixedLoad(srv.url, 32, rssFor, func(elapsed time.Duration) {
		trace = append(trace, srv.rssMB())
	})
	srv.stop()
	if err != nil {
		return nil, err
	}
	r := map[string]any{"minutes": rssFor.Minutes(), "rss_mb_every_minute": trace, "requests": load.requests, "errors": load.errors}
	if len(trace) > 1 {
		r["growth_mb_first_to_last"] = round(trace[len(trace)-1] - trace[0])
	}
	res["rss"] = r
	return res, nil
}

func round(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// offlineRate is what sample does with the machine to itself: image·steps
// per second of DDIM at 20 steps, unguided in calls of serveMaxBatch
// images and guided in calls of serveMaxBatch/2 (the same rows per call).
func offlineRate(model string) (map[string]float64, error) {
	s, err := infer.Open(model, infer.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	sch, err := s.Info.Schedule.Build()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, w := range []float64{0, 1} {
		batch := serveMaxBatch
		if w != 0 {
			batch /= 2
		}
		n := 4 * batch
		idx, labels := make([]int, n), make([]int, n)
		for i := range idx {
			idx[i], labels[i] = i, i%s.Info.NumClasses
		}
		req := diffusion.Request{Sampler: diffusion.DDIM, Steps: 20, Guidance: w, Seed: 1, Batch: batch, Null: s.Info.Null(),
			Values: s.Info.Channels * s.Info.ImageSize * s.Info.ImageSize, Indices: idx, Labels: labels}
		start := time.Now()
		if err := diffusion.Sample(context.Background(), s, sch, req, nil, func([]int, []float32) error { return nil }); err != nil {
			return nil, err
		}
		out[fmt.Sprintf("guidance%g", w)] = float64(n*20) / time.Since(start).Seconds()
	}
	return out, nil
}

// served is a condiff-run serve process.
type served struct {
	cmd *exec.Cmd
	url string
}

func startServe(bin, model string, args ...string) (*served, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--model", model, "--listen", "127.0.0.1:0", "--max-batch", strconv.Itoa(serveMaxBatch),
		"--max-queue", "1000000", "--request-timeout", "1h"}, args...)...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "http://"); i >= 0 && strings.HasPrefix(line, "serve: ") {
			go io.Copy(io.Discard, pr) // the request log
			return &served{cmd: cmd, url: strings.TrimSuffix(strings.Fields(line[i:])[0], "/")}, nil
		}
	}
	cmd.Wait()
	return nil, fmt.Errorf("%s serve exited before listening", bin)
}

func (s *served) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *served) rssMB() float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return round(float64(kb) / 1024)
		}
	}
	return 0
}

type loadResult struct {
	seconds  float64
	requests int
	errors   int
	steps    [2]float64 // image·steps done, unguided and guided
}

// post sends one request and reads the whole answer.
func post(url, body string) (int, error) {
	resp, err := http.Post(url+"/v1/samples", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// mixedLoad runs clients that send mixed requests until d has passed, then
// waits for the requests in flight; every minute calls tick, if set.
func mixedLoad(url string, clients int, d time.Duration, tick func(time.Duration)) (loadResult, error) {
	var mu sync.Mutex
	var r loadResult
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) {
				n, g, steps := 1+rng.IntN(64), rng.IntN(2), 10+rng.IntN(41)
				body := fmt.Sprintf(`{"class": %d, "n": %d, "guidance": %d, "steps": %d, "seed": %d}`, rng.IntN(10), n, g, steps, rng.IntN(1000))
				code, err := post(url, body)
				mu.Lock()
				r.requests++
				if err != nil || code != 200 {
					r.errors++
				} else {
					r.steps[g] += float64(n * steps)
				}
				mu.Unlock()
			}
		}()
	}
	if tick != nil {
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					tick(time.Since(start))
				case <-done:
					return
				}
			}
		}()
		defer close(done)
	}
	wg.Wait()
	r.seconds = time.Since(start).Seconds()
	return r, nil
}

// probeLatency saturates the server with `sat` clients sending n=64,
// 20-step requests, and meanwhile times one-image 20-step requests sent
// one after another for d.
func probeLatency(url string, sat int, d time.Duration) ([]float64, int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for c := 0; c < sat; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/samples",
					bytes.NewReader([]byte(fmt.Sprintf(`{"class": %d, "n": 64, "steps": 20, "seed": %d}`, c%10, i))))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(5 * time.Second) // let the queue fill
	var lat []float64
	errs := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		t0 := time.Now()
		code, err := post(url, `{"class": 3, "n": 1, "steps": 20}`)
		if err != nil || code != 200 {
			errs++
			continue
		}
		lat = append(lat, time.Since(t0).Seconds())
	}
	cancel()
	wg.Wait()
	return lat, errs, nil
}
