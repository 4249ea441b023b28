// Package serve is condiff's sampling service: one model, opened once,
// behind an HTTP API (condiff-run serve). Every request becomes images
// that a single scheduler packs, with the images of every other request,
// into each denoiser call (continuous batching): each image keeps its own
// timestep, sampler state, guidance and noise stream, so what the server
// returns is bit-identical to what `sample` writes for the same model,
// seed, index, class and sampling options.
package serve

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
	"github.com/condiff/condiff/internal/field"
)

// Options configure a server.
type Options struct {
	Model            string
	Guide            string // the autoguidance guide ("": none); requests choose it with "guide": true
	Session          infer.Options
	Listen           string        // host:port (port 0: any free port)
	MaxBatch         int           // denoiser rows per call; a guided image takes two
	MaxBatchRequests int           // requests whose images may share a call (0: any number; 1: one at a time)
	MaxN             int           // images per request
	MaxQueue         int           // images accepted and not yet started, over all requests
	MaxBody          int64         // request body bytes
	RequestTimeout   time.Duration // past it a request is answered 504 and its images leave
	Token            string        // bearer token ("": no authentication)
	AllowOrigins     []string      // browser origins allowed cross-origin requests ("*": any)
	AllowHosts       []string      // Host names answered besides IP addresses, localhost and the machine's name
	MaxConns         int           // open connections (past it: 503 and closed)
	IdleTimeout      time.Duration // an idle keep-alive connection is closed after it
	ReadTimeout      time.Duration // to send a request's headers, and then its body
	WriteTimeout     time.Duration // to take an answer (each event of a stream) once it is ready
	Log              *slog.Logger
}

// Defaults fills the zero fields that have a default.
func (o *Options) Defaults() {
	if o.MaxConns == 0 {
		o.MaxConns = 512
	}
	for _, d := range []*time.Duration{&o.IdleTimeout, &o.ReadTimeout, &o.WriteTimeout} {
		if *d == 0 {
			*d = 30 * time.Second
		}
	}
}

// Check refuses options the server cannot run with.
func (o Options) Check() error {
	switch {
	case o.MaxBatch < 2:
		return field.Errorf("serve", "MaxBatch", o.MaxBatch, "must be >= 2 (a guided image takes two rows)")
	case o.MaxBatchRequests < 0:
		return field.Errorf("serve", "MaxBatchRequests", o.MaxBatchRequests, "must be >= 0")
	case o.MaxN < 1 || o.MaxN > infer.MaxImages:
		return field.Errorf("serve", "MaxN", o.MaxN, "out of 1..%d", infer.MaxImages)
	case o.MaxQueue < o.MaxN:
		return field.Errorf("serve", "MaxQueue", o.MaxQueue, "must be >= --max-n (%d), or no request of --max-n images is ever accepted", o.MaxN)
	case o.MaxBody < 1024:
		return field.Errorf("serve", "MaxBody", o.MaxBody, "must be >= 1024 bytes")
	case o.RequestTimeout <= 0:
		return field.Errorf("serve", "RequestTimeout", o.RequestTimeout, "must be > 0")
	case o.MaxConns < 1:
		return field.Errorf("serve", "MaxConns", o.MaxConns, "must be >= 1")
	case o.IdleTimeout <= 0:
		return field.Errorf("serve", "IdleTimeout", o.IdleTimeout, "must be > 0")
	case o.ReadTimeout <= 0:
		return field.Errorf("serve", "ReadTimeout", o.ReadTimeout, "must be > 0")
	case o.WriteTimeout <= 0:
		return field.Errorf("serve", "WriteTimeout", o.WriteTimeout, "must be > 0")
	}
	if err := checkOrigins(o.AllowOrigins); err != nil {
		return field.Errorf("serve", "AllowOrigins", strings.Join(o.AllowOrigins, ","), "%v", err)
	}
	for _, h := range o.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") {
			return field.Errorf("serve", "AllowHosts", h, "not a host name (e.g. images.example.com, .example.com for a domain, or *)")
		}
	}
	return nil
}

