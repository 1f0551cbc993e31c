package config

import (
	"strconv"
	"strings"
)

// The flag.Value types of settings whose field is not a plain string,
// number, bool or duration. Each is a pointer to the field it sets, as the
// standard library's are, so flagNames can tell which flag sets a field.

// secretBytes is a []byte credential of a component's Config, such as
// auth.Config.HS256Secret: set from text, printed as REDACTED.
type secretBytes []byte

func (s *secretBytes) Set(v string) error {
	*s = secretBytes(v)
	return nil
}

func (s *secretBytes) String() string {
	if s == nil || len(*s) == 0 {
		return ""
	}
	return redacted
}

// negatedBool sets a bool field to the opposite of the flag: the flag
// http-monitoring-read-only sets trigger.Config.MonitoringWritable.
type negatedBool bool

func (b *negatedBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b = negatedBool(!on)
	return nil
}

func (b *negatedBool) String() string { return strconv.FormatBool(b == nil || !bool(*b)) }

// IsBoolFlag lets the flag be given without a value.
func (b *negatedBool) IsBoolFlag() bool { return true }

// weights are the service weights of the urgent, default and low queues,
// written "6,3,1".
type weights [3]int

func (w *weights) Set(v string) error {
	parsed, err := parseWeights(v)
	if err != nil {
		return err
	}
	*w = parsed
	return nil
}

func (w *weights) String() string {
	if w == nil {
		return ""
	}
	parts := make([]string, len(w))
	for i, n := range w {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// redactedValue reports whether a flag's value is a credential, whose
// default -help does not print.
func redactedValue(v any) bool {
	switch v.(type) {
	case *Secret, *secretBytes:
		return true
	}
	return false
}
