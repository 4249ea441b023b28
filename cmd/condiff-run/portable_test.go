//go:build portable

// The portable builds' tests: they cross-compile condiff-run four ways and
// run three of them (minutes of builds on a cold cache), so they are their
// own suite: `make test-portable` (CI runs it beside `make test`).

package main

import (
	"bytes"
	"debug/elf"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/condiff/condiff/internal/testenv"
)

// The Go backend's deployments: a static condiff-run (CGO_ENABLED=0) for
// any GOOS/GOARCH, and WebAssembly. Each is built once per test run.
var (
	builtMu sync.Mutex
	built   = map[string]string{}
	buildTo string
)

// build compiles condiff-run with CGO_ENABLED=0 for goos/goarch.
func build(t *testing.T, goos, goarch string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	key := goos + "-" + goarch
	if p, ok := built[key]; ok {
		return p
	}
	if buildTo == "" {
		d, err := os.MkdirTemp("", "condiff-portable-")
		if err != nil {
			t.Fatal(err)
		}
		buildTo = d
		cleanups = append(cleanups, func() { os.RemoveAll(d) })
	}
	out := filepath.Join(buildTo, "condiff-run-"+key)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 GOOS=%s GOARCH=%s go build: %v\n%s", goos, goarch, err, b)
	}
	built[key] = out
	return out
}

// sampleArgs: two threes of the shipped model, DDIM 4 steps, one thread.
func sampleArgs(out string) []string {
	model, _ := filepath.Abs("../../assets/pretrained/mnist-cbn.onnx")
	return []string{"sample", "--backend", "go", "--model", model, "--class", "3", "--n", "2", "--steps", "4", "--threads", "1", "--seed", "5", "--out", out}
}

// samePNGs checks that the two directories' samples differ by at most one
// grey level per pixel (the backends' kernels may round differently).
func samePNGs(t *testing.T, what, a, b string) {
	t.Helper()
	for _, f := range []string{"000000_3.png", "000001_3.png"} {
		ia, ib := readPNG(t, filepath.Join(a, f)), readPNG(t, filepath.Join(b, f))
		if ia.Bounds() != ib.Bounds() {
			t.Fatalf("%s: %s is %v, the reference %v", what, f, ia.Bounds(), ib.Bounds())
		}
		bd := ia.Bounds()
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			for x := bd.Min.X; x < bd.Max.X; x++ {
				ra, _, _, _ := ia.At(x, y).RGBA()
				rb, _, _, _ := ib.At(x, y).RGBA()
				if d := int(ra>>8) - int(rb>>8); d > 1 || d < -1 {
					t.Fatalf("%s: %s pixel (%d,%d) is %d, the reference %d", what, f, x, y, ra>>8, rb>>8)
				}
			}
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// reference samples with the static amd64 binary (the Go backend on this
// machine's kernels).
func reference(t *testing.T) string {
	t.Helper()
	bin := build(t, "linux", runtime.GOARCH)
	dir := filepath.Join(t.TempDir(), "ref")
	if out, err := exec.Command(bin, sampleArgs(dir)...).CombinedOutput(); err != nil {
		t.Fatalf("%s sample: %v\n%s", bin, err, out)
	}
	return dir
}

// TestStaticBinary: CGO_ENABLED=0 gives a binary with no dynamic loader
// and no shared libraries, which samples (the Go backend, said on stderr)
// where no ONNX Runtime library exists: in a clean environment whose
// CONDIFF_ORT_LIB points at nothing, and in a chroot holding nothing but
// the binary and the model.
func TestStaticBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the static ELF check is for linux")
	}
	bin := build(t, "linux", runtime.GOARCH)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", bin, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v", bin, libs)
	}
	f.Close()

	dir := filepath.Join(t.TempDir(), "auto")
	args := sampleArgs(dir)
	args[2] = "auto" // --backend auto
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"CONDIFF_ORT_LIB=/nonexistent/libonnxruntime.so.1", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("static sample: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "backend: Go backend") {
		t.Errorf("--backend auto without ONNX Runtime did not say it used the Go backend:\n%s", out)
	}

	root := t.TempDir()
	copyFile(t, bin, filepath.Join(root, "work", "condiff-run"))
	copyFile(t, "../../assets/pretrained/mnist-cbn.onnx", filepath.Join(root, "work", "mnist-cbn.onnx"))
	if out := sampleInChroot(t, root); !strings.Contains(out, "Go backend") {
		t.Errorf("in a root without ONNX Runtime, auto did not say it used the Go backend:\n%s", out)
	}
}

