// Command image writes condiff-run's container image as an OCI image
// layout, without a container daemon: the final stage of deploy/Dockerfile
// is its spec (COPY, USER, EXPOSE, ENV, WORKDIR, ENTRYPOINT, CMD), with the
// file the build stage makes (/out/condiff-run) given by --binary.
//
//	CGO_ENABLED=0 go build -o out/condiff-run ./cmd/condiff-run
//	go run ./image --dockerfile Dockerfile --context .. --binary ../out/condiff-run --out ../out/image
//
// `make image` does both. The layout loads with `skopeo copy
// oci:out/image:condiff-run docker-daemon:condiff-run:latest`, `podman load
// -i`, or `crane push out/image REGISTRY/condiff-run`.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	dockerfile := flag.String("dockerfile", "Dockerfile", "the Dockerfile whose final stage is the image's spec")
	context := flag.String("context", "..", "the build context: COPY sources are relative to it")
	binary := flag.String("binary", "", "the static condiff-run the build stage makes (CGO_ENABLED=0)")
	out := flag.String("out", "", "the OCI image layout to write (a new or empty directory)")
	tag := flag.String("tag", "condiff-run", "the image's name in the layout (org.opencontainers.image.ref.name)")
	arch := flag.String("arch", "amd64", "the binary's architecture")
	bare := flag.Bool("bare", false, "leave out the models (COPY lines other than the binary's)")
	flag.Parse()
	if *binary == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "image: --binary and --out are required")
		os.Exit(2)
	}
	if err := build(*dockerfile, *context, *binary, *out, *tag, *arch, *bare); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// Stage is the final stage of a Dockerfile, as far as this builder takes
// Dockerfiles: FROM scratch, then COPY (from the context, or --from the
// build stage), USER, EXPOSE, ENV, WORKDIR, ENTRYPOINT and CMD (JSON form).
type Stage struct {
	Copies     []Copy
	User       string
	Expose     []string
	Env        []string
	WorkingDir string
	Entrypoint []string
	Cmd        []string
}

// Copy is one COPY line.
type Copy struct {
	From    string   // a build stage ("": the context)
	Sources []string // relative to the context (or the stage's root)
	Dest    string   // a directory when it ends in /
}

// ParseDockerfile reads the final stage of a Dockerfile.
func ParseDockerfile(path string) (*Stage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	cont := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" && cont == "" {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	var st *Stage
	for i, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		at := fmt.Sprintf("%s: line %q", path, l)
		switch strings.ToUpper(word) {
		case "FROM":
			st = nil
			if strings.Fields(rest)[0] == "scratch" {
				st = &Stage{}
			}
			continue
		}
		if st == nil {
			continue // a build stage: what it makes comes in by --binary
		}
		switch strings.ToUpper(word) {
		case "COPY":
			f := strings.Fields(rest)
			c := Copy{}
			if len(f) > 0 && strings.HasPrefix(f[0], "--from=") {
				c.From, f = strings.TrimPrefix(f[0], "--from="), f[1:]
			}
			if len(f) < 2 {
				return nil, fmt.Errorf("%s: COPY needs sources and a destination", at)
			}
			c.Sources, c.Dest = f[:len(f)-1], f[len(f)-1]
			st.Copies = append(st.Copies, c)
		case "USER":
			st.User = rest
		case "EXPOSE":
			st.Expose = append(st.Expose, strings.Fields(rest)...)
		case "ENV":
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				return nil, fmt.Errorf("%s: ENV takes KEY=VALUE", at)
			}
			st.Env = append(st.Env, k+"="+v)
		case "WORKDIR":
			st.WorkingDir = rest
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return nil, fmt.Errorf("%s: %s must be a JSON array: %v", at, word, err)
			}
			if strings.ToUpper(word) == "CMD" {
				st.Cmd = v
			} else {
				st.Entrypoint = v
			}
		default:
			return nil, fmt.Errorf("%s (instruction %d): %s is not taken in the final stage (it is FROM scratch: no shell to RUN)", at, i+1, word)
		}
	}
	if st == nil {
		return nil, fmt.Errorf("%s: the final stage is not FROM scratch", path)
	}
	return st, nil
}

// file is one entry of the image's file system.
type file struct {
	name string // absolute path inside the image
	src  string // the file on this machine
	mode int64
}

func build(dockerfile, context, binary, out, tag, arch string, bare bool) error {
	st, err := ParseDockerfile(dockerfile)
	if err != nil {
		return err
	}
	var bin, models []file
	for _, c := range st.Copies {
		for _, src := range c.Sources {
			dest := c.Dest
			if strings.HasSuffix(dest, "/") {
				dest = path.Join(dest, path.Base(src))
			}
			if c.From != "" {
				bin = append(bin, file{name: dest, src: binary, mode: 0o755})
				continue
			}
			if bare {
				continue
			}
			models = append(models, file{name: dest, src: filepath.Join(context, filepath.FromSlash(src)), mode: 0o644})
		}
	}
	if len(bin) != 1 {
		return fmt.Errorf("%s: the final stage copies %d files from the build stage; want the one binary", dockerfile, len(bin))
	}
	img := empty.Image
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, files := range [][]file{bin, models} { // the models in a layer of their own: a new binary reuses it
		if len(files) == 0 {
			continue
		}
		layer, err := tarLayer(files)
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.User = st.User
	cf.Config.Entrypoint, cf.Config.Cmd = st.Entrypoint, st.Cmd
	cf.Config.Env = st.Env
	cf.Config.WorkingDir = st.WorkingDir
	if len(st.Expose) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range st.Expose {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return fmt.Errorf("--out %s: not empty (an image layout is written into a new or empty directory)", out)
	}
	tmp := out + ".tmp"
	os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return err
	}
	os.Remove(out)
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Fprintf(os.Stderr, "image: %s (%s, %s) in %s\n", tag, d, arch, out)
	return nil
}

// tarLayer is a layer holding files (and their parent directories),
// reproducible: sorted, owned by root, time zero.
func tarLayer(files []file) (v1.Layer, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.name); d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.name, "/"), Mode: f.mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
}
