// Package setting lets a component's Config say which of its fields a
// problem is about, so that internal/config can name the flag and the
// environment variable that set them, while the component's own message
// stays as it is.
//
// It imports no other package of the exporter.
package setting

import "errors"

// FieldError is a problem with one or more fields of a Config, named by
// their Go names (dotted for a field of a nested struct: "TileSizes.PNG").
type FieldError struct {
	Fields []string
	Err    error
}

// Error returns the problem's own message.
func (e *FieldError) Error() string { return e.Err.Error() }

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Error marks err as a problem with the named fields.
func Error(err error, fields ...string) error {
	return &FieldError{Fields: fields, Err: err}
}

// Problems returns the problems joined in err (by errors.Join, or wrapped
// by %w around a join), each either a *FieldError or another error.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok { //nolint:errorlint // a FieldError itself, not one it wraps
		return []error{fe}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	if inner := errors.Unwrap(err); inner != nil {
		if _, joined := inner.(interface{ Unwrap() []error }); joined {
			return Problems(inner)
		}
	}
	return []error{err}
}
