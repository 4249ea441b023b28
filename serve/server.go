// Package serve is condiff's sampling service: one model, opened once,
// behind an HTTP API (condiff-run serve). Every request becomes images
// that a single scheduler packs, with the images of every other request,
// into each denoiser call (continuous batching): each image keeps its own
// timestep, sampler state, guidance and noise stream, so what the server
// returns is bit-identical to what `sample` writes for the same model,
// seed, index, class and sampling options.
package serve

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	shown     Defaults       // defs resolved, as /v1/models shows them
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
	shown, err := shownDefaults(defs, sess.Info, sch)
	if err != nil {
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
	sched := newScheduler(sess, D, o.MaxBatch, o.MaxBatchRequests, o.MaxQueue, m)
	if guide != nil {
		sched.batch.Guide = guide
	}
	return &Server{o: o, session: sess, defs: defs, shown: shown, guide: guide, guideID: guideID, guideHash: guideHash, info: sess.Info, sch: sch, hash: hash, metrics: m, log: o.Log,
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