// Server serves one model.
type Server struct {
	o         Options
	session   *infer.Session
	defs      infer.Defaults // the model's sampling defaults
	guide     *infer.Session // nil without Options.Guide
	guideID   string         // its file name without .onnx
	guideHash string
	info      contract.Info
	sch       *diffusion.Schedule
	hash      string
	sched     *scheduler
	metrics   *metrics
	log       *slog.Logger
	id        string // the model's name in answers: its file name without .onnx
	hostname  string
	created   int64 // the model file's modification time, Unix seconds
}

var (
	//go:embed page.html
	page []byte
	//go:embed page.js
	pageJS []byte
	//go:embed page.css
	pageCSS []byte
)

// New opens the model and checks the options (zero ones take their
// defaults); Run serves it.
func New(o Options) (_ *Server, err error) {
	o.Defaults()
	if err := o.Check(); err != nil {
		return nil, err
	}
	sess, err := infer.Open(o.Model, o.Session)
	if err != nil {
		return nil, err
	}
	var guide *infer.Session
	defer func() { // on any refusal below, nothing stays open
		if err != nil {
			sess.Close()
			if guide != nil {
				guide.Close()
			}
		}
	}()
	if sess.Info.Kind != contract.Denoiser {
		return nil, field.Errorf("serve", "Model", o.Model, "is a %s, not a denoiser", sess.Info.Kind)
	}
	sch, err := sess.Info.Schedule.Build()
	if err != nil {
		return nil, err
	}
	hash, err := infer.FileHash(o.Model)
	if err != nil {
		return nil, err
	}
	defs, err := infer.ModelDefaults(o.Model, sess.Info)
	if err != nil {
		return nil, err
	}
	switch o.Guide {
	case "":
		o.Guide = defs.Guide // the model's own guide, if it names one
	case "none":
		o.Guide = ""
	}
	defs.Guide = o.Guide // the guide requests get by default: the server's
	if _, err := defs.Resolve(infer.Given{}, sess.Info); err != nil {
		return nil, err
	}
	guideID, guideHash := "", ""
	if o.Guide != "" {
		if guide, err = infer.Open(o.Guide, o.Session); err != nil {
			return nil, err
		}
		if err := guide.Info.CheckGuide(sess.Info); err != nil {
			return nil, field.Errorf("serve", "Guide", o.Guide, "%v (%s)", err, o.Model)
		}
		if guideHash, err = infer.FileHash(o.Guide); err != nil {
			return nil, err
		}
		guideID = strings.TrimSuffix(filepath.Base(o.Guide), ".onnx")
	}
	var created int64
	if st, err := os.Stat(o.Model); err == nil {
		created = st.ModTime().Unix()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	m := newMetrics()
	D := sess.Info.Channels * sess.Info.ImageSize * sess.Info.ImageSize
	sched := newScheduler(sess, D, o.MaxBatch, o.MaxBatchRequests, m)
	if guide != nil {
		sched.batch.Guide = guide
	}
	return &Server{o: o, session: sess, defs: defs, guide: guide, guideID: guideID, guideHash: guideHash, info: sess.Info, sch: sch, hash: hash, metrics: m, log: o.Log,
		id: strings.TrimSuffix(filepath.Base(o.Model), ".onnx"), hostname: thisHost(), created: created,
		sched: sched}, nil
}

// Close releases the model's session. Call it after Run has returned: Run
// returns only once the scheduler has left its last denoiser call.
func (s *Server) Close() error {
	if s.guide != nil {
		s.guide.Close()
	}
	return s.session.Close()
}

// Run listens on o.Listen and serves until ctx is cancelled; it then stops
// accepting, lets the requests in flight finish within drain, and returns.
// ready, if not nil, gets the address it listens on. Whatever the way out,
// Run returns only after the scheduler has stopped (its denoiser call in
// progress cut short), so the session may be closed then.
func (s *Server) Run(ctx context.Context, drain time.Duration, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return field.Errorf("serve", "Listen", s.o.Listen, "%v", err)
	}
	return s.serve(ctx, ln, drain, ready)
}

