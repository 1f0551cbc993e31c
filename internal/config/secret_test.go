package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/config"
)

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	s := config.Secret(secret)

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, struct{ S config.Secret }{s}))
	}
	js, err := json.Marshal(struct{ S config.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("config", "secret", s)
		log.Info("config", slog.Any("raw", struct{ S config.Secret }{s}))
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks the secret: %s", out)
		}
	}
	if !strings.Contains(outputs[len(outputs)-1], "REDACTED") {
		t.Errorf("JSON log = %s, want REDACTED in place of the secret", outputs[len(outputs)-1])
	}
	if got := s.Reveal(); got != secret {
		t.Errorf("Reveal() = %q, want %q", got, secret)
	}

	// It can be read from JSON and flags, and prints REDACTED in -help.
	var decoded struct{ S config.Secret }
	if err := json.Unmarshal([]byte(`{"S":"from-json"}`), &decoded); err != nil || decoded.S.Reveal() != "from-json" {
		t.Errorf("json.Unmarshal into a Secret = %q, %v, want %q", decoded.S.Reveal(), err, "from-json")
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fromFlag := config.Secret(secret)
	fs.Var(&fromFlag, "s3-secret-key", "secret")
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	if strings.Contains(usage.String(), secret) {
		t.Errorf("flag usage leaks the default secret: %s", usage.String())
	}
	if err := fs.Parse([]string{"-s3-secret-key", "from-flag"}); err != nil || fromFlag.Reveal() != "from-flag" {
		t.Errorf("flag -s3-secret-key from-flag = %q, %v, want %q", fromFlag.Reveal(), err, "from-flag")
	}
}
