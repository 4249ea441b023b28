package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/serve"
)

// Serve is `serve`: the sampling service over HTTP (docs/serve.md).
func Serve(args []string) error {
	fs := NewFlags("serve")
	var o serve.Options
	fs.StringVar(&o.Model, "model", "", "denoiser .onnx (default: the shipped "+DefaultModel+")")
	fs.StringVar(&o.Guide, "guide", "", "autoguidance guide denoiser (a smaller, less-trained model of the same data, schedule and classes), loaded once: guided requests use it unless they send \"guide\": false")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; port 0: any free port)")
	fs.IntVar(&o.MaxBatch, "max-batch", 64, "denoiser rows per call, over all requests (a guided image takes two)")
	fs.IntVar(&o.MaxBatchRequests, "max-batch-requests", 0, "requests whose images may share a denoiser call (0: any number; 1: one request at a time)")
	fs.IntVar(&o.MaxN, "max-n", 1024, "images one request may ask for")
	fs.IntVar(&o.MaxQueue, "max-queue", 8192, "images accepted and not yet started, over all requests; past it requests get 429")
	fs.Int64Var(&o.MaxBody, "max-body", 1<<16, "request body bytes")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 10*60e9, "a request not finished by then gets 504 and its images leave the batch")
	fs.IntVar(&o.MaxConns, "max-conns", 512, "open connections; one more is answered 503 and closed (lowered to fit the open-file limit)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 30e9, "an idle keep-alive connection is closed after it")
	fs.DurationVar(&o.ReadTimeout, "read-timeout", 30e9, "time a client has to send a request's headers, then its body")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 30e9, "time a client has to take an answer once it is ready (each event of a stream)")
	origins := fs.String("allow-origin", "", "comma-separated browser origins (https://app.example.com) whose pages may call the API; * for any (default: same-origin only)")
	hosts := fs.String("allow-host", "", "comma-separated Host names answered besides IP addresses, localhost and this machine's name (.example.com: a domain; *: any), e.g. behind a proxy that passes Host")
	drain := fs.Duration("drain-timeout", 60e9, "on SIGTERM or Ctrl-C: how long requests in flight may take to finish")
	tokenFile := fs.String("token-file", "", "file holding the bearer token every API request must carry (default: no authentication)")
	fs.Sets(map[string]string{
		"model": "Model", "guide": "Guide", "listen": "Listen", "max-batch": "MaxBatch", "max-batch-requests": "MaxBatchRequests",
		"max-n": "MaxN", "max-queue": "MaxQueue", "max-body": "MaxBody", "request-timeout": "RequestTimeout",
		"max-conns": "MaxConns", "idle-timeout": "IdleTimeout", "read-timeout": "ReadTimeout", "write-timeout": "WriteTimeout",
		"allow-origin": "AllowOrigins", "allow-host": "AllowHosts",
	})
	so := Session(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := withDefaultModel(&o.Model); err != nil {
		return err
	}
	if *tokenFile != "" {
		b, err := fsutil.ReadSmallFile(*tokenFile, 4096)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if o.Token = strings.TrimSpace(string(b)); o.Token == "" {
			return fmt.Errorf("--token-file %s: empty", *tokenFile)
		}
		// What a client can send in "Authorization: Bearer TOKEN": one
		// line of visible ASCII (RFC 6750's b64token and more, no spaces).
		for _, r := range o.Token {
			if r <= ' ' || r > '~' {
				return fmt.Errorf("--token-file %s: the token holds %q; it must be one line of visible ASCII characters without spaces (no client can send it otherwise)", *tokenFile, r)
			}
		}
	}
	list := func(v string) []string {
		var out []string
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	o.AllowOrigins, o.AllowHosts = list(*origins), list(*hosts)
	if *drain <= 0 {
		return fmt.Errorf("--drain-timeout %s: must be > 0", *drain)
	}
	o.Session = *so
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := serve.New(o)
	if err != nil {
		return fs.Flagged(err)
	}
	defer s.Close()
	ctx, stop := Interruptible()
	defer stop()
	err = s.Run(ctx, *drain, func(addr string) {
		fmt.Fprintf(os.Stderr, "serve: %s on http://%s/ (API: /v1/samples, /v1/images/generations, /v1/models; /metrics, /healthz)\n", o.Model, addr)
	})
	if err != nil {
		return fs.Flagged(err)
	}
	fmt.Fprintln(os.Stderr, "serve: stopped")
	return nil
}
