// Package progress shows how far long work has come: a redrawn bar on a
// terminal, and on anything else (a log file, a pipe) one plain line every
// few seconds, so logs hold a readable record instead of thousands of
// redrawn frames.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Interval is how often the plain display writes a line.
var Interval = 5 * time.Second

// Bar is a progress display over total units. A nil *Bar, or one made for a
// nil writer, shows nothing; every method is safe on it.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	bar      *progressbar.ProgressBar // terminal only
	total    int
	n        int
	from     int // units done before this display started (a resumed run)
	desc     string
	start    time.Time
	last     time.Time
	shown    int // units done at the last plain line; -1: none yet
	finished bool
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a display of total units described by desc on w (nil: none).
func New(w io.Writer, total int, desc string) *Bar {
	return NewFrom(w, 0, total, desc)
}

// NewFrom starts a display of total units of which from were done before it
// started (a resumed run): the rate and the time left count only the units
// done since, so a run resumed at 54% does not promise to end in seconds.
// The plain lines count from 0 to total; the terminal bar counts the units
// left, and its description says where it resumed.
func NewFrom(w io.Writer, from, total int, desc string) *Bar {
	if w == nil {
		return nil
	}
	from = max(0, min(from, total))
	b := &Bar{w: w, total: total, n: from, from: from, desc: desc, start: time.Now(), shown: -1}
	b.last = b.start
	if IsTerminal(w) {
		b.bar = progressbar.NewOptions(total-from, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(b.termDesc()), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(24), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return b
}

// termDesc is the terminal bar's description: desc, and where a resumed
// display started.
func (b *Bar) termDesc() string {
	if b.from == 0 {
		return b.desc
	}
	return fmt.Sprintf("%s (resumed at %d/%d)", b.desc, b.from, b.total)
}

// Describe changes the description.
func (b *Bar) Describe(desc string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.desc = desc
	if b.bar != nil {
		b.bar.Describe(b.termDesc())
	}
}

// Add advances by n units.
func (b *Bar) Add(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.n += n
	v := b.n
	b.mu.Unlock()
	b.Set(v)
}

// Set moves to n units done.
func (b *Bar) Set(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = n
	if b.bar != nil {
		_ = b.bar.Set(max(0, n-b.from))
		return
	}
	if now := time.Now(); now.Sub(b.last) >= Interval {
		b.last = now
		b.line()
	}
}

// line writes the plain progress line; b.mu is held.
func (b *Bar) line() {
	el := time.Since(b.start)
	pct := 0.0
	if b.total > 0 {
		pct = 100 * float64(b.n) / float64(b.total)
	}
	eta := ""
	if done := b.n - b.from; done > 0 && b.n < b.total {
		eta = fmt.Sprintf(", %s left", (time.Duration(float64(el) / float64(done) * float64(b.total-b.n))).Round(time.Second))
	}
	fmt.Fprintf(b.w, "%s: %d/%d (%.0f%%) in %s%s\n", b.desc, b.n, b.total, pct, el.Round(time.Second), eta)
	b.shown = b.n
}

// Finish ends the display: the terminal bar is cleared, the plain display
// writes its last line.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	if b.bar != nil {
		_ = b.bar.Finish()
		return
	}
	if b.shown != b.n { // the last line may already say it
		b.line()
	}
}

// Close clears an unfinished terminal bar, so that a message printed next
// starts on a clean line. Defer it after New.
func (b *Bar) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.finished && b.bar != nil {
		_ = b.bar.Clear()
		fmt.Fprint(b.w, "\r")
	}
	b.finished = true
}
