// Package infer runs exported condiff models and samples the reverse
// diffusion chain with them. Two backends run a model: ONNX Runtime (its
// native library, loaded at run time; CPU and CUDA) and the Go backend
// (infer/goexec: pure Go, no native library). Everything above the network
// (samplers, guidance, shards, manifests, evaluation) is the same for both.
package infer

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/condiff/condiff/internal/field"
)

// ORTVersion is the ONNX Runtime release `make ort` fetches (npm onnxruntime-node).
const ORTVersion = "1.30.0"

// CacheDir is where condiff keeps fetched files: $CONDIFF_CACHE, else
// $XDG_CACHE_HOME/condiff, else ~/.cache/condiff.
func CacheDir() string {
	if d := os.Getenv("CONDIFF_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "condiff")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "condiff")
}

// DefaultLibrary is the cached ONNX Runtime library.
func DefaultLibrary() string {
	return filepath.Join(CacheDir(), "ort", ORTVersion, "libonnxruntime.so.1")
}

// LibraryPath resolves the ONNX Runtime shared library: lib (the Lib
// option), then $CONDIFF_ORT_LIB, then the cache.
func LibraryPath(lib string) (string, error) {
	if lib != "" {
		if _, err := os.Stat(lib); err != nil {
			return "", field.Errorf("infer", "Lib", lib, "no ONNX Runtime library there: %v", err)
		}
		return lib, nil
	}
	p, from := os.Getenv("CONDIFF_ORT_LIB"), "CONDIFF_ORT_LIB"
	if p == "" {
		p, from = DefaultLibrary(), "the cache"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("infer: ONNX Runtime library not found at %s (from %s); run `make ort` to fetch ONNX Runtime %s from npm (onnxruntime-node) into the cache, set CONDIFF_ORT_LIB to a libonnxruntime.so (a CUDA build for CUDA), or sample with --backend go", p, from, ORTVersion)
	}
	return p, nil
}

// checkLibrary looks at an ELF library before the dynamic loader maps it:
// a truncated file passes dlopen's header checks and faults (SIGBUS) when
// a segment past its end is touched, which no error return can catch. The
// file must be a regular ELF file whose program segments and sections all
// lie within it. Other formats (macOS, Windows) are left to their loaders.
func checkLibrary(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != elf.ELFMAG {
		if runtime.GOOS == "linux" {
			return fmt.Errorf("%s is not an ELF shared library", path)
		}
		return nil
	}
	e, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%s is truncated or damaged: its ELF headers do not read (%v); fetch it again", path, err)
	}
	size := uint64(fi.Size())
	for _, p := range e.Progs {
		if p.Off > size || p.Filesz > size-p.Off {
			return fmt.Errorf("%s is truncated: it holds %d bytes, a segment ends at %d (an interrupted download? fetch it again)", path, size, p.Off+p.Filesz)
		}
	}
	for _, s := range e.Sections {
		if s.Type != elf.SHT_NOBITS && (s.Offset > size || s.FileSize > size-s.Offset) {
			return fmt.Errorf("%s is truncated: it holds %d bytes, section %s ends at %d (an interrupted download? fetch it again)", path, size, s.Name, s.Offset+s.FileSize)
		}
	}
	return nil
}
