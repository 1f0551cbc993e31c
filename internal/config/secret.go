package config

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "REDACTED"

// Secret is a credential. It prints, logs and marshals as REDACTED, whatever
// the verb or handler; [Secret.Reveal] returns the value.
type Secret string

// Reveal returns the secret itself, for handing to a client library.
func (s Secret) Reveal() string { return string(s) }

// String returns "REDACTED".
func (Secret) String() string { return redacted }

// Format writes "REDACTED" for every fmt verb, %#v and %x included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue makes slog log "REDACTED".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText makes encoding/json and friends write "REDACTED".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText sets the secret from text, so that decoders and
// flag.TextVar can fill it.
func (s *Secret) UnmarshalText(text []byte) error {
	*s = Secret(text)
	return nil
}

// Set sets the secret, making *Secret a flag.Value whose default prints as
// REDACTED in -help.
func (s *Secret) Set(v string) error {
	*s = Secret(v)
	return nil
}