// serve is Run on a listener.
func (s *Server) serve(ctx context.Context, ln net.Listener, drain time.Duration, ready func(addr string)) error {
	conns := s.o.MaxConns
	if fds := openFiles(); fds > 0 && conns > fds-64 {
		conns = max(1, fds-64) // the model, the listener and the runtime need a few
		s.log.Warn("connections capped below the open-file limit", "max_conns", conns, "open_files", fds)
	}
	ln = newLimitListener(ln, conns, func() { s.metrics.errors.WithLabelValues("too_many_connections").Inc() })
	schedCtx, stopSched := context.WithCancel(context.Background())
	stopRun := s.session.StopOn(schedCtx) // cancelling it cuts the call in progress short
	if s.guide != nil {
		stopGuide := s.guide.StopOn(schedCtx)
		defer stopGuide()
	}
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s.sched.run(schedCtx)
	}()
	defer func() {
		stopSched()
		<-schedDone
		stopRun()
	}()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.o.ReadTimeout, IdleTimeout: s.o.IdleTimeout,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return context.Background() }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("draining", "timeout", drain.String())
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		srv.Close()
		return fmt.Errorf("serve: requests still running after the drain timeout %s were cut off", drain)
	}
	return nil
}

// Handler is the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static := func(name, typ string, b []byte) {
		mux.HandleFunc("GET "+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Header().Set("Content-Security-Policy", pageCSP)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("X-Frame-Options", "DENY")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Write(b)
		})
	}
	static("/{$}", "text/html; charset=utf-8", page)
	static("/page.js", "text/javascript; charset=utf-8", pageJS)
	static("/page.css", "text/css; charset=utf-8", pageCSS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /v1/models", s.auth(http.HandlerFunc(s.models)))
	mux.Handle("GET /v1/models/{id}", s.auth(http.HandlerFunc(s.model)))
	mux.Handle("POST /v1/samples", s.auth(s.timed("samples", s.samples)))
	mux.Handle("POST /v1/images/generations", s.auth(s.timed("generations", s.generations)))
	mux.Handle("/", s.notFound(mux))
	return s.recover(s.guard(s.writeDeadline(mux)))
}

// pageCSP lets the page run its own script and style files and nothing
// inline: markup that reaches the page (a model's class names are the
// model author's) cannot run as script.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// writeDeadline gives every answer WriteTimeout to be taken by the client;
// the sampling endpoints move it as their answers become ready.
func (s *Server) writeDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
		h.ServeHTTP(w, r)
	})
}

