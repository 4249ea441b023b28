package serve

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/graphs/graphstest"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/models"
)

// The server's own tests run it in-process on the Go backend with a tiny
// model (8×8, three classes and a null class), so they need no ONNX
// Runtime; the binary's tests (cmd/condiff-run) run the shipped model.

// tinyModel writes the tiny denoiser (graphstest.TinyDenoiser, T = 100) as
// tiny.onnx.
func tinyModel(t *testing.T, edit func(w map[string]models.Array), meta func(md map[string]string)) string {
	t.Helper()
	return graphstest.TinyDenoiser(t, t.TempDir(), "tiny", 100, edit, meta)
}

// testServer is a server running in-process.
type testServer struct {
	*Server
	url    string
	cancel context.CancelFunc
	done   chan error
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs a server over model with o's limits (zero ones: the CLI's
// defaults) until the test ends.
func start(t *testing.T, model string, o Options, drain time.Duration) *testServer {
	t.Helper()
	o.Model, o.Listen = model, "127.0.0.1:0"
	o.Session = infer.Options{Backend: infer.BackendGo, Threads: 1}
	o.MaxBatch = max(o.MaxBatch, 64)
	o.MaxN = max(o.MaxN, 1024)
	o.MaxQueue = max(o.MaxQueue, 8192)
	o.MaxBody = max(o.MaxBody, 1<<16)
	if o.RequestTimeout == 0 {
		o.RequestTimeout = time.Minute
	}
	lb := &syncBuffer{}
	o.Log = slog.New(slog.NewTextHandler(lb, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, cancel: cancel, done: make(chan error, 1), log: lb}
	addr := make(chan string, 1)
	go func() { ts.done <- s.Run(ctx, drain, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		ts.url = "http://" + a
	case err := <-ts.done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.stop()
		s.Close()
	})
	return ts
}

// stop cancels the server and waits for Run (once).
func (ts *testServer) stop() error {
	ts.cancel()
	err, ok := <-ts.done
	if ok {
		close(ts.done)
	}
	return err
}

func (ts *testServer) do(t *testing.T, method, path, body string, header ...string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// counting wraps the denoiser: how many calls are in progress, and how
// many were made.
type counting struct {
	d       diffusion.Denoiser
	in      atomic.Int32
	calls   atomic.Int32
	maxRows atomic.Int32
}

func (c *counting) Eps(x []float32, t, y []int64, out []float32) error {
	c.in.Add(1)
	defer c.in.Add(-1)
	c.calls.Add(1)
	if n := int32(len(t)); n > c.maxRows.Load() {
		c.maxRows.Store(n)
	}
	return c.d.Eps(x, t, y, out)
}

// TestOneImageFailsItsOwnRequest: a request for a class the model answers
// NaN on fails alone: the request sharing its denoiser calls gets 200 and
// the same images it gets alone. Weights that are finite as float64 and
// infinite as float32 are refused before they reach a call.
func TestOneImageFailsItsOwnRequest(t *testing.T) {
	model := tinyModel(t, func(w map[string]models.Array) {
		g := w["down.0.res.0.norm1.gamma"] // [classes+null, C]: class 2's scale
		C := g.Shape[1]
		for k := 2 * C; k < 3*C; k++ {
			g.Data[k] = float32(math.NaN())
		}
	}, nil)
	ts := start(t, model, Options{}, time.Minute)
	den := &counting{d: ts.sched.den}
	ts.sched.den = den
	innocent := `{"class": 0, "n": 4, "guidance": 1, "steps": 60, "seed": 3}`
	type answer struct {
		code int
		body []byte
	}
	got := make(chan answer, 1)
	go func() {
		code, b, _ := ts.do(t, "POST", "/v1/samples", innocent)
		got <- answer{code, b}
	}()
	for den.calls.Load() < 3 { // the innocent request is in flight
		time.Sleep(time.Millisecond)
	}
	code, body, _ := ts.do(t, "POST", "/v1/samples", `{"class": 2, "n": 1, "steps": 2, "guidance": 0}`)
	if code != 500 || !strings.Contains(string(body), "image 0 (class 2)") || !strings.Contains(string(body), "not finite") {
		t.Errorf("the NaN class: status %d %s; want 500 naming image 0 (class 2)", code, body)
	}
	a := <-got
	if a.code != 200 {
		t.Fatalf("the request beside it: status %d %.300s", a.code, a.body)
	}
	if den.maxRows.Load() <= 8 {
		t.Fatalf("at most %d rows per call: the two requests never shared one", den.maxRows.Load())
	}
	code, alone, _ := ts.do(t, "POST", "/v1/samples", innocent)
	if code != 200 || !bytes.Equal(alone, a.body) {
		t.Errorf("the request alone: status %d; its answer beside the failing one differs from its answer alone", code)
	}
	if !strings.Contains(ts.metricsText(t), `condiff_errors_total{kind="non_finite"} 1`) {
		t.Error("/metrics does not count the non-finite image")
	}
	for _, c := range []struct{ body, want string }{
		{`{"guidance": 1e300}`, "finite as float32"},
		{`{"guidance": 3.5e38}`, "finite as float32"},
		{`{"eta": 1e300}`, "eta"},
		{`{"eta": 2}`, "[0, 1]"},
	} {
		if code, body, _ := ts.do(t, "POST", "/v1/samples", c.body); code != 400 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: status %d %s; want 400 naming %q", c.body, code, body, c.want)
		}
	}
}

func (ts *testServer) metricsText(t *testing.T) string {
	t.Helper()
	_, b, _ := ts.do(t, "GET", "/metrics", "")
	return string(b)
}

// TestRunOutlivesEveryCall: whichever way the server stops (drained, the
// drain timeout passed with a request in flight, a client that had just
// left), Run returns only once no denoiser call is in progress and none
// starts after, so closing the session then is safe. Twenty rounds.
func TestRunOutlivesEveryCall(t *testing.T) {
	model := tinyModel(t, nil, nil)
	for round := 0; round < 20; round++ {
		ts := start(t, model, Options{}, []time.Duration{time.Millisecond, 5 * time.Second}[round%2])
		den := &counting{d: ts.sched.den}
		ts.sched.den = den
		ctx, leave := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/samples", strings.NewReader(`{"n": 64, "steps": 100}`))
		req.Header.Set("Content-Type", "application/json")
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		for den.calls.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		if round%4 == 1 {
			leave() // the client leaves just before the signal: a clean drain
		}
		err := ts.stop()
		inCall, calls := den.in.Load(), den.calls.Load()
		time.Sleep(20 * time.Millisecond)
		if inCall != 0 || den.calls.Load() != calls {
			t.Fatalf("round %d: Run returned (%v) with %d denoiser calls in progress, and %d calls after", round, err, inCall, den.calls.Load()-calls)
		}
		leave()
	}
}

// TestGuard: the answers a web page on another origin, a rebound DNS
// name and a form post get; the operator's allowances.
func TestGuard(t *testing.T) {
	model := tinyModel(t, nil, nil)
	ts := start(t, model, Options{AllowOrigins: []string{"https://app.example.com"}, AllowHosts: []string{".proxy.example"}}, time.Minute)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.url, "http://"))
	body := `{"n": 1, "steps": 2}`
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		code                     int
		want                     string
	}{
		{"a form post", "POST", "/v1/samples", body, []string{"Content-Type", "text/plain"}, 415, "must be JSON"},
		{"no content type", "POST", "/v1/samples", body, []string{"Content-Type", ""}, 415, "must be JSON"},
		{"JSON with a charset", "POST", "/v1/samples", body, []string{"Content-Type", "application/json; charset=utf-8"}, 200, "images"},
		{"another origin", "POST", "/v1/samples", body, []string{"Origin", "http://evil.example"}, 403, `origin \"http://evil.example\"`},
		{"the null origin", "POST", "/v1/samples", body, []string{"Origin", "null"}, 403, "origin"},
		{"another origin reading", "GET", "/v1/models", "", []string{"Origin", "http://evil.example"}, 403, "origin"},
		{"same origin", "POST", "/v1/samples", body, []string{"Origin", ts.url}, 200, "images"},
		{"an allowed origin", "POST", "/v1/samples", body, []string{"Origin", "https://app.example.com"}, 200, "images"},
		{"a rebound name", "GET", "/v1/models", "", []string{"Host", "evil.example:" + port}, 403, `host \"evil.example:`},
		{"a rebound name, metrics", "GET", "/metrics", "", []string{"Host", "evil.example"}, 403, "host"},
		{"a rebound name posting", "POST", "/v1/samples", body, []string{"Host", "evil.example:" + port}, 403, "host"},
		{"localhost", "GET", "/v1/models", "", []string{"Host", "localhost:" + port}, 200, "tiny"},
		{"an IPv6 address", "GET", "/v1/models", "", []string{"Host", "[::1]:" + port}, 200, "tiny"},
		{"an allowed domain", "GET", "/v1/models", "", []string{"Host", "a.proxy.example"}, 200, "tiny"},
		{"a look-alike domain", "GET", "/v1/models", "", []string{"Host", "evilproxy.example"}, 403, "host"},
	} {
		code, b, _ := ts.do(t, c.method, c.path, c.body, c.header...)
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: status %d %.200s; want %d with %q", c.name, code, b, c.code, c.want)
		}
	}
	// The preflight of an allowed origin, and of another.
	code, _, h := ts.do(t, "OPTIONS", "/v1/samples", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if code != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight of an allowed origin: %d %v", code, h)
	}
	if code, _, h := ts.do(t, "OPTIONS", "/v1/samples", "", "Origin", "http://evil.example"); code != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d %v", code, h)
	}
	for _, bad := range [][]string{{"app.example.com"}, {"https://app.example.com/path"}, {"ftp://x"}} {
		o := Options{MaxBatch: 2, MaxN: 1, MaxQueue: 1, MaxBody: 1024, RequestTimeout: 1, AllowOrigins: bad}
		o.Defaults()
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), "AllowOrigins") {
			t.Errorf("--allow-origin %v: %v", bad, err)
		}
	}
}

