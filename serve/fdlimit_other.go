//go:build !unix

package serve

// openFiles is the process's limit of open file descriptors (0: unknown).
func openFiles() int { return 0 }