// recover turns a panic in a handler into a logged 500.
func (s *Server) recover(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.metrics.errors.WithLabelValues("internal").Inc()
				s.log.Error("panic", "path", r.URL.Path, "value", fmt.Sprint(v), "stack", string(debug.Stack()))
				httpError(w, http.StatusInternalServerError, codeInternal, "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// auth refuses requests without the bearer token (when there is one).
func (s *Server) auth(h http.Handler) http.Handler {
	if s.o.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			s.metrics.errors.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="condiff"`)
			if r.Header.Get("Authorization") == "" {
				httpError(w, http.StatusUnauthorized, codeMissingKey, "the server needs a bearer token (Authorization: Bearer TOKEN), and the request has none")
			} else {
				httpError(w, http.StatusUnauthorized, codeInvalidKey, "the bearer token is not the server's (Authorization: Bearer TOKEN)")
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// timed limits the body, logs one line per request and records its
// latency.
func (s *Server) timed(endpoint string, h func(http.ResponseWriter, *http.Request) (images int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rc := http.NewResponseController(w)
		// The body within ReadTimeout; then no read deadline, or the
		// connection's watch for a client that leaves would end the
		// request when it passed. The answer: by the request's own time
		// and WriteTimeout to send it (streams: per event).
		rc.SetReadDeadline(start.Add(s.o.ReadTimeout))
		rc.SetWriteDeadline(start.Add(s.o.RequestTimeout + s.o.WriteTimeout))
		r.Body = &readThen{r: http.MaxBytesReader(w, r.Body, s.o.MaxBody), done: func() { rc.SetReadDeadline(time.Time{}) }}
		sw := &statusWriter{ResponseWriter: w}
		images := h(sw, r)
		d := time.Since(start)
		s.metrics.latency.WithLabelValues(endpoint, fmt.Sprint(sw.code)).Observe(d.Seconds())
		s.log.Info("request", "endpoint", endpoint, "remote", r.RemoteAddr, "status", sw.code, "images", images, "seconds", d.Seconds())
	})
}

// readThen calls done once the body has been read to its end (not on an
// error: a request refused mid-body keeps its read deadline, so the server
// does not wait for the rest of it).
type readThen struct {
	r    io.ReadCloser
	done func()
	once sync.Once
}

func (b *readThen) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *readThen) Close() error { return b.r.Close() }

// ModelInfo answers GET /v1/models (in a list, as OpenAI's API does).
type ModelInfo struct {
	ID            string         `json:"id"`
	Object        string         `json:"object"`
	SHA256        string         `json:"sha256"`
	Classes       []string       `json:"classes"`
	ImageSize     int            `json:"image_size"`
	Channels      int            `json:"channels"`
	Variant       string         `json:"variant"`
	GuidanceReady bool           `json:"guidance_ready"`
	Schedule      diffusion.Spec `json:"schedule"`
	Samplers      []string       `json:"samplers"`
	Defaults      Defaults       `json:"defaults"` // what an absent sampling field of a request takes
	Created       int64          `json:"created"`  // the model file's modification time (Unix seconds)
	OwnedBy       string         `json:"owned_by"`
}

// Defaults are the sampling options a request that leaves them out gets.
type Defaults struct {
	Sampler          string  `json:"sampler"`
	Steps            int     `json:"steps"`
	Eta              float64 `json:"eta"`
	Guidance         float64 `json:"guidance"`
	GuidanceInterval string  `json:"guidance_interval"` // "none": every step
	Guide            bool    `json:"guide"`             // the server's guide (true) or the null class
	Seed             uint64  `json:"seed"`
}

func (s *Server) modelInfo() ModelInfo {
	m := ModelInfo{ID: s.id, Object: "model", Created: s.created, OwnedBy: "condiff", SHA256: s.hash,
		ImageSize: s.info.ImageSize, Channels: s.info.Channels, Variant: string(s.info.Variant),
		GuidanceReady: s.info.HasNull, Schedule: s.info.Schedule, Defaults: s.defaults()}
	if s.info.Conditional() {
		m.Classes = classNames(s.info)
	}
	for _, sm := range diffusion.Samplers() {
		m.Samplers = append(m.Samplers, sm.Name())
	}
	return m
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(compact(map[string]any{"object": "list", "data": []ModelInfo{s.modelInfo()}}), '\n'))
}

// model answers GET /v1/models/{id}.
func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.id {
		param := "model"
		writeError(w, apiError{Status: http.StatusNotFound, Param: &param, Code: ptr(codeModelNotFound),
			Message: fmt.Sprintf("model %q: the server serves %q", id, s.id)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(compact(s.modelInfo()), '\n'))
}

func ptr[T any](v T) *T { return &v }

// submit hands a plan to the scheduler, or refuses it when the queue is
// full (false: answered 429).
func (s *Server) submit(w http.ResponseWriter, ctx context.Context, p *plan) (*job, bool) {
	n := int64(len(p.indices))
	if s.sched.waiting.Add(n) > int64(s.o.MaxQueue) {
		s.sched.waiting.Add(-n)
		s.metrics.errors.WithLabelValues("queue_full").Inc()
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusTooManyRequests, codeQueueFull, fmt.Sprintf("the server's queue holds its limit of %d images; retry later", s.o.MaxQueue))
		return nil, false
	}
	j := &job{ctx: ctx, sampler: p.sampler, guide: diffusion.Guidance{Weight: p.guidance, Null: s.info.Null(), Interval: p.interval, Auto: p.auto}, seed: p.seed,
		indices: p.indices, labels: p.labels, notify: make(chan struct{}, 1),
		chain: diffusion.Chain{Schedule: s.sch, Timesteps: p.ts, Eta: p.eta, Values: s.sched.values}}
	s.sched.submit <- j
	return j, true
}

// wait follows a job until all its images are done, calling each with
// every newly finished image and progress with the steps done; it returns
// the job's error, the context's, or the first of each (the handler's
// cancel then drops the job).
func (j *job) wait(each func(finished) error, progress func(done, total int)) error {
	seen := 0
	for {
		j.mu.Lock()
		fresh := append([]finished(nil), j.finished[seen:]...)
		steps, err := j.steps, j.err
		j.mu.Unlock()
		seen += len(fresh)
		for _, f := range fresh {
			if err := each(f); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(steps, j.totalSteps())
		}
		if err != nil {
			return err
		}
		if seen == len(j.indices) {
			return nil
		}
		select {
		case <-j.notify:
		case <-j.ctx.Done():
			// The scheduler drops the job at its next call; answer now.
			return j.ctx.Err()
		}
	}
}

// image turns a finished image into the answer's PNG.
func (s *Server) image(p *plan, f finished) (Image, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, infer.ToImage(f.x, s.info.Channels, s.info.ImageSize)); err != nil {
		return Image{}, fmt.Errorf("image %d: png: %w", p.indices[f.pos], err)
	}
	gi, c := p.indices[f.pos], p.labels[f.pos]
	return Image{Index: gi, Class: c, ClassName: s.info.ClassName(c), Seed: p.seed, File: infer.FileName(s.info, gi, c), PNG: b.Bytes()}, nil
}

// accept decodes a request body into a T, plans it and submits it to the
// scheduler; false: the request was answered already (400, 413, 429).
// cancel ends the job's time.
func accept[T any](s *Server, w http.ResponseWriter, r *http.Request, planOf func(*T) (*plan, error)) (j *job, p *plan, cancel context.CancelFunc, ok bool) {
	var req T
	if err := decode(r.Body, &req); err != nil {
		s.refuse(w, err)
		return nil, nil, nil, false
	}
	p, err := planOf(&req)
	if err != nil {
		s.refuse(w, err)
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.RequestTimeout)
	if j, ok = s.submit(w, ctx, p); !ok {
		cancel()
		return nil, nil, nil, false
	}
	return j, p, cancel, true
}

func (s *Server) samples(w http.ResponseWriter, r *http.Request) int {
	j, p, cancel, ok := accept(s, w, r, s.samplesPlan)
	if !ok {
		return 0
	}
	defer cancel()
	resp := SamplesResponse{Model: s.id, Sampler: p.sampler.Name(), Steps: len(p.ts), Eta: p.eta, Guidance: p.guidance, Seed: p.seed}
	if !p.interval.Everywhere() {
		resp.GuidanceInterval = p.interval.String()
	}
	if p.auto {
		resp.Guide = s.guideID
	}
	acceptHdr := r.Header.Get("Accept")
	if strings.Contains(acceptHdr, "text/event-stream") {
		return s.stream(w, j, p, resp)
	}
	var images []Image
	err := j.wait(func(f finished) error {
		im, err := s.image(p, f)
		images = append(images, im)
		return err
	}, nil)
	if err != nil {
		s.failed(w, j.ctx, err)
		return 0
	}
	s.answering(w)
	sort.Slice(images, func(a, b int) bool { return images[a].Index < images[b].Index })
	resp.Images = images
	if r.URL.Query().Get("format") == "zip" || strings.Contains(acceptHdr, "application/zip") {
		return s.zip(w, resp)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	return len(images)
}

// zip answers a zip of the PNGs and the manifest sample writes, so that an
// unpacked answer is a sample directory eval reads.
func (s *Server) zip(w http.ResponseWriter, resp SamplesResponse) int {
	m := infer.Manifest{Model: filepath.Base(s.o.Model), ModelHash: s.hash, Sampler: resp.Sampler, Steps: resp.Steps, Eta: resp.Eta,
		Guidance: resp.Guidance, GuidanceInterval: resp.GuidanceInterval, Seed: resp.Seed, Device: s.session.Device, Backend: s.session.Backend, Complete: true, Images: []infer.ManifestEntry{}}
	if resp.Guide != "" {
		m.Guide, m.GuideHash = filepath.Base(s.o.Guide), s.guideHash
	}
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, im := range resp.Images {
		m.Images = append(m.Images, infer.ManifestEntry{Index: im.Index, Class: im.Class, ClassName: im.ClassName, Seed: im.Seed, File: im.File})
		f, err := z.CreateHeader(&zip.FileHeader{Name: im.File, Method: zip.Store})
		if err == nil {
			_, err = f.Write(im.PNG)
		}
		if err != nil {
			s.refuse(w, err)
			return 0
		}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if f, err := z.Create("manifest.json"); err == nil {
		f.Write(append(mb, '\n'))
	}
	if err := z.Close(); err != nil {
		s.refuse(w, err)
		return 0
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="samples.zip"`)
	w.Write(b.Bytes())
	return len(resp.Images)
}

// stream answers server-sent events: progress as steps are made, each
// image as it finishes, then done (or error).
func (s *Server) stream(w http.ResponseWriter, j *job, p *plan, resp SamplesResponse) int {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(event string, v any) {
		s.answering(w)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, compact(v))
		if fl != nil {
			fl.Flush()
		}
	}
	send("start", resp)
	count, last := 0, -1
	err := j.wait(func(f finished) error {
		im, err := s.image(p, f)
		if err != nil {
			return err
		}
		count++
		send("image", im)
		return nil
	}, func(done, total int) {
		if done != last {
			last = done
			send("progress", map[string]int{"steps_done": done, "steps_total": total, "images_done": count, "images_total": len(p.indices)})
		}
	})
	if err != nil {
		s.failed(headless{w}, j.ctx, err)
		send("error", map[string]string{"message": err.Error()})
		return count
	}
	send("done", map[string]int{"images": count})
	return count
}

