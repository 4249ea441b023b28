package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPlainLines: written to a buffer (not a terminal), progress is plain
// lines at most once per Interval plus one at the end, with no carriage
// returns or escape codes.
func TestPlainLines(t *testing.T) {
	old := Interval
	Interval = time.Hour
	defer func() { Interval = old }()
	var buf bytes.Buffer
	b := New(&buf, 100, "sample")
	for i := 0; i < 100; i++ {
		b.Add(1)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote before the interval passed: %q", buf.String())
	}
	b.Finish()
	b.Finish()
	out := buf.String()
	if out != strings.TrimRight(out, "\n")+"\n" || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "sample: 100/100 (100%)") {
		t.Fatalf("final line %q", out)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("terminal control characters in a plain log: %q", out)
	}

	Interval = 0
	buf.Reset()
	b = New(&buf, 4, "train")
	b.Set(1)
	b.Set(2)
	b.Close()
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("with a zero interval each Set writes a line; got %d lines: %q", got, buf.String())
	}
	// A last line that already says "4/4" is not repeated by Finish.
	buf.Reset()
	b = New(&buf, 4, "cas")
	b.Set(4)
	b.Finish()
	if got := strings.Count(buf.String(), "4/4"); got != 1 {
		t.Fatalf("the final count written %d times: %q", got, buf.String())
	}
	var nilBar *Bar
	nilBar.Add(1)
	nilBar.Finish()
	if New(nil, 3, "x") != nil {
		t.Fatal("a nil writer should give the nil (silent) bar")
	}
}

// TestResumedETA: a display that starts at 54% of the work counts its rate
// from the units done since it started, so the time left is that of the
// remaining 46% at the new rate, not the few seconds a rate inflated by the
// units done before would give.
func TestResumedETA(t *testing.T) {
	old := Interval
	Interval = 0
	defer func() { Interval = old }()
	var buf bytes.Buffer
	b := NewFrom(&buf, 5400, 10000, "train")
	start := b.start
	// Pretend 10 s passed in which 100 units were done: 46 s per 460 units
	// at that rate means 4600/10 = 460 s left.
	b.mu.Lock()
	b.start = start.Add(-10 * time.Second)
	b.mu.Unlock()
	b.Add(100)
	line := buf.String()
	if !strings.HasPrefix(line, "train: 5500/10000 (55%) in 10s, 7m30s left") {
		t.Fatalf("resumed line %q; want 5500/10000 and 4500 units at 10 units/s left (7m30s)", line)
	}
	if nb := NewFrom(&buf, 20, 10, "x"); nb.n != 10 || nb.from != 10 {
		t.Fatalf("a start beyond the total is clamped to it: n %d, from %d", nb.n, nb.from)
	}
}
