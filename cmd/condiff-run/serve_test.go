package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/infer/infertest"
)

const shippedModel = "../../assets/pretrained/mnist-cbn.onnx"

// server is a running condiff-run serve.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

// startServer runs condiff-run serve on a free port with args and waits
// for its address.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	infertest.ORT(t)
	cmd := exec.Command(binary(t), append([]string{"serve", "--model", shippedModel, "--listen", "127.0.0.1:0", "--threads", "1"}, args...)...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			s.mu.Unlock()
			if i := strings.Index(line, "http://"); i >= 0 && strings.HasPrefix(line, "serve: ") {
				addr <- strings.Fields(line[i:])[0]
			}
		}
		close(addr)
	}()
	select {
	case u, ok := <-addr:
		if !ok {
			cmd.Wait()
			t.Fatalf("serve exited before listening:\n%s", s.log())
		}
		s.url = strings.TrimSuffix(u, "/")
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve did not start listening within 30 s")
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// post sends a JSON body and returns the status and body.
func (s *server) post(t *testing.T, path, body string, header ...string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
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

// sampleDir runs condiff-run sample with args into a fresh directory.
func sampleDir(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	cmd := exec.Command(binary(t), append([]string{"sample", "--model", shippedModel, "--threads", "1", "--out", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sample %v: %v\n%s", args, err, out)
	}
	return dir
}

// TestServeBatchInvariance: concurrent requests of different classes,
// guidance weights, step counts, samplers and η share the server's
// denoiser calls, and every image comes back bit-identical to the PNG
// condiff-run sample writes for the same options; the zip answer is a
// sample directory (its manifest lists the files).
func TestServeBatchInvariance(t *testing.T) {
	s := startServer(t, "--max-batch", "24")
	cases := []struct {
		body   string
		sample []string
	}{
		{`{"class": "3", "n": 6, "guidance": 1, "steps": 10, "seed": 4}`, []string{"--class", "3", "--n", "6", "--guidance", "1", "--steps", "10", "--seed", "4"}},
		{`{"classes": ["1", 7], "n": 3, "sampler": "dpm++2m", "steps": 7, "seed": 2}`, []string{"--class", "all", "--n", "3", "--sampler", "dpm++2m", "--steps", "7", "--seed", "2"}},
		{`{"n": 1, "guidance": 2, "steps": 12, "eta": 1, "seed": 9}`, []string{"--n", "1", "--guidance", "2", "--steps", "12", "--eta", "1", "--seed", "9"}},
		{`{"class": 0, "n": 9, "steps": 15, "seed": 5}`, []string{"--class", "0", "--n", "9", "--steps", "15", "--seed", "5"}},
	}
	answers := make([]map[string][]byte, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, _ := s.post(t, "/v1/samples?format=zip", c.body)
			if code != 200 {
				t.Errorf("%s: status %d: %s", c.body, code, body)
				return
			}
			z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
				return
			}
			answers[i] = map[string][]byte{}
			for _, f := range z.File {
				r, _ := f.Open()
				answers[i][f.Name], _ = io.ReadAll(r)
				r.Close()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if !strings.Contains(metrics(t, s), "condiff_denoiser_call_rows_bucket") {
		t.Error("/metrics has no batch occupancy")
	}
	for i, c := range cases {
		dir := sampleDir(t, c.sample...)
		var m struct {
			Images []struct{ File string } `json:"images"`
		}
		if err := json.Unmarshal(answers[i]["manifest.json"], &m); err != nil || len(m.Images) == 0 {
			t.Fatalf("%s: the zip's manifest: %v %s", c.body, err, answers[i]["manifest.json"])
		}
		for _, e := range m.Images {
			want, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatalf("%s: sample made no %s: %v", c.body, e.File, err)
			}
			if !bytes.Equal(answers[i][e.File], want) {
				t.Errorf("%s: %s differs from sample's", c.body, e.File)
			}
		}
		t.Logf("%s: %d images identical to sample's", c.body, len(m.Images))
	}
}

// waitIdle waits until the server holds no image in its queue (a client
// that left or timed out is dropped at the scheduler's next call).
func (s *server) waitIdle(t *testing.T, header ...string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "\ncondiff_queue_images 0\n") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the queue did not empty within 5 s")
}

func metrics(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestServeOpenAI: the OpenAI image endpoint answers n base64 PNGs, the
// same images as sample --class C; an unknown class is a 400 listing the
// classes.
func TestServeOpenAI(t *testing.T) {
	s := startServer(t)
	code, body, _ := s.post(t, "/v1/images/generations", `{"prompt": "7", "n": 2, "response_format": "b64_json", "size": "32x32", "steps": 5, "guidance": 1}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var r struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data) != 2 {
		t.Fatalf("%v: %s", err, body)
	}
	dir := sampleDir(t, "--class", "7", "--n", "2", "--steps", "5", "--guidance", "1")
	for i, d := range r.Data {
		got, _ := base64.StdEncoding.DecodeString(d.B64JSON)
		want, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%06d_7.png", i)))
		if !bytes.Equal(got, want) {
			t.Errorf("image %d differs from sample's", i)
		}
	}
	code, body, _ = s.post(t, "/v1/images/generations", `{"prompt": "a seven"}`)
	if code != 400 || !strings.Contains(string(body), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9") {
		t.Errorf("unknown class: %d %s", code, body)
	}
}

// TestServeHostile: what a hostile or unlucky client gets, and that the
// server goes on serving after each.
func TestServeHostile(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	s := startServer(t, "--token-file", token, "--max-n", "64", "--max-queue", "64", "--max-body", "4096", "--request-timeout", "3s", "--max-batch", "8")
	auth := []string{"Authorization", "Bearer s3cret"}
	for _, c := range []struct {
		name, body string
		header     []string
		code       int
		want       string
	}{
		{"no token", `{"n": 1}`, nil, 401, "the request has none"},
		{"wrong token", `{"n": 1}`, []string{"Authorization", "Bearer s3creT"}, 401, "not the server's"},
		{"malformed JSON", `{"n": 1`, auth, 400, "body"},
		{"two values", `{"n": 1} {"n": 2}`, auth, 400, "after the JSON value"},
		{"unknown field", `{"n": 1, "x": 2}`, auth, 400, `x: not a field`},
		{"huge n", `{"n": 1000000000}`, auth, 400, "n 1000000000"},
		{"n per class over the cap", `{"class": "all", "n": 10}`, auth, 400, "limit of 64 images"},
		{"NaN guidance", `{"guidance": NaN}`, auth, 400, "body"},
		{"NaN as a string", `{"guidance": "NaN"}`, auth, 400, "guidance"},
		{"negative guidance", `{"guidance": -1}`, auth, 400, "guidance -1"},
		{"infinite eta", `{"eta": 1e999}`, auth, 400, `"param":"eta"`},
		{"eta for dpm++2m", `{"sampler": "dpm++2m", "eta": 1}`, auth, 400, "eta 1"},
		{"steps past T", `{"steps": 1001}`, auth, 400, "steps 1001"},
		{"unknown sampler", `{"sampler": "euler"}`, auth, 400, "sampler"},
		{"unknown class", `{"class": "zebra"}`, auth, 400, "valid classes"},
		{"class index out of range", `{"class": 10}`, auth, 400, "class"},
		{"10 MB body", `{"n": 1, "sampler": "` + strings.Repeat("x", 10<<20) + `"}`, auth, 413, "limit of 4096 bytes"},
	} {
		code, body, _ := s.post(t, "/v1/samples", c.body, c.header...)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: status %d %s; want %d naming %q", c.name, code, body, c.code, c.want)
		}
	}
	// A client that leaves mid-request: its images leave the batch and
	// the server answers the next request.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/samples", strings.NewReader(`{"class": 0, "n": 60, "steps": 1000}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("a 60×1000-step request finished in 300 ms")
	}
	cancel()
	s.waitIdle(t, auth...)
	// Past --request-timeout: 504.
	code, body, _ := s.post(t, "/v1/samples", `{"class": 0, "n": 40, "steps": 1000}`, auth...)
	if code != 504 {
		t.Errorf("past the request timeout: status %d %.300s", code, body)
	}
	s.waitIdle(t, auth...)
	// A full queue: 429 with Retry-After while a request holds it.
	done := make(chan int)
	go func() {
		code, _, _ := s.post(t, "/v1/samples", `{"class": 0, "n": 64, "steps": 400}`, auth...)
		done <- code
	}()
	time.Sleep(300 * time.Millisecond)
	code, body, hdr := s.post(t, "/v1/samples", `{"class": 0, "n": 60}`, auth...)
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Errorf("a full queue: status %d (Retry-After %q) %.300s", code, hdr.Get("Retry-After"), body)
	}
	if code := <-done; code != 504 {
		t.Errorf("the request holding the queue: status %d, want 504 (past --request-timeout)", code)
	}
	code, body, _ = s.post(t, "/v1/samples", `{"class": "2", "n": 1, "steps": 3}`, auth...)
	if code != 200 || !strings.Contains(string(body), `"class":2`) {
		t.Fatalf("after the hostile requests: status %d %.300s", code, body)
	}
	if !strings.Contains(s.log(), "level=INFO msg=request") || strings.Contains(s.log(), "iVBOR") {
		t.Errorf("the log has no request lines, or image data:\n%.2000s", s.log())
	}
}

// TestServeDrain: SIGTERM stops accepting, lets the request in flight
// finish, and the server exits 0.
func TestServeDrain(t *testing.T) {
	s := startServer(t)
	done := make(chan int, 1)
	go func() {
		code, _, _ := s.post(t, "/v1/samples", `{"class": 0, "n": 4, "steps": 60}`)
		done <- code
	}()
	time.Sleep(500 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := <-done; code != 200 {
		t.Errorf("the request in flight got status %d", code)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM:\n%s", err, s.log())
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Error("the server still accepts after draining")
	}
}

// TestServeGoBackend: serve on the Go backend answers the images sample
// makes through ONNX Runtime (within one grey level), and its manifest
// says which backend made them.
func TestServeGoBackend(t *testing.T) {
	s := startServer(t, "--backend", "go")
	code, body, _ := s.post(t, "/v1/samples?format=zip", `{"class": "3", "n": 4, "guidance": 1, "steps": 6, "seed": 4}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, f := range z.File {
		r, _ := f.Open()
		got[f.Name], _ = io.ReadAll(r)
		r.Close()
	}
	var m struct {
		Backend string                  `json:"backend"`
		Images  []struct{ File string } `json:"images"`
	}
	if err := json.Unmarshal(got["manifest.json"], &m); err != nil || len(m.Images) != 4 || m.Backend != "go" {
		t.Fatalf("the zip's manifest (backend %q, %d images): %v", m.Backend, len(m.Images), err)
	}
	dir := sampleDir(t, "--backend", "ort", "--class", "3", "--n", "4", "--guidance", "1", "--steps", "6", "--seed", "4")
	for _, e := range m.Images {
		want, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		a, err := png.Decode(bytes.NewReader(got[e.File]))
		if err != nil {
			t.Fatalf("%s: %v", e.File, err)
		}
		b, _ := png.Decode(bytes.NewReader(want))
		px := func(img image.Image, i int) int {
			w := img.Bounds().Dx()
			r, _, _, _ := img.At(i%w, i/w).RGBA()
			return int(r >> 8)
		}
		for i := 0; i < a.Bounds().Dx()*a.Bounds().Dy(); i++ {
			if d := px(a, i) - px(b, i); d > 1 || d < -1 {
				t.Fatalf("%s pixel %d: Go backend %d, ONNX Runtime %d", e.File, i, px(a, i), px(b, i))
			}
		}
	}
}

// TestServeShutdownRounds: SIGTERM while a request runs, many times over:
// past a short --drain-timeout the server exits 1 naming the timeout, with
// no crash (ONNX Runtime's session outlives the call the scheduler is
// in); a clean drain where the client has just left exits 0; a second
// signal exits 130 at once.
func TestServeShutdownRounds(t *testing.T) {
	for round := 0; round < 12; round++ {
		kind := []string{"past the drain timeout", "client just left", "second signal"}[round%3]
		s := startServer(t, "--drain-timeout", "200ms")
		ctx, leave := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/samples", strings.NewReader(`{"class": 1, "n": 32, "steps": 1000}`))
		req.Header.Set("Content-Type", "application/json")
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(300 * time.Millisecond) // the request is inside a denoiser call
		if kind == "client just left" {
			leave()
			time.Sleep(time.Duration(round%4) * 5 * time.Millisecond)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		if kind == "second signal" {
			time.Sleep(20 * time.Millisecond)
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
		err := s.cmd.Wait()
		leave()
		code := s.cmd.ProcessState.ExitCode()
		want := map[string]int{"past the drain timeout": 1, "client just left": 0, "second signal": 130}[kind]
		if code != want || strings.Contains(s.log(), "SIGSEGV") || strings.Contains(s.log(), "goroutine ") {
			t.Fatalf("round %d (%s): exit %d (%v), want %d, no crash:\n%s", round, kind, code, err, want, s.log())
		}
		if kind == "past the drain timeout" && !strings.Contains(s.log(), "drain timeout 200ms") {
			t.Errorf("round %d: the error does not name the drain timeout:\n%s", round, s.log())
		}
	}
}

// TestTruncatedLibrary: an ONNX Runtime library cut short (an interrupted
// download) is looked at before the loader maps it: --backend auto falls
// back to the Go backend and makes the images, --backend ort refuses it in
// one line naming the file; neither faults.
func TestTruncatedLibrary(t *testing.T) {
	infertest.ORT(t)
	lib, err := infer.LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	dir := filepath.Join(t.TempDir(), "s")
	out, err := exec.Command(binary(t), "sample", "--model", shippedModel, "--backend", "auto", "--ort-lib", cut, "--n", "2", "--steps", "2", "--out", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Go backend") || !strings.Contains(string(out), "truncated") {
		t.Errorf("--backend auto with a truncated library: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "sample", "--model", shippedModel, "--backend", "ort", "--ort-lib", cut, "--n", "2", "--steps", "2", "--out", dir+"2").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), cut+" is truncated") {
		t.Errorf("--backend ort with a truncated library: %v\n%s", err, out)
	}
}
