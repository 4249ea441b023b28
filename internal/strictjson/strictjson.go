// Package strictjson decodes artifacts' JSON strictly: exactly one value,
// nothing but white space after it, and (for closed formats) no field the
// type does not have. Standard library only.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Decode decodes the one JSON value b holds into v. closed refuses fields v
// has no place for.
func Decode(b []byte, v any, closed bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if closed {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}
