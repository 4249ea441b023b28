//go:build windows

package fsutil

import (
	"os"

	"golang.org/x/sys/windows"
)

const (
	openNoFollow = 0 // symbolic links: refused by the Lstat in lock
	openNonBlock = 0
)

var errWouldBlock error = windows.ERROR_LOCK_VIOLATION

// lockFile takes LockFileEx on f's first byte: released when f is closed
// or the process ends.
func lockFile(f *os.File, how lockHow) error {
	var flags uint32
	if how&lockShared == 0 {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if how&lockWait == 0 {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, new(windows.Overlapped))
}
