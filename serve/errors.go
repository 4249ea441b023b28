package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/condiff/condiff/internal/field"
)

// Every answer that is not a success carries one error object, the shape
// OpenAI's API gives (its SDKs read .message, .type, .param and .code):
//
//	{"error": {"message": "...", "type": "invalid_request_error", "param": "n", "code": "invalid_value"}}
//
// type is invalid_request_error for what the client can change (4xx),
// rate_limit_error for a full queue (429) and server_error for the
// server's failures (5xx); param names the request's JSON field when one
// field is at fault (else null); code is a stable word for the error.

// apiError is an error answer.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// The codes of the error answers.
const (
	codeInvalidValue     = "invalid_value"     // a field's value (param names it)
	codeUnknownParameter = "unknown_parameter" // a field the endpoint does not take
	codeInvalidJSON      = "invalid_json"
	codeMissingKey       = "missing_api_key"
	codeInvalidKey       = "invalid_api_key"
	codeUnknownURL       = "unknown_url"
	codeMethod           = "method_not_allowed"
	codeModelNotFound    = "model_not_found"
	codeBodyTooLarge     = "body_too_large"
	codeBodyTimeout      = "body_timeout"
	codeContentType      = "unsupported_media_type"
	codeForbiddenHost    = "forbidden_host"
	codeForbiddenOrigin  = "forbidden_origin"
	codeQueueFull        = "queue_full"
	codeTimeout          = "timeout"
	codeNonFinite        = "non_finite"
	codeDenoiser         = "denoiser_error"
	codeInternal         = "internal_error"
)

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// writeError answers e.
func writeError(w http.ResponseWriter, e apiError) {
	if e.Type == "" {
		e.Type = errorType(e.Status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(append(compact(map[string]any{"error": e}), '\n'))
}

// httpError answers an error that names no field.
func httpError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, apiError{Status: status, Message: msg, Code: &code})
}

// badRequest is an error the client caused: answered 400, naming the
// request's JSON field (param) when one field is at fault.
type badRequest struct {
	param, code, msg string
}

func (e *badRequest) Error() string { return e.msg }

// bad is a 400 for the value of the JSON field param ("": none).
func bad(param, format string, a ...any) error {
	return &badRequest{param: param, code: codeInvalidValue, msg: fmt.Sprintf(format, a...)}
}

// jsonFields names the request's JSON fields for the libraries' field
// errors.
var jsonFields = map[string]string{"Sampler": "sampler", "Steps": "steps", "Eta": "eta", "Guidance": "guidance",
	"N": "n", "Class": "class", "Interval": "guidance_interval"}

// badField is a 400 for a library's refusal of a request's value, in the
// request's own terms: its message names the JSON field, and so does
// param.
func badField(err error) error {
	var fe *field.Error
	param := ""
	if errors.As(err, &fe) {
		param = jsonFields[fe.Field]
		if param != "" {
			return &badRequest{param: param, code: codeInvalidValue, msg: fe.Named(param)}
		}
	}
	return &badRequest{param: param, code: codeInvalidValue, msg: err.Error()}
}

