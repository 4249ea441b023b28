package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A write that fails half way (as a crash would) leaves the previous file
// intact and no temporary file behind.
func TestWriteAtomicKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	if err := WriteFileAtomic(path, []byte("good")); err != nil {
		t.Fatal(err)
	}
	err := WriteAtomic(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("disk full")
	})
	if err == nil {
		t.Fatal("failed write reported success")
	}
	b, _ := os.ReadFile(path)
	if string(b) != "good" {
		t.Fatalf("file is %q after a failed write", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries in the directory; want only the file", len(entries))
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir, "run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir, "run"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v", err)
	}
	if u, err := Lock(dir, "other"); err != nil {
		t.Fatalf("a lock of another name: %v", err)
	} else {
		u()
	}
	unlock()
	if u, err := Lock(dir, "run"); err != nil {
		t.Fatalf("after unlock: %v", err)
	} else {
		u()
	}
	p := filepath.Join(dir, "checkpoint.gob")
	os.WriteFile(filepath.Join(dir, ".checkpoint.gob.123.tmp"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".other.1.tmp"), nil, 0o644)
	RemoveStaleTemps(p)
	if _, err := os.Stat(filepath.Join(dir, ".checkpoint.gob.123.tmp")); !os.IsNotExist(err) {
		t.Fatal("stale temp file kept")
	}
	if _, err := os.Stat(filepath.Join(dir, ".other.1.tmp")); err != nil {
		t.Fatal("another file's temp removed")
	}
}
