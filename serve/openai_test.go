package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// errorBody is OpenAI's error object, with every field required to be
// present (param and code may be null).
type errorBody struct {
	Error struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
	} `json:"error"`
}

// checkError asserts that b is OpenAI's error object with this type,
// param ("" for null) and code, and returns its message.
func checkError(t *testing.T, what string, b []byte, typ, param, code string) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, b)
	}
	var raw map[string]map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Errorf("%s: the error object has no %q: %s", what, k, b)
		}
	}
	if e.Error.Message == nil || *e.Error.Message == "" {
		t.Errorf("%s: no message: %s", what, b)
	}
	if e.Error.Type == nil || *e.Error.Type != typ {
		t.Errorf("%s: type %s, want %q", what, b, typ)
	}
	wantParam := "null"
	if param != "" {
		wantParam = `"` + param + `"`
	}
	if got := string(raw["error"]["param"]); got != wantParam {
		t.Errorf("%s: param %s in %s, want %s", what, got, b, wantParam)
	}
	if got := string(raw["error"]["code"]); got != `"`+code+`"` {
		t.Errorf("%s: code %s in %s, want %q (a string)", what, got, b, code)
	}
	if e.Error.Message == nil {
		return ""
	}
	return *e.Error.Message
}

// TestOpenAIErrors: every error answer, whatever refused it (a route, the
// guard, the token, the decoder, a field, the queue), is OpenAI's error
// object, naming the JSON field in param and never a Go type or a server
// flag in its message.
func TestOpenAIErrors(t *testing.T) {
	ts := start(t, tinyModel(t, nil, nil), Options{Token: "sesame"}, time.Minute)
	auth := []string{"Authorization", "Bearer sesame"}
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		typ, param, code, want   string
	}{
		{"no token", "GET", "/v1/models", "", nil, 401, "invalid_request_error", "", "missing_api_key", "needs a bearer token"},
		{"wrong token", "GET", "/v1/models", "", []string{"Authorization", "Bearer open"}, 401, "invalid_request_error", "", "invalid_api_key", "not the server's"},
		{"unknown path", "GET", "/v1/nothing", "", auth, 404, "invalid_request_error", "", "unknown_url", "no such endpoint"},
		{"unknown model", "GET", "/v1/models/dall-e-3", "", auth, 404, "invalid_request_error", "model", "model_not_found", `"tiny"`},
		{"wrong method", "DELETE", "/v1/samples", "", auth, 405, "invalid_request_error", "", "method_not_allowed", "takes POST"},
		{"GET a POST path", "GET", "/v1/images/generations", "", auth, 405, "invalid_request_error", "", "method_not_allowed", "takes POST"},
		{"prompt a number", "POST", "/v1/images/generations", `{"prompt": 7}`, auth, 400, "invalid_request_error", "prompt", "invalid_value", "prompt: a number where a string is expected"},
		{"n a string", "POST", "/v1/samples", `{"n": "3"}`, auth, 400, "invalid_request_error", "n", "invalid_value", "n: a string where an integer is expected"},
		{"unknown field", "POST", "/v1/samples", `{"cfg": 2}`, auth, 400, "invalid_request_error", "cfg", "unknown_parameter", "cfg: not a field"},
		{"eta past float64", "POST", "/v1/samples", `{"eta": 1e999}`, auth, 400, "invalid_request_error", "eta", "invalid_value", "eta 1e999: out of the range"},
		{"seed negative", "POST", "/v1/samples", `{"seed": -1}`, auth, 400, "invalid_request_error", "seed", "invalid_value", "seed -1: out of the range of a non-negative integer"},
		{"not JSON", "POST", "/v1/samples", `{"n": `, auth, 400, "invalid_request_error", "", "invalid_json", "body"},
		{"an array", "POST", "/v1/samples", `[1]`, auth, 400, "invalid_request_error", "", "invalid_json", "a JSON object is expected"},
		{"steps", "POST", "/v1/samples", `{"steps": 5000}`, auth, 400, "invalid_request_error", "steps", "invalid_value", "steps 5000"},
		{"n over the limit", "POST", "/v1/samples", `{"n": 2000}`, auth, 400, "invalid_request_error", "n", "invalid_value", "the server's limit"},
		{"size", "POST", "/v1/images/generations", `{"prompt": "1", "size": "1024x1024"}`, auth, 400, "invalid_request_error", "size", "invalid_value", "8x8"},
		{"quality", "POST", "/v1/images/generations", `{"prompt": "1", "quality": "ultra"}`, auth, 400, "invalid_request_error", "quality", "invalid_value", "not one of"},
		{"url", "POST", "/v1/images/generations", `{"prompt": "1", "response_format": "url"}`, auth, 400, "invalid_request_error", "response_format", "invalid_value", "b64_json"},
		{"stream", "POST", "/v1/images/generations", `{"prompt": "1", "stream": true}`, auth, 400, "invalid_request_error", "stream", "invalid_value", "/v1/samples"},
		{"prompt", "POST", "/v1/images/generations", `{"prompt": "a cat"}`, auth, 400, "invalid_request_error", "prompt", "invalid_value", "not a class"},
		{"content type", "POST", "/v1/samples", `{}`, append([]string{"Content-Type", "text/plain"}, auth...), 415, "invalid_request_error", "", "unsupported_media_type", "application/json"},
		{"origin", "GET", "/v1/models", "", append([]string{"Origin", "https://evil.example"}, auth...), 403, "invalid_request_error", "", "forbidden_origin", "cross-origin"},
	}
	for _, c := range cases {
		code, b, h := ts.do(t, c.method, c.path, c.body, c.header...)
		if code != c.status {
			t.Errorf("%s: status %d %s; want %d", c.name, code, b, c.status)
			continue
		}
		if ct := h.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
		msg := checkError(t, c.name, b, c.typ, c.param, c.code)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: message %q does not say %q", c.name, msg, c.want)
		}
		for _, leak := range []string{"Go struct", "json: ", "--max", "OpenAIRequest", "SamplesRequest"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: message %q speaks of %q", c.name, msg, leak)
			}
		}
		if c.status == 405 && h.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", c.name, h.Get("Allow"))
		}
	}
}