// decode reads one JSON value of a request body strictly: unknown fields
// and trailing data are refused, in the request's own terms (the field,
// what it held, what it takes), never Go's.
func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return &badRequest{code: codeInvalidJSON, msg: "body: data after the JSON value"}
		}
		return nil
	}
	var tooBig *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &tooBig) || errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case errors.As(err, &typ):
		want := map[string]string{"string": "a string", "int": "an integer", "uint64": "a non-negative integer",
			"float64": "a number", "bool": "true or false"}[typ.Type.String()]
		if want == "" {
			want = "another type"
		}
		if strings.HasPrefix(typ.Type.String(), "[]") {
			want = "an array"
		}
		if typ.Field == "" {
			return &badRequest{code: codeInvalidJSON, msg: fmt.Sprintf("body: a JSON object is expected, not %s", typ.Value)}
		}
		name := typ.Field[strings.LastIndex(typ.Field, ".")+1:] // Sampling.eta: the JSON field is eta
		if v, ok := strings.CutPrefix(typ.Value, "number "); ok {
			return &badRequest{param: name, code: codeInvalidValue, msg: fmt.Sprintf("%s %s: out of the range of %s", name, v, want)}
		}
		return &badRequest{param: name, code: codeInvalidValue, msg: fmt.Sprintf("%s: %s where %s is expected", name, article(typ.Value), want)}
	case errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &badRequest{code: codeInvalidJSON, msg: fmt.Sprintf("body: not one JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &badRequest{param: name, code: codeUnknownParameter, msg: fmt.Sprintf("%s: not a field of this endpoint (docs/serve.md lists them)", name)}
	}
	return &badRequest{code: codeInvalidJSON, msg: "body: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// article is a JSON value kind as UnmarshalTypeError names it, with its
// article: "a number", "an object".
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// refuse answers an error from reading, planning or admitting a request.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	var br *badRequest
	var full *queueFullError
	switch {
	case errors.As(err, &full):
		s.metrics.errors.WithLabelValues("queue_full").Inc()
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusTooManyRequests, codeQueueFull, full.Error())
	case errors.As(err, &tooBig):
		s.metrics.errors.WithLabelValues("bad_request").Inc()
		httpError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("the body is over the server's limit of %d bytes", s.o.MaxBody))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.metrics.errors.WithLabelValues("timeout").Inc()
		w.Header().Set("Connection", "close")
		httpError(w, http.StatusRequestTimeout, codeBodyTimeout, fmt.Sprintf("the body did not arrive within the server's %s", s.o.ReadTimeout))
	case errors.As(err, &br):
		s.metrics.errors.WithLabelValues("bad_request").Inc()
		e := apiError{Status: http.StatusBadRequest, Message: br.msg, Code: &br.code}
		if br.param != "" {
			e.Param = &br.param
		}
		writeError(w, e)
	default:
		s.metrics.errors.WithLabelValues("internal").Inc()
		httpError(w, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

// statusClientClosed records a request whose client left before its
// answer (nginx's 499): nobody reads it, the log and metrics do.
const statusClientClosed = 499

// failed answers a job that did not finish.
func (s *Server) failed(w http.ResponseWriter, ctx context.Context, err error) {
	var ie *imageError
	var enc *encodeError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		s.metrics.errors.WithLabelValues("timeout").Inc()
		httpError(w, http.StatusGatewayTimeout, codeTimeout, fmt.Sprintf("not finished within the server's request timeout of %s", s.o.RequestTimeout))
	case errors.Is(err, context.Canceled):
		s.metrics.errors.WithLabelValues("cancelled").Inc()
		w.WriteHeader(statusClientClosed)
	case errors.As(err, &ie): // counted by the scheduler, as non_finite
		httpError(w, http.StatusInternalServerError, codeNonFinite, err.Error())
	case errors.As(err, &enc):
		s.metrics.errors.WithLabelValues("internal").Inc()
		httpError(w, http.StatusInternalServerError, codeInternal, err.Error())
	default:
		s.metrics.errors.WithLabelValues("denoiser").Inc()
		httpError(w, http.StatusInternalServerError, codeDenoiser, err.Error())
	}
}

// notFound answers what no route takes: 405 (with Allow) for a path
// served under other methods, 404 for any other.
func (s *Server) notFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			httpError(w, http.StatusMethodNotAllowed, codeMethod, fmt.Sprintf("%s %s: this path takes %s", r.Method, r.URL.Path, strings.Join(allow, " and ")))
			return
		}
		httpError(w, http.StatusNotFound, codeUnknownURL, fmt.Sprintf("%s %s: no such endpoint (GET /v1/models, POST /v1/samples, POST /v1/images/generations; docs/serve.md)", r.Method, r.URL.Path))
	}
}
