package serve

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
