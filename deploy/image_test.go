package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// builtImage is the image `make image` writes (from deploy/Dockerfile and
// the static binary), read back from its OCI layout, with its file system
// unpacked under root.
type builtImage struct {
	config *v1.ConfigFile
	root   string
	layers int
}

var imageOnce struct {
	img *builtImage
	err string
}

func buildImage(t *testing.T) *builtImage {
	t.Helper()
	if imageOnce.img != nil || imageOnce.err != "" {
		if imageOnce.err != "" {
			t.Fatal(imageOnce.err)
		}
		return imageOnce.img
	}
	dir := filepath.Join(tmpRoot, "layout")
	out, err := exec.Command(imageBin, "--dockerfile", "Dockerfile", "--context", "..", "--binary", runBin, "--out", dir).CombinedOutput()
	if err != nil {
		imageOnce.err = "image: " + err.Error() + "\n" + string(out)
		t.Fatal(imageOnce.err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "condiff-run" {
		t.Fatalf("the layout's index: %+v; want one image named condiff-run", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(tmpRoot, "rootfs")
	rc := mutate.Extract(img)
	defer rc.Close()
	extract(t, rc, root)
	imageOnce.img = &builtImage{config: cf, root: root, layers: len(layers)}
	return imageOnce.img
}

// TestImage: the image holds the static binary and the shipped models
// (with their sampling defaults) and nothing else, runs as a non-root user, and the binary taken out of it
// samples with the model taken out of it; the image's own command (serve)
// answers /healthz. A Dockerfile line the builder does not take is
// refused by name.
func TestImage(t *testing.T) {
	im := buildImage(t)
	c := im.config.Config
	if c.User == "" || c.User == "0" || strings.HasPrefix(c.User, "0:") || strings.HasPrefix(c.User, "root") {
		t.Errorf("the image runs as %q; want a non-root user", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/condiff-run" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || im.config.OS != "linux" {
		t.Errorf("exposed %v, os %q", c.ExposedPorts, im.config.OS)
	}
	if im.layers != 2 {
		t.Errorf("%d layers; want the binary's and the models'", im.layers)
	}
	var files []string
	filepath.Walk(im.root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(im.root, p)
			files = append(files, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	want := "/models/fashion-cbn.onnx /models/fashion-cbn.sampling.json /models/fashion-clf.onnx /models/mnist-cbn.onnx /models/mnist-cbn.sampling.json /models/mnist-clf.onnx /usr/local/bin/condiff-run"
	if strings.Join(files, " ") != want {
		t.Errorf("the image holds %v; want %s", files, want)
	}
	bin := filepath.Join(im.root, "usr/local/bin/condiff-run")
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("the binary: %v %v", st, err)
	}
	out := filepath.Join(t.TempDir(), "sevens")
	b, err := exec.Command(bin, "sample", "--backend", "go", "--threads", "1", "--model", filepath.Join(im.root, "models/mnist-cbn.onnx"),
		"--class", "7", "--n", "2", "--steps", "2", "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("the image's binary: %v\n%s", err, b)
	}
	if pngs, _ := filepath.Glob(filepath.Join(out, "0*_7.png")); len(pngs) != 2 {
		t.Errorf("%d sevens from the image's binary:\n%s", len(pngs), b)
	}
	// A static build asked for ONNX Runtime says what it has instead.
	b, err = exec.Command(bin, "sample", "--backend", "ort", "--model", filepath.Join(im.root, "models/mnist-cbn.onnx"), "--out", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(b), `--backend "ort": this build has no ONNX Runtime`) || !strings.Contains(string(b), "Go backend (go, or auto") {
		t.Errorf("--backend ort on a static build: %v\n%s", err, b)
	}
	// The image's command as it stands, its paths on this machine and a
	// free port instead of 8080.
	args := remap(c.Cmd, map[string]string{"/models": filepath.Join(im.root, "models")})
	s := serve(t, bin, append(args, "--listen", "127.0.0.1:0")...)
	if code, body := s.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz of the image's command: %d %s", code, body)
	}

	bad := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(bad, []byte("FROM scratch\nCOPY --from=build /out/condiff-run /usr/local/bin/\nRUN chmod 755 /usr/local/bin/condiff-run\n"), 0o644)
	b, err = exec.Command(imageBin, "--dockerfile", bad, "--binary", runBin, "--out", filepath.Join(t.TempDir(), "l")).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "RUN is not taken") || !strings.Contains(string(b), bad) {
		t.Errorf("a RUN in the final stage: %v\n%s", err, b)
	}
}
