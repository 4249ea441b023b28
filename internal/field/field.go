// Package field is the error a library returns when one of its options has a
// bad value. Libraries name the option by its Go field; only cmd/ knows the
// flag that set it and maps one to the other when it prints the error.
package field

import (
	"errors"
	"fmt"
)

// Error says which option field of which stage holds a bad value, and why.
type Error struct {
	Stage  string // the package that refused it: "infer", "train", …
	Field  string // the option's Go field name: "Steps", "Shard", …
	Value  any
	Reason string
	cause  error // the reason as an error, wrapping what its format wrapped with %w
}

// Unwrap gives errors.Is and errors.As the errors the reason wrapped.
func (e *Error) Unwrap() error { return errors.Unwrap(e.cause) }

func (e *Error) Error() string {
	return e.Stage + ": " + e.Named(e.Field)
}

// Named is the error without its stage, the option called name: "name
// value: reason". Callers that speak of the option by another name (a
// flag, a JSON field) say it with this.
func (e *Error) Named(name string) string {
	return fmt.Sprintf("%s %s: %s", name, show(e.Value), e.Reason)
}

// Errorf returns an *Error for field of stage holding value.
func Errorf(stage, field string, value any, format string, a ...any) error {
	cause := fmt.Errorf(format, a...)
	return &Error{Stage: stage, Field: field, Value: value, Reason: cause.Error(), cause: cause}
}

// Rename rewrites a field error in flag terms: names maps Go field names to
// the flag names that set them ("Steps" -> "--steps"); a key "stage.Field"
// ("data.Seed") wins over "Field" for that stage's errors. Errors that are
// not field errors, or name a field absent from names, come back unchanged.
func Rename(err error, names map[string]string) error {
	var fe *Error
	if !errors.As(err, &fe) {
		return err
	}
	flag, ok := names[fe.Stage+"."+fe.Field]
	if !ok {
		if flag, ok = names[fe.Field]; !ok {
			return err
		}
	}
	return &flagError{msg: fe.Stage + ": " + fe.Named(flag), err: err}
}

// flagError is a field error as the command line spoke it.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}