// TestArm64UnderQemu runs the linux/arm64 binary (the Go kernels: no AVX2
// there) under qemu-user and compares its samples with this machine's.
func TestArm64UnderQemu(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		if testenv.CI() {
			t.Fatal("qemu-aarch64 is missing; CI must install qemu-user (scripts/setup.sh)")
		}
		t.Skip("qemu-aarch64 is missing; run `make setup`")
	}
	bin := build(t, "linux", "arm64")
	dir := filepath.Join(t.TempDir(), "arm64")
	if out, err := exec.Command(qemu, append([]string{bin}, sampleArgs(dir)...)...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-aarch64 condiff-run sample: %v\n%s", err, out)
	}
	samePNGs(t, "linux/arm64 under qemu", dir, reference(t))
}

// TestWasmUnderNode runs the js/wasm build under Node (Go's
// wasm_exec_node.js gives it the file system) and compares its samples
// with this machine's.
func TestWasmUnderNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if testenv.CI() {
			t.Fatal("node is missing; CI must install nodejs (scripts/setup.sh)")
		}
		t.Skip("node is missing; run `make setup`")
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	execJS := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec_node.js")
	wasm := build(t, "js", "wasm")
	dir := filepath.Join(t.TempDir(), "wasm")
	if out, err := exec.Command(node, append([]string{execJS, wasm}, sampleArgs(dir)...)...).CombinedOutput(); err != nil {
		t.Fatalf("node condiff-run.wasm sample: %v\n%s", err, out)
	}
	samePNGs(t, "js/wasm under Node", dir, reference(t))
}

// TestCrossBuilds: condiff-run builds, without cgo, for the desktop and
// server platforms that have no ONNX Runtime library at hand.
func TestCrossBuilds(t *testing.T) {
	for _, p := range [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "arm64"}, {"windows", "amd64"}, {"js", "wasm"}} {
		bin := build(t, p[0], p[1])
		if st, err := os.Stat(bin); err != nil || st.Size() < 1<<20 {
			t.Errorf("%s/%s: %v", p[0], p[1], err)
		}
	}
}

// TestWebPageInBrowser serves the in-browser sampler (docs/web/index.html,
// cmd/condiff-web built for js/wasm, the shipped MNIST model) as static
// files, has headless Chromium sample four threes on it, and compares the
// images with this machine's Go backend.
func TestWebPageInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "condiff.wasm"), "../condiff-web")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build ../condiff-web: %v\n%s", err, b)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../../docs/web/index.html", filepath.Join(dir, "index.html"))
	copyFile(t, filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"), filepath.Join(dir, "wasm_exec.js"))
	copyFile(t, "../../assets/pretrained/mnist-cbn.onnx", filepath.Join(dir, "mnist-cbn.onnx"))
	copyFile(t, "../../assets/pretrained/mnist-cbn.sampling.json", filepath.Join(dir, "mnist-cbn.sampling.json")) // as make release does
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()

	ctx := headless(t, browser, 5*time.Minute)
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/index.html"),
		chromedp.WaitEnabled(chromedp.ID("go")),
		chromedp.SetValue(chromedp.ID("class"), "3"),
		chromedp.SetValue(chromedp.ID("n"), "4"),
		chromedp.SetValue(chromedp.ID("steps"), "4"),
		chromedp.SetValue(chromedp.ID("seed"), "5"),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-done="1"]`)),
	)
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatalf("the page in Chromium: %v (status %q)", err, status)
	}
	srcs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#images img")].map(i => i.src)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 4 {
		t.Fatalf("the page shows %d images, want 4 (status %q)", len(srcs), status)
	}
	// The same four threes from this machine's Go backend (the model's
	// defaults, from its sidecar, as the page's).
	ref := filepath.Join(t.TempDir(), "ref")
	args := sampleArgs(ref)
	for i, a := range args {
		if a == "2" && args[i-1] == "--n" {
			args[i] = "4"
		}
	}
	if out, err := exec.Command(build(t, "linux", runtime.GOARCH), args...).CombinedOutput(); err != nil {
		t.Fatalf("reference sample: %v\n%s", err, out)
	}
	page := filepath.Join(t.TempDir(), "page")
	os.MkdirAll(page, 0o755)
	for i, src := range srcs {
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		if err := os.WriteFile(filepath.Join(page, fmt.Sprintf("%06d_3.png", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	samePNGs(t, "the page in Chromium", page, ref)
	t.Logf("page status: %s", status)
}
