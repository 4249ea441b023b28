package serve

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// What a request must be to reach a handler, checked before anything
// else: a Host the server answers to, no foreign browser origin, a JSON
// body for the POST endpoints. These are the safe defaults of a server on
// a user's machine, which any web page the user opens can send requests to.

// guard refuses requests whose Host or Origin the server does not answer,
// answers the CORS preflight of the allowed origins, and requires a JSON
// content type on POST.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			// A name that resolves to this server but is none of its own:
			// the mark of DNS rebinding, which would let a page on that
			// name read the answers.
			s.metrics.errors.WithLabelValues("forbidden").Inc()
			httpError(w, http.StatusForbidden, codeForbiddenHost, fmt.Sprintf("host %q: the server does not answer to this name (it answers to IP addresses, localhost and the names its operator allows)", r.Host))
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" && !sameOrigin(origin, r.Host) {
			if !s.originAllowed(origin) {
				s.metrics.errors.WithLabelValues("forbidden").Inc()
				httpError(w, http.StatusForbidden, codeForbiddenOrigin, fmt.Sprintf("origin %q: cross-origin requests are refused unless the server's operator allows the origin", origin))
				return
			}
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				hd.Set("Access-Control-Allow-Methods", "GET, POST")
				hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
				hd.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				s.metrics.errors.WithLabelValues("bad_request").Inc()
				httpError(w, http.StatusUnsupportedMediaType, codeContentType, fmt.Sprintf("Content-Type %q: the body must be JSON (Content-Type: application/json)", r.Header.Get("Content-Type")))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// hostAllowed: an IP address (a rebound name is never one), localhost and
// its subdomains, the machine's own name, and the names in AllowHosts
// ("*": any; ".example.com": the domain and its subdomains).
func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true // HTTP/1.0 without Host: no browser sends that
	}
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") || host == s.hostname {
		return true
	}
	for _, a := range s.o.AllowHosts {
		a = strings.ToLower(a)
		if a == "*" || a == host || strings.HasPrefix(a, ".") && (host == a[1:] || strings.HasSuffix(host, a)) {
			return true
		}
	}
	return false
}

// sameOrigin: the page was served by this server under this Host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

func (s *Server) originAllowed(origin string) bool {
	for _, a := range s.o.AllowOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// checkOrigins refuses an --allow-origin that no browser sends.
func checkOrigins(origins []string) error {
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" {
			return fmt.Errorf("%q is not an origin (scheme://host[:port], e.g. https://app.example.com) or *", o)
		}
	}
	return nil
}

func thisHost() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return strings.ToLower(h)
}

// limitListener holds at most max connections open; one more is answered
// 503 and closed at once, so that a client past the cap hears why instead
// of waiting, and the server never runs out of file descriptors for its
// own connections (idle ones leave after IdleTimeout).
type limitListener struct {
	net.Listener
	sem     chan struct{}
	refused func()
}

func newLimitListener(ln net.Listener, max int, refused func()) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), refused: refused}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			l.refused()
			go busy(c)
		}
	}
}

// busy answers a connection past the cap.
func busy(c net.Conn) {
	defer c.Close()
	body := `{"error":{"message":"the server holds its limit of open connections; retry later","code":503}}` + "\n"
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
