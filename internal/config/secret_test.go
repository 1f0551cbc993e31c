package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/config"
	"github.com/geoexport/exporter/internal/testenv"
)

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	s := config.Secret(secret)

	outputs := append(testenv.Printed(t, s), testenv.Printed(t, &s)...)
	outputs = append(outputs, testenv.Printed(t, struct{ S config.Secret }{s})...)
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
