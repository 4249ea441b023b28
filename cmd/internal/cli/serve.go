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
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; port 0: any free port)")
	fs.IntVar(&o.MaxBatch, "max-batch", 64, "denoiser rows per call, over all requests (a guided image takes two)")
	fs.IntVar(&o.MaxBatchRequests, "max-batch-requests", 0, "requests whose images may share a denoiser call (0: any number; 1: one request at a time)")
	fs.IntVar(&o.MaxN, "max-n", 1024, "images one request may ask for")
	fs.IntVar(&o.MaxQueue, "max-queue", 8192, "images accepted and not yet started, over all requests; past it requests get 429")
	fs.Int64Var(&o.MaxBody, "max-body", 1<<16, "request body bytes")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 10*60e9, "a request not finished by then gets 504 and its images leave the batch")
	drain := fs.Duration("drain-timeout", 60e9, "on SIGTERM or Ctrl-C: how long requests in flight may take to finish")
	tokenFile := fs.String("token-file", "", "file holding the bearer token every API request must carry (default: no authentication)")
	fs.Sets(map[string]string{
		"model": "Model", "listen": "Listen", "max-batch": "MaxBatch", "max-batch-requests": "MaxBatchRequests",
		"max-n": "MaxN", "max-queue": "MaxQueue", "max-body": "MaxBody", "request-timeout": "RequestTimeout",
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
	}
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
