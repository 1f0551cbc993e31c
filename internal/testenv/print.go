package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
)

// Printed is v as a program may print it: through each of fmt's verbs
// %v %+v %#v %s %q %x %d, json.Marshal, and a log line of slog's text
// handler and then of its JSON handler (the last element). Tests of a
// secret check that none of them holds it.
func Printed(t testing.TB, v any) []string {
	t.Helper()
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, v))
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(js))
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("printed", "value", v)
		out = append(out, buf.String())
	}
	return out
}
