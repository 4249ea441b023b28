// Package cli is the command line shared by condiff (every command) and
// condiff-run (the deployment binary: sample, inspect, eval, compare and
// serve, on ONNX Runtime or the pure-Go backend). It parses flags into the
// libraries' typed options, resolves sampling options over a model's
// defaults (infer.Defaults.Resolve) and maps the libraries' field errors
// back to flag names. It must not import train/ or export/: condiff-run
// links it without the training stack (TestOnlyTrainingImportsGorgonia).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/condiff/condiff/infer"
)

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string
	Run     func(args []string) error
}

// Main runs the command named by os.Args[1] and exits with its status:
// 0, 1 on an error (printed as "PROG COMMAND: message"), 2 on a usage error.
func Main(prog, intro string, cmds []Command) {
	usage := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n\nusage: %s COMMAND [flags]\n\ncommands:\n", intro, prog)
		for _, c := range cmds {
			fmt.Fprintf(&b, "  %-17s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintf(&b, "\n'%s COMMAND -h' lists a command's flags.\n", prog)
		return b.String()
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage())
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Print(usage())
		return
	}
	for _, c := range cmds {
		if c.Name != name {
			continue
		}
		if err := c.Run(os.Args[2:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, ErrorLine(prog, name, err))
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "%s: unknown command %q\n\n%s", prog, name, usage())
	os.Exit(2)
}

// Interruptible is a context cancelled by the first Ctrl-C or SIGTERM, so
// the command can stop cleanly (checkpoint, manifest); a second one exits at
// once with status 130.
func Interruptible() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case _, ok := <-ch:
			if !ok { // stop closed it: the command ended, no signal came
				return
			}
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(os.Stderr, "\ninterrupted: stopping cleanly (interrupt again to quit at once)")
		cancel()
		if _, ok := <-ch; ok {
			fmt.Fprintln(os.Stderr, "interrupted twice: quitting")
			os.Exit(130)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
		close(ch)
	}
}

// Parse parses args into fs and refuses positional arguments after the
// flags.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// IsSet reports whether the flag was given on the command line.
func IsSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Session registers the backend flags. Which backend auto chose is said
// on stderr.
func Session(f *Flags) *infer.Options {
	o := &infer.Options{Note: func(s string) { fmt.Fprintf(os.Stderr, "%s: backend: %s\n", f.Name(), s) }}
	f.StringVar(&o.Backend, "backend", infer.BackendAuto, "what runs the model: ort (ONNX Runtime), go (pure Go, no native library) or auto (ONNX Runtime where its library loads, else Go)")
	f.StringVar(&o.Device, "device", "cpu", "execution provider: cpu, cuda, cuda:ID or auto (CUDA if it loads, else CPU); CUDA needs --backend ort or auto")
	f.IntVar(&o.Threads, "threads", 0, "intra-op threads (0: all CPUs)")
	// Back-quotes in a usage string name the flag's value in -h: `path`.
	f.StringVar(&o.Lib, "ort-lib", "", "`path` of the ONNX Runtime shared library (default: $CONDIFF_ORT_LIB, then the cache that make ort fills)")
	f.Sets(map[string]string{
		"backend": "Backend",
		"device":  "Device",
		"threads": "Threads",
		"ort-lib": "Lib",
	})
	return o
}

// DefaultModel is the shipped pretrained model, relative to the repository
// (or to the directory above the binary's bin/).
const DefaultModel = "assets/pretrained/mnist-cbn.onnx"

// FindDefaultModel locates the shipped model: $CONDIFF_MODEL, then beside
// the executable (bin/condiff → ../assets/…, or assets/ next to it), then in
// the repository holding the working directory (the nearest parent with the
// module's go.mod, so `go run` and any subdirectory work).
func FindDefaultModel() (string, error) {
	if p := os.Getenv("CONDIFF_MODEL"); p != "" {
		return p, nil
	}
	var cands []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Dir(exe)
			cands = append(cands, filepath.Join(dir, "..", DefaultModel), filepath.Join(dir, DefaultModel))
		}
	}
	if root := repoRoot(); root != "" {
		cands = append(cands, filepath.Join(root, DefaultModel))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("--model not given and the shipped model %s was not found beside the binary or in the repository (pass --model or set CONDIFF_MODEL)", DefaultModel)
}

// repoRoot is the nearest parent of the working directory whose go.mod
// declares condiff's module, or "".
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/condiff/condiff\n") {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// withDefaultModel fills an empty --model with the shipped model.
func withDefaultModel(model *string) error {
	if *model != "" {
		return nil
	}
	p, err := FindDefaultModel()
	*model = p
	return err
}

// ErrorLine is how a command's error is printed: "PROG COMMAND: message",
// or "PROG: message" when the message already starts with the command's
// own stage ("eval: ..."): every stage prefixes once.
func ErrorLine(prog, cmd string, err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, cmd+": ") {
		return prog + ": " + msg
	}
	return prog + " " + cmd + ": " + msg
}
