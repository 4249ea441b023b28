//go:build unix

package serve

import "syscall"

// openFiles is the process's limit of open file descriptors (0: unknown).
func openFiles() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
