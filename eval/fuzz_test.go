package eval

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReport: any report.json either fails to decode or to check, or
// renders to Markdown whose table rows keep their cell count.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`{"model": "m.onnx", "accuracy": 0.9, "classes": [{"name": "a|b", "samples": 1, "accuracy": 1}]}`))
	f.Add([]byte(`{"accuracy": 1e307}`))
	f.Add([]byte(`{"frechet_distance": -1, "samples": -3}`))
	f.Add([]byte(`{"classes": [{"name": "x\ny", "samples": 2, "accuracy": null}], "cas": {"repeats": 1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Report
		if json.Unmarshal(b, &r) != nil || r.check() != nil {
			return
		}
		md := r.Markdown() // must not panic
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(line, "| ") && strings.HasSuffix(line, " |") && strings.Contains(line, "\r") {
				t.Fatalf("a table row holds a carriage return: %q", line)
			}
		}
	})
}
