package checkpoint

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/condiff/condiff/internal/fsutil"
)

// LogFile is the JSONL training log inside a run directory.
const LogFile = "log.jsonl"

// LogEntry is one line of the JSONL log.
type LogEntry struct {
	Step    int     `json:"step"`
	Loss    float64 `json:"loss"`
	MSE     float64 `json:"mse,omitempty"`
	Aux     float64 `json:"aux,omitempty"`
	LR      float64 `json:"lr,omitempty"` // the step's learning rate
	ImgPerS float64 `json:"img_per_s"`
}

// TruncateLog drops log lines past the checkpoint's step, so a resumed run's
// log reads as if it had never been interrupted.
func TruncateLog(path string, step int) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: log: %w", err)
	}
	var keep []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Step <= step {
			keep = append(keep, sc.Text())
		}
	}
	f.Close()
	body := strings.Join(keep, "\n")
	if body != "" {
		body += "\n"
	}
	if err := fsutil.WriteFileAtomic(path, []byte(body)); err != nil {
		return fmt.Errorf("checkpoint: log: %w", err)
	}
	return nil
}

// ReadLog reads a run's JSONL log.
func ReadLog(dir string) ([]LogEntry, error) {
	f, err := os.Open(filepath.Join(dir, LogFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LogEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", f.Name(), err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
