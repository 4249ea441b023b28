//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// openNoFollow refuses a symbolic link at the last path element (the
// Lstat before it closes the common case; this closes the race).
const (
	openNoFollow = syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	openNonBlock = syscall.O_NONBLOCK // a FIFO must not hang the open
)

var errWouldBlock = syscall.EWOULDBLOCK

// lockFile takes flock(2) on f: released when f is closed or the process
// ends, even by kill -9.
func lockFile(f *os.File, how lockHow) error {
	op := syscall.LOCK_EX
	if how&lockShared != 0 {
		op = syscall.LOCK_SH
	}
	if how&lockWait == 0 {
		op |= syscall.LOCK_NB
	}
	return syscall.Flock(int(f.Fd()), op)
}