// answering gives the client WriteTimeout from now to take what is
// written next: a client that stops reading releases its handler then.
func (s *Server) answering(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
}

// headless swallows what failed writes once a stream has begun (its status
// is sent already); only the metrics count.
type headless struct{ http.ResponseWriter }

func (headless) WriteHeader(int)             {}
func (headless) Write(b []byte) (int, error) { return len(b), nil }

// OpenAIResponse answers POST /v1/images/generations.
type OpenAIResponse struct {
	Created      int64  `json:"created"`
	OutputFormat string `json:"output_format"` // png
	Size         string `json:"size"`          // WxH
	Data         []struct {
		B64JSON string `json:"b64_json"`
	} `json:"data"`
}

func (s *Server) generations(w http.ResponseWriter, r *http.Request) int {
	j, p, cancel, ok := accept(s, w, r, s.openAIPlan)
	if !ok {
		return 0
	}
	defer cancel()
	pngs := make([][]byte, len(p.indices))
	err := j.wait(func(f finished) error {
		im, err := s.image(p, f)
		pngs[f.pos] = im.PNG
		return err
	}, nil)
	if err != nil {
		s.failed(w, j.ctx, err)
		return 0
	}
	s.answering(w)
	resp := OpenAIResponse{Created: time.Now().Unix(), OutputFormat: "png", Size: fmt.Sprintf("%dx%d", s.info.ImageSize, s.info.ImageSize)}
	resp.Data = make([]struct {
		B64JSON string `json:"b64_json"`
	}, len(pngs))
	for i, b := range pngs {
		resp.Data[i].B64JSON = base64.StdEncoding.EncodeToString(b)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	return len(pngs)
}
