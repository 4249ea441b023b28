package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// block is one fenced code block of a Markdown file.
type block struct {
	lang  string
	lines []string
}

func codeBlocks(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	for _, l := range strings.Split(string(b), "\n") {
		if lang, ok := strings.CutPrefix(strings.TrimSpace(l), "```"); ok {
			if cur == nil {
				cur = &block{lang: lang}
			} else {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, l)
		}
	}
	return out
}

// command is a shell line of a block without its trailing comment.
func command(line string) string {
	if i := strings.Index(line, "  #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// indent is the width of a block's common indentation (a block inside a
// list item is indented with it).
func dedent(lines []string) string {
	w := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); w < 0 || n < w {
			w = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= w && w > 0 {
			l = l[w:]
		}
		out[i] = l
	}
	return strings.Join(out, "\n")
}

// TestServeDocs runs what docs/serve.md and the README's Serve section tell
// a user to type, verbatim but for the server's address: every curl line
// against a running server (each must succeed and answer no error), the
// condiff-run lines (serve's flags checked, the others run), the
// Prometheus scrape config (its token file opens /metrics), and every
// deploy/ file and make target the docs name exists.
func TestServeDocs(t *testing.T) {
	s := serve(t, runBin, "serve", "--backend", "go", "--threads", "2", "--model", shippedModel, "--listen", "127.0.0.1:0")
	host := strings.TrimPrefix(s.url, "http://")
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(mustAbs(t, ".."), "assets"), filepath.Join(work, "assets")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Dir(runBin) + string(os.PathListSeparator) + os.Getenv("PATH")
	ran := 0
	sh := func(where, line string) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s: %.1fs: %s", where, time.Since(start).Seconds(), line) }()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(line, "localhost:8080", host))
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+path)
		b, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: %s: %v\n%.600s", where, line, err, b)
		}
		ran++
	}
	var readme []block
	all := codeBlocks(t, "../README.md")
	for _, b := range all {
		for _, l := range b.lines {
			if strings.HasPrefix(strings.TrimSpace(l), "condiff-run serve") {
				readme = append(readme, b)
				break
			}
		}
	}
	docs := map[string][]block{"docs/serve.md": codeBlocks(t, "../docs/serve.md"), "README.md": readme}
	for file, blocks := range docs {
		for _, b := range blocks {
			if b.lang != "" && b.lang != "sh" {
				continue
			}
			for _, l := range b.lines {
				c := command(l)
				switch {
				case strings.HasPrefix(c, "curl "):
					sh(file, c)
				case strings.HasPrefix(c, "condiff-run serve"):
					checkArgs(t, file, strings.Fields(c)[1:])
				case strings.HasPrefix(c, "condiff-run "):
					sh(file, c+" --backend go")
				}
			}
		}
	}
	if ran < 5 {
		t.Errorf("%d lines of the docs ran; the docs' curl examples were not found", ran)
	}

	// The scrape config: Prometheus reads the token from its file.
	var scrape struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			Authorization struct {
				Type            string `json:"type"`
				CredentialsFile string `json:"credentials_file"`
			} `json:"authorization"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	found := false
	for _, b := range docs["docs/serve.md"] {
		if b.lang == "yaml" && strings.Contains(dedent(b.lines), "scrape_configs") {
			found = true
			if err := yaml.UnmarshalStrict([]byte(dedent(b.lines)), &scrape); err != nil {
				t.Fatalf("the scrape config: %v", err)
			}
		}
	}
	if !found || len(scrape.ScrapeConfigs) != 1 || scrape.ScrapeConfigs[0].Authorization.Type != "Bearer" || scrape.ScrapeConfigs[0].Authorization.CredentialsFile == "" {
		t.Fatalf("docs/serve.md: no scrape config with a bearer credentials_file: %+v", scrape)
	}
	tok := tokenServer(t)
	if code, _ := tok.get(t, "/metrics"); code != 401 {
		t.Errorf("/metrics without the token: %d", code)
	}
	if code, b := tok.get(t, "/metrics", "Authorization", "Bearer s3cret"); code != 200 || !strings.Contains(string(b), "condiff_queue_images") {
		t.Errorf("/metrics with the token file's token: %d", code)
	}

	// Every deploy/ file and make target the docs name exists.
	for _, f := range []string{"../docs/serve.md", "../README.md"} {
		b, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`deploy/[A-Za-z0-9_./-]+[A-Za-z0-9]`).FindAllString(string(b), -1) {
			if _, err := os.Stat(filepath.Join("..", m)); err != nil {
				t.Errorf("%s names %s, which does not exist", f, m)
			}
		}
		for _, m := range regexp.MustCompile("`make ([a-z-]+)`|\nmake ([a-z-]+)").FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[2]
			if out, err := exec.Command("make", "-C", "..", "-n", target).CombinedOutput(); err != nil {
				t.Errorf("%s names make %s: %v\n%s", f, target, err, out)
			}
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
