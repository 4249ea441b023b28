package strictjson

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type T struct{ A int }
	for _, c := range []struct {
		in     string
		closed bool
		want   string // "" for success
	}{
		{`{"A": 1}`, true, ""},
		{" {\"A\": 1}\n\t ", true, ""},
		{`{"A": 1} x`, true, "data after"},
		{`{"A": 1}{"A": 2}`, false, "data after"},
		{`{"A": 1, "B": 2}`, true, "unknown field"},
		{`{"A": 1, "B": 2}`, false, ""},
		{`{"A": `, false, "unexpected EOF"},
	} {
		var v T
		err := Decode([]byte(c.in), &v, c.closed)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q closed %v: %v, want %q", c.in, c.closed, err, c.want)
		}
	}
}
