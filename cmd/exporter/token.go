package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/config"
)

const tokenUsage = `Usage: exporter token -sub NAME [-role ROLE] [-ttl 24h] [-private-key FILE] [-kid ID] [config flags]

Prints a signed API token (a JWT) on stdout. It is signed with, in order:
the -private-key PEM file (RS256 or ES256), the configured
EXPORTER_AUTH_HS256_SECRET, or the secret that "exporter all" generates in
the data directory when no auth key is configured. iss, aud and the role
claim follow the configuration.

Token flags:
`

// tokenFlags are the flags of the token command; the configuration's
// flags are parsed by config.Load.
type tokenFlags struct {
	sub, role, privateKey, kid string
	ttl                        time.Duration
}

func (f *tokenFlags) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("exporter token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.sub, "sub", "", "subject (sub claim): who the token is for (required)")
	fs.StringVar(&f.role, "role", "", "role claim value (default the configured client role)")
	fs.DurationVar(&f.ttl, "ttl", 24*time.Hour, "time until the token expires")
	fs.StringVar(&f.privateKey, "private-key", "", "PEM private key (RSA or EC P-256) to sign RS256 or ES256 tokens")
	fs.StringVar(&f.kid, "kid", "", "key id (kid header), for servers that verify with a JWKS")
	fs.Usage = func() {
		fmt.Fprint(stderr, tokenUsage)
		fs.PrintDefaults()
		fmt.Fprintln(stderr)
	}
	return fs
}

// runToken is the token command: it mints a token the trigger accepts.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var tf tokenFlags
	fs := tf.flagSet(stderr)
	own, rest := splitTokenArgs(fs, args)
	if slices.ContainsFunc(rest, isHelpFlag) {
		fs.Usage()
		_, _, err := loadConfig("exporter token", []string{"-h"}, getenv, stderr)
		return err
	}
	if err := fs.Parse(own); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	cfg, extra, err := loadConfig("exporter token", rest, getenv, stderr)
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return &usageError{fmt.Errorf("unexpected arguments %q", extra)}
	}
	var errs []error
	if strings.TrimSpace(tf.sub) == "" {
		errs = append(errs, errors.New("-sub is required: the subject the token is for"))
	}
	if tf.ttl <= 0 {
		errs = append(errs, fmt.Errorf("-ttl: %v must be positive", tf.ttl))
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err}
	}
	role := tf.role
	if role == "" {
		role = cfg.Auth.ClientRole
	}

	key, source, err := tokenKey(tf.privateKey, cfg)
	if err != nil {
		return err
	}
	key.KeyID = tf.kid
	now := time.Now()
	tok, err := auth.Mint(key, auth.MintClaims{
		Subject: tf.sub, RoleClaim: cfg.Auth.RoleClaim, Role: role, TTL: tf.ttl,
		Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience, Now: now,
	})
	if err != nil {
		return &usageError{err}
	}
	fmt.Fprintf(stderr, "exporter token: %s token for %q with role %q, expires %s, signed with %s\n",
		key.Algorithm(), tf.sub, role, now.Add(tf.ttl).UTC().Format(time.RFC3339), source)
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenKey picks the signing key and says where it came from.
func tokenKey(privateKeyFile string, cfg config.Config) (auth.SigningKey, string, error) {
	switch {
	case privateKeyFile != "":
		key, err := auth.LoadSigningKey(nil, privateKeyFile)
		if err != nil {
			return key, "", &usageError{fmt.Errorf("-private-key: %w", err)}
		}
		return key, privateKeyFile, nil
	case len(cfg.Auth.HS256Secret) > 0:
		key, err := auth.LoadSigningKey(cfg.Auth.HS256Secret, "")
		if err != nil {
			return key, "", &usageError{fmt.Errorf("auth-hs256-secret: %w", err)}
		}
		return key, "auth-hs256-secret", nil
	case cfg.Auth.PublicKeyFile != "" || cfg.Auth.JWKSFile != "":
		return auth.SigningKey{}, "", &usageError{errors.New(
			"the server verifies tokens with public keys (auth-public-key-file, auth-jwks-file) only: pass -private-key with a matching private key")}
	}
	secret, err := dataDirSecret(cfg.Storage.DataDir)
	if err != nil {
		return auth.SigningKey{}, "", err
	}
	key, err := auth.NewHS256Key(secret)
	if err != nil {
		return key, "", err
	}
	return key, filepath.Join(cfg.Storage.DataDir, authSecretFile), nil
}

// splitTokenArgs separates the token command's own flags (with their
// values) from the rest, which are configuration flags and arguments. Each
// of fs's flags takes a value, as -name value or -name=value.
func splitTokenArgs(fs *flag.FlagSet, args []string) (own, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return own, append(rest, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || fs.Lookup(name) == nil {
			rest = append(rest, a)
			continue
		}
		own = append(own, a)
		if !hasValue && i+1 < len(args) {
			i++
			own = append(own, args[i])
		}
	}
	return own, rest
}

func isHelpFlag(a string) bool {
	switch a {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}
