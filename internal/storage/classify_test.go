package storage

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestClassifyS3(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		err          error
		wantNotFound bool
	}{
		{name: "NoSuchKey", err: minio.ErrorResponse{Code: minio.NoSuchKey, StatusCode: 404}, wantNotFound: true},
		{name: "NoSuchBucket", err: minio.ErrorResponse{Code: minio.NoSuchBucket, StatusCode: 404}, wantNotFound: true},
		{name: "wrapped NoSuchKey", err: fmt.Errorf("layer: %w", minio.ErrorResponse{Code: minio.NoSuchKey}), wantNotFound: true},
		{name: "pointer", err: fmt.Errorf("layer: %w", &minio.ErrorResponse{Code: minio.NoSuchKey}), wantNotFound: true},
		{name: "bare 404", err: minio.ErrorResponse{StatusCode: http.StatusNotFound}, wantNotFound: true},
		{name: "AccessDenied", err: minio.ErrorResponse{Code: minio.AccessDenied, StatusCode: 403}},
		{name: "other", err: errors.New("connection refused")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classifyS3(tc.err)
			if errors.Is(got, ErrNotFound) != tc.wantNotFound {
				t.Errorf("classifyS3(%v) = %v, want ErrNotFound %v", tc.err, got, tc.wantNotFound)
			}
			if !tc.wantNotFound && !errors.Is(got, tc.err) {
				t.Errorf("classifyS3(%v) = %v, want the error unchanged", tc.err, got)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "a/b/c.gpkg", "packages/x_1-2.3~.gpkg", "ü/…", "a..b/..c", ".hidden/x", strings.Repeat("k", 1024)} {
		if err := checkKey(key); err != nil {
			t.Errorf("checkKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{"", "/a", "a/", "a//b", ".", "..", "a/.", "../a", `a\b`, "a\nb", "a\x7fb", "\xc3", strings.Repeat("k", 1025), tempPrefix + "x", "a/" + tempPrefix} {
		if err := checkKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, p := range []string{"", "a", "a/", "a/b", "a/.", "a/..x", "parts/j1"} {
		if err := checkPrefix(p); err != nil {
			t.Errorf("checkPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "../", "a/../", "a//", `a\`, "x/\x00"} {
		if err := checkPrefix(p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkPrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}

func TestContentTypeFor(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"a/b.gpkg": "application/geopackage+sqlite3",
		"B.GPKG":   "application/geopackage+sqlite3",
		"m.json":   "application/json",
		"t.png":    "image/png",
		"noext":    "application/octet-stream",
		"dir.x/y":  "application/octet-stream",
	} {
		if got := contentTypeFor(key); got != want {
			t.Errorf("contentTypeFor(%q) = %q, want %q", key, got, want)
		}
	}
}
