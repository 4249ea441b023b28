// Package fsutil writes files atomically: a temporary file in the target's
// directory, synced, then renamed, so a reader never sees a partial file.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// WriteAtomic writes path with the output of write.
func WriteAtomic(path string, write func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic writes b to path atomically.
func WriteFileAtomic(path string, b []byte) error {
	return WriteAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("in use by another condiff process")

// Lock takes an exclusive, advisory lock named name in dir (the file
// dir/.name.lock), so that two processes never write the same outputs. The
// lock ends with the process (even with kill -9) or when the returned
// function is called. Another holder makes it fail at once with ErrLocked.
//
// The lock file is opened without following a symbolic link (a link planted
// there would have the PID written through it into its target) and must be
// a regular file.
func Lock(dir, name string) (unlock func(), err error) {
	return lock(dir, name, lockExclusive)
}

// LockShared is Lock for holders that may work side by side (shards of one
// sampling plan): it fails only while an exclusive holder has the lock.
func LockShared(dir, name string) (unlock func(), err error) {
	return lock(dir, name, lockShared)
}

// LockWait is Lock that waits for the other holder to let go: for short
// critical sections only.
func LockWait(dir, name string) (unlock func(), err error) {
	return lock(dir, name, lockExclusive|lockWait)
}

type lockHow int

const (
	lockExclusive lockHow = 1 << iota
	lockShared
	lockWait
)

func lock(dir, name string, how lockHow) (unlock func(), err error) {
	path := filepath.Join(dir, "."+name+".lock")
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("lock %s: is a symbolic link; remove it (condiff does not write through links)", path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|openNoFollow, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("lock %s: is a symbolic link; remove it (condiff does not write through links)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock %s: not a regular file; remove it", path)
	}
	if err := lockFile(f, how); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%s is %w (lock %s)", dir, ErrLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if how&lockExclusive != 0 { // one holder: it says who it is
		f.Truncate(0)
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() { f.Close() }, nil
}

// RemoveStaleTemps deletes the temporary files WriteAtomic leaves for path
// when the process is killed between creating and renaming one. Call it
// while holding the directory's lock, so no live writer is using them.
func RemoveStaleTemps(path string) {
	olds, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp"))
	for _, f := range olds {
		os.Remove(f)
	}
}

// ReadSmallFile reads a regular file of at most max bytes; anything else
// (a directory, a FIFO, a device, a larger file) is refused before it is
// read, so a file that lies about its size cannot hang or exhaust the
// process.
func ReadSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s holds %d bytes, over the %d this file may hold", path, st.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s grew past %d bytes while read", path, max)
	}
	return b, nil
}
