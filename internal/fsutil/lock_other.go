//go:build !unix && !windows

package fsutil

import (
	"errors"
	"os"
)

// Platforms without file locks (WebAssembly under a browser or Node): one
// process holds the files, so the lock only refuses links and non-files.
const (
	openNoFollow = 0
	openNonBlock = 0
)

var errWouldBlock = errors.New("would block")

func lockFile(f *os.File, how lockHow) error { return nil }
