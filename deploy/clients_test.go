package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The OpenAI Node SDK the tests drive (scripts/setup.sh installs it into
// the cache).
const openaiNodeVersion = "6.30.1"

// tokenServer runs condiff-run serve (the Go backend) over the shipped
// MNIST model with a bearer token.
func tokenServer(t *testing.T) *server {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	return serve(t, runBin, "serve", "--backend", "go", "--threads", "1", "--model", shippedModel, "--listen", "127.0.0.1:0", "--token-file", tok)
}

// TestOpenAIGo drives the server with OpenAI's official Go SDK as its
// README calls it: images.generate with OpenAI's own fields (model,
// quality, style, size auto, user) and condiff's steps beside them; the
// model list and one model; and errors, which the SDK must parse into
// its *openai.Error with message, type, param and code. (The SDK's
// Error() text is only "OpenAI API error: 400 Bad Request", by design: the
// server's words are in the error's Message.)
func TestOpenAIGo(t *testing.T) {
	s := tokenServer(t)
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(s.url+"/v1/"), option.WithAPIKey("s3cret"), option.WithMaxRetries(0))
	resp, err := client.Images.Generate(ctx, openai.ImageGenerateParams{
		Prompt: "7", Model: openai.ImageModelDallE2, N: openai.Int(2), Size: openai.ImageGenerateParamsSizeAuto,
		Quality: openai.ImageGenerateParamsQualityStandard, Style: openai.ImageGenerateParamsStyleNatural,
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON, User: openai.String("u-1"),
	}, option.WithJSONSet("steps", 4))
	if err != nil {
		t.Fatalf("images.generate: %v", err)
	}
	if len(resp.Data) != 2 || resp.Created == 0 {
		t.Fatalf("images.generate: %d images, created %d", len(resp.Data), resp.Created)
	}
	for i, d := range resp.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(strings.NewReader(string(b)))
		if err != nil || img.Bounds().Dx() != 32 {
			t.Errorf("image %d: %v", i, err)
		}
	}
	page, err := client.Models.List(ctx)
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "mnist-cbn" {
		t.Fatalf("models.list: %v %+v", err, page)
	}
	m, err := client.Models.Get(ctx, "mnist-cbn")
	if err != nil || m.ID != "mnist-cbn" || m.OwnedBy == "" || m.Created == 0 {
		t.Fatalf("models.retrieve: %v %+v", err, m)
	}
	wrongKey := openai.NewClient(option.WithBaseURL(s.url+"/v1/"), option.WithAPIKey("nope"), option.WithMaxRetries(0))
	for _, c := range []struct {
		name                     string
		call                     func() error
		status                   int
		typ, param, code, saying string
	}{
		{"unknown model", func() error { _, err := client.Models.Get(ctx, "dall-e-3"); return err }, 404, "invalid_request_error", "model", "model_not_found", `"mnist-cbn"`},
		{"a prompt that is no class", func() error {
			_, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a zebra"})
			return err
		}, 400, "invalid_request_error", "prompt", "invalid_value", "not a class of the model"},
		{"a size the model does not make", func() error {
			_, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "7", Size: openai.ImageGenerateParamsSize1024x1024})
			return err
		}, 400, "invalid_request_error", "size", "invalid_value", "32x32"},
		{"n past the server's limit", func() error {
			_, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "7", N: openai.Int(100000)})
			return err
		}, 400, "invalid_request_error", "n", "invalid_value", "n 100000"},
		{"a wrong key", func() error { _, err := wrongKey.Models.List(ctx); return err }, 401, "invalid_request_error", "", "invalid_api_key", "not the server's"},
	} {
		err := c.call()
		var e *openai.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v is not an *openai.Error", c.name, err)
			continue
		}
		if e.StatusCode != c.status || e.Type != c.typ || e.Param != c.param || e.Code != c.code || !strings.Contains(e.Message, c.saying) {
			t.Errorf("%s: status %d type %q param %q code %q message %q; want %d %q %q %q saying %q",
				c.name, e.StatusCode, e.Type, e.Param, e.Code, e.Message, c.status, c.typ, c.param, c.code, c.saying)
		}
		if !e.JSON.Message.Valid() || !e.JSON.Type.Valid() {
			t.Errorf("%s: the SDK found no message or type in %s", c.name, e.RawJSON())
		}
	}
}

// TestOpenAINode drives the server with OpenAI's official Node SDK (npm
// openai) through deploy/clients/openai-node.cjs, and checks what the SDK
// made of each answer: images, models, and its typed errors (NotFoundError,
// BadRequestError, AuthenticationError) with .type, .param, .code and the
// message set.
func TestOpenAINode(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		need(t, "node (Debian nodejs)")
	}
	cache := os.Getenv("CONDIFF_CACHE")
	if cache == "" {
		dir, _ := os.UserCacheDir()
		cache = filepath.Join(dir, "condiff")
	}
	modules := filepath.Join(cache, "npm", "openai-"+openaiNodeVersion, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "openai", "package.json")); err != nil {
		need(t, "npm openai@"+openaiNodeVersion+" in "+modules)
	}
	s := tokenServer(t)
	cmd := exec.Command("node", "clients/openai-node.cjs", s.url+"/v1", "s3cret", "7")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	type outcome struct {
		OK      json.RawMessage `json:"ok"`
		Error   string          `json:"error"`
		Status  int             `json:"status"`
		Type    *string         `json:"type"`
		Param   *string         `json:"param"`
		Code    *string         `json:"code"`
		Message string          `json:"message"`
	}
	var got map[string]outcome
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("node printed %s: %v", b, err)
	}
	for _, name := range []string{"generate", "list", "retrieve"} {
		if got[name].Error != "" || got[name].OK == nil {
			t.Errorf("%s: %+v", name, got[name])
		}
	}
	var gen struct {
		N   int      `json:"n"`
		PNG []string `json:"png"`
	}
	json.Unmarshal(got["generate"].OK, &gen)
	if gen.N != 2 || len(gen.PNG) != 2 || gen.PNG[0] != "PNG" {
		t.Errorf("images.generate: %s", got["generate"].OK)
	}
	if string(got["retrieve"].OK) != `{"id":"mnist-cbn","object":"model","owned_by":"condiff"}` {
		t.Errorf("models.retrieve: %s", got["retrieve"].OK)
	}
	str := func(p *string) string {
		if p == nil {
			return "<undefined or null>"
		}
		return *p
	}
	for name, want := range map[string][5]string{
		"unknown_model": {"NotFoundError", "invalid_request_error", "model", "model_not_found", "mnist-cbn"},
		"bad_prompt":    {"BadRequestError", "invalid_request_error", "prompt", "invalid_value", "not a class"},
		"bad_size":      {"BadRequestError", "invalid_request_error", "size", "invalid_value", "32x32"},
		"wrong_key":     {"AuthenticationError", "invalid_request_error", "<undefined or null>", "invalid_api_key", "not the server's"},
	} {
		o := got[name]
		if o.Error != want[0] || str(o.Type) != want[1] || str(o.Param) != want[2] || str(o.Code) != want[3] || !strings.Contains(o.Message, want[4]) {
			t.Errorf("%s: %+v (type %s, param %s, code %s); want %v", name, o, str(o.Type), str(o.Param), str(o.Code), want)
		}
	}
}