// TestOpenAIRequestFields: the fields OpenAI's own examples send (quality,
// style, user, model, size "auto" or the model's, output_format png,
// background, moderation, output_compression) are taken, and the answer
// is the same PNG as a request without them; GET /v1/models/{id} answers
// the model.
func TestOpenAIRequestFields(t *testing.T) {
	ts := start(t, tinyModel(t, nil, nil), Options{}, time.Minute)
	plain := `{"prompt": "2", "steps": 3, "seed": 5}`
	full := `{"prompt": "2", "steps": 3, "seed": 5, "model": "dall-e-3", "quality": "hd", "style": "natural", "user": "u-1",
		"size": "auto", "response_format": "b64_json", "output_format": "png", "background": "opaque", "moderation": "low",
		"output_compression": 80, "partial_images": 0, "stream": false}`
	var want []byte
	for i, body := range []string{plain, full, strings.Replace(plain, `"steps"`, `"size": "8x8", "steps"`, 1)} {
		code, b, _ := ts.do(t, "POST", "/v1/images/generations", body)
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, b)
		}
		var r OpenAIResponse
		if err := json.Unmarshal(b, &r); err != nil || len(r.Data) != 1 || r.Created == 0 || r.OutputFormat != "png" || r.Size != "8x8" {
			t.Fatalf("request %d: answer %s (%v)", i, b, err)
		}
		img, err := base64.StdEncoding.DecodeString(r.Data[0].B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(img)); err != nil {
			t.Fatalf("request %d: not a PNG: %v", i, err)
		}
		if i == 0 {
			want = img
		} else if !bytes.Equal(img, want) {
			t.Errorf("request %d: the ignored fields changed the image", i)
		}
	}
	code, b, _ := ts.do(t, "GET", "/v1/models/tiny", "")
	var m ModelInfo
	if err := json.Unmarshal(b, &m); code != 200 || err != nil || m.ID != "tiny" || m.Object != "model" || m.OwnedBy == "" || m.Created == 0 {
		t.Errorf("GET /v1/models/tiny: %d %s (%v)", code, b, err)
	}
	if m.Defaults.Guidance != 1 || m.Defaults.Sampler != "ddim" || m.Defaults.Steps != 20 || m.Defaults.Seed != 1 {
		t.Errorf("defaults %+v: want sample's (ddim, 20 steps, guidance 1 for a model with a null class, seed 1)", m.Defaults)
	}
}

// TestFailureAnswers: each way a request can fail after it was read maps
// to its own status and code (handler-level, with a recorder): the
// queue's refusal (429 with Retry-After), the request timeout (504), a
// non-finite image (500 non_finite), an image that did not encode (500
// internal_error: the request fails rather than answer an empty image)
// and a denoiser error (500 denoiser_error).
func TestFailureAnswers(t *testing.T) {
	s := &Server{metrics: newMetrics(), o: Options{RequestTimeout: time.Minute}}
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int
		code   string
	}{
		{"queue full", func(w http.ResponseWriter) { s.refuse(w, &queueFullError{limit: 8}) }, 429, codeQueueFull},
		{"timeout", func(w http.ResponseWriter) { s.failed(w, context.Background(), context.DeadlineExceeded) }, 504, codeTimeout},
		{"non-finite", func(w http.ResponseWriter) {
			s.failed(w, context.Background(), &imageError{index: 3, class: 1, err: errors.New("NaN")})
		}, 500, codeNonFinite},
		{"encode", func(w http.ResponseWriter) {
			s.failed(w, context.Background(), &encodeError{errors.New("image 3: png: short write")})
		}, 500, codeInternal},
		{"denoiser", func(w http.ResponseWriter) { s.failed(w, context.Background(), errors.New("session: run failed")) }, 500, codeDenoiser},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		c.answer(rec)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d", c.name, rec.Code, c.status)
		}
		typ := "server_error"
		if c.status == 429 {
			typ = "rate_limit_error"
		}
		checkError(t, c.name, rec.Body.Bytes(), typ, "", c.code)
		if c.status == 429 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", c.name)
		}
	}
}