// TestPageRunsNoInlineScript: the page's CSP allows no inline script or
// style, the page holds none, and its script writes no markup.
func TestPageRunsNoInlineScript(t *testing.T) {
	ts := start(t, tinyModel(t, nil, nil), Options{}, time.Minute)
	for _, p := range []string{"/", "/page.js", "/page.css"} {
		code, b, h := ts.do(t, "GET", p, "")
		csp := h.Get("Content-Security-Policy")
		if code != 200 || len(b) == 0 || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: status %d, CSP %q", p, code, csp)
		}
	}
	for _, bad := range []string{"<script>", "<style", " onclick=", " onerror=", " onload=", "style=\""} {
		if strings.Contains(string(page), bad) {
			t.Errorf("page.html holds %q", bad)
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
		if strings.Contains(string(pageJS), bad) {
			t.Errorf("page.js uses %s", bad)
		}
	}
}

// TestConnectionBounds: an idle keep-alive connection is closed after the
// idle timeout, a body dribbled slower than the read timeout gets 408, and
// a connection past the cap gets 503 at once.
func TestConnectionBounds(t *testing.T) {
	ts := start(t, tinyModel(t, nil, nil), Options{IdleTimeout: 300 * time.Millisecond, ReadTimeout: 400 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, MaxConns: 4}, time.Minute)
	addr := strings.TrimPrefix(ts.url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Idle: one request, then nothing.
	c := dial()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	t0 := time.Now()
	if _, err := br.ReadByte(); err != io.EOF || time.Since(t0) > 3*time.Second {
		t.Errorf("an idle connection: %v after %s; want closed (EOF) after the 300 ms idle timeout", err, time.Since(t0))
	}
	// A dribbled body.
	c = dial()
	b := `{"n": 1, "steps": 2}`
	fmt.Fprintf(c, "POST /v1/samples HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(b), b[:3])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	t0 = time.Now()
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 408 || time.Since(t0) > 3*time.Second {
		t.Errorf("a dribbled body: %v %v after %s; want 408 after the 400 ms read timeout", resp, err, time.Since(t0))
	}
	// The cap: four connections open (each mid-headers), the fifth is
	// answered 503 at once; when one closes, a request is served again.
	c.Close()
	time.Sleep(200 * time.Millisecond) // the server closes its side of the two above
	var held []net.Conn
	for i := 0; i < 4; i++ {
		c := dial()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\n")
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond)
	c = dial()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("past the connection cap: %v %v; want 503 with Retry-After", resp, err)
	}
	for _, c := range held {
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	if code, _, _ := ts.do(t, "GET", "/healthz", ""); code != 200 {
		t.Errorf("after the held connections closed: %d", code)
	}
}

// pipeListener hands the server the far ends of in-memory pipes: a pipe
// holds no buffer, so a client that does not read blocks the server's
// first write (a TCP socket would take megabytes first).
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestWriteTimeout: a client that asks and never reads the answer (a
// plain one, a stream, an error) releases its handler after the write
// timeout.
func TestWriteTimeout(t *testing.T) {
	o := Options{Model: tinyModel(t, nil, nil), Session: infer.Options{Backend: infer.BackendGo, Threads: 1}, MaxBatch: 8, MaxN: 8,
		MaxQueue: 8, MaxBody: 4096, RequestTimeout: time.Minute, WriteTimeout: 300 * time.Millisecond}
	lb := &syncBuffer{}
	o.Log = slog.New(slog.NewTextHandler(lb, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln, 100*time.Millisecond, nil) }()
	defer func() { cancel(); <-done }()
	for i, c := range []struct{ accept, body string }{
		{"application/json", `{"n": 2, "steps": 2}`},
		{"text/event-stream", `{"n": 2, "steps": 2}`},
		{"application/json", `{"n": 2, "steps": 2000}`},
	} {
		client, server := net.Pipe()
		defer client.Close()
		ln.conns <- server
		go fmt.Fprintf(client, "POST /v1/samples HTTP/1.1\r\nHost: localhost\r\nAccept: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.accept, len(c.body), c.body)
		t0 := time.Now()
		for strings.Count(lb.String(), "msg=request") <= i && time.Since(t0) < 10*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		if strings.Count(lb.String(), "msg=request") <= i {
			t.Fatalf("%s %s: the handler still runs 10 s after its answer was ready (write timeout 300 ms)", c.accept, c.body)
		}
	}
}

// TestAnswersNameNoPath: answers, zips and the log carry the model's file
// name, not the server's path to it; a client that leaves is logged 499.
func TestAnswersNameNoPath(t *testing.T) {
	model := tinyModel(t, nil, nil)
	ts := start(t, model, Options{}, time.Minute)
	_, b, _ := ts.do(t, "POST", "/v1/samples", `{"n": 1, "steps": 2}`)
	var r SamplesResponse
	if err := json.Unmarshal(b, &r); err != nil || r.Model != "tiny" {
		t.Errorf("the answer's model %q (%v)", r.Model, err)
	}
	_, b, _ = ts.do(t, "POST", "/v1/samples?format=zip", `{"n": 1, "steps": 2}`)
	if dir := filepath.Dir(model); bytes.Contains(b, []byte(dir)) {
		t.Errorf("the zip holds the server's directory %s", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/samples", strings.NewReader(`{"n": 200, "steps": 100}`))
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("200 images of 100 steps in 100 ms")
	}
	for i := 0; i < 200 && !strings.Contains(ts.log.String(), "status=499"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(ts.log.String(), "status=499") || strings.Contains(ts.log.String(), "status=0 ") {
		t.Errorf("a client that left is not logged 499:\n%s", ts.log.String())
	}
	if strings.Contains(ts.metricsText(t), `code="0"`) {
		t.Error(`/metrics records code="0"`)
	}
}

// TestGuideAndIntervalMatchSample: a server with a guide answers requests
// guided by it (the default), by the null class ("guide": false), and in
// an interval, each byte-identical to what infer.SampleToDir writes for the
// same options; the guide's rows of concurrent requests share calls; the
// answer and the zip's manifest say how guidance applied.
func TestGuideAndIntervalMatchSample(t *testing.T) {
	dir := t.TempDir()
	model := graphstest.TinyDenoiser(t, dir, "m", 100, graphstest.PatternWeights(1), nil)
	guide := graphstest.TinyDenoiser(t, dir, "g", 100, graphstest.PatternWeights(0.7), nil)
	ts := start(t, model, Options{Guide: guide}, time.Minute)
	cases := []struct {
		body  string
		guide string
		iv    diffusion.Interval
	}{
		{`{"class": 1, "n": 3, "steps": 6, "guidance": 2}`, guide, diffusion.Interval{}},
		{`{"class": 1, "n": 3, "steps": 6, "guidance": 2, "guide": false}`, "", diffusion.Interval{}},
		{`{"class": 2, "n": 3, "steps": 6, "guidance": 1.5, "guidance_interval": "0.5,8"}`, guide, diffusion.Interval{Lo: 0.5, Hi: 8}},
	}
	var wg sync.WaitGroup
	answers := make([]SamplesResponse, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b, _ := ts.do(t, "POST", "/v1/samples", c.body)
			if code != 200 || json.Unmarshal(b, &answers[i]) != nil {
				t.Errorf("%s: %d %.300s", c.body, code, b)
			}
		}()
	}
	wg.Wait()
	for i, c := range cases {
		var req SamplesRequest
		json.Unmarshal([]byte(c.body), &req)
		var cl int
		json.Unmarshal(req.Class, &cl)
		out := t.TempDir()
		_, err := infer.SampleToDir(context.Background(), infer.SampleOptions{Model: model, Out: out, Class: infer.OneClass(cl), N: 3, Batch: 2, Seed: 1,
			Sampler: diffusion.DDIM, Steps: 6, Guidance: *req.Guidance, Interval: c.iv, Guide: c.guide,
			Session: infer.Options{Backend: infer.BackendGo, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		r := answers[i]
		if wantGuide := map[bool]string{true: "g", false: ""}[c.guide != ""]; r.Guide != wantGuide || r.GuidanceInterval != map[bool]string{true: "", false: c.iv.String()}[c.iv.Everywhere()] {
			t.Errorf("%s: answer says guide %q, interval %q", c.body, r.Guide, r.GuidanceInterval)
		}
		for _, im := range r.Images {
			want, err := os.ReadFile(filepath.Join(out, im.File))
			if err != nil || !bytes.Equal(want, im.PNG) {
				t.Errorf("%s: image %d differs from sample's (%v)", c.body, im.Index, err)
			}
		}
	}
	code, b, _ := ts.do(t, "POST", "/v1/samples?format=zip", `{"n": 1, "steps": 2, "guidance_interval": "1,inf"}`)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if code != 200 || err != nil {
		t.Fatalf("zip: %d %v", code, err)
	}
	var m infer.Manifest
	for _, f := range zr.File {
		if f.Name == "manifest.json" {
			rc, _ := f.Open()
			json.NewDecoder(rc).Decode(&m)
			rc.Close()
		}
	}
	if m.Guide != "g.onnx" || m.GuideHash == "" || m.GuidanceInterval != "1,inf" {
		t.Errorf("the zip's manifest: guide %q (%q), interval %q", m.Guide, m.GuideHash, m.GuidanceInterval)
	}
	noGuide := start(t, model, Options{}, time.Minute)
	if code, b, _ := noGuide.do(t, "POST", "/v1/samples", `{"guide": true}`); code != 400 || !bytes.Contains(b, []byte(`"param":"guide"`)) {
		t.Errorf("guide true without a guide: %d %s", code, b)
	}
}
