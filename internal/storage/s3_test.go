package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
)

func TestS3ConfigValidate(t *testing.T) {
	t.Parallel()
	valid := storage.S3Config{Endpoint: "minio:9000", Bucket: "packages", AccessKey: "ak", SecretKey: "sk"}
	for _, tc := range []struct {
		name   string
		modify func(*storage.S3Config)
		want   []string // substrings of the error; none: valid
	}{
		{name: "valid", modify: func(*storage.S3Config) {}},
		{name: "aws with region and tls", modify: func(c *storage.S3Config) {
			c.Endpoint, c.Region, c.UseTLS = "s3.eu-central-1.amazonaws.com", "eu-central-1", true
		}},
		{name: "empty", modify: func(c *storage.S3Config) { *c = storage.S3Config{} },
			want: []string{"endpoint is required", "bucket is required", "access key is required", "secret key is required"}},
		{name: "scheme", modify: func(c *storage.S3Config) { c.Endpoint = "http://minio:9000" }, want: []string{"without a scheme"}},
		{name: "path", modify: func(c *storage.S3Config) { c.Endpoint = "minio:9000/x" }, want: []string{"without a path"}},
		{name: "bad bucket", modify: func(c *storage.S3Config) { c.Bucket = "Bad_Bucket" }, want: []string{`bucket "Bad_Bucket"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tc.modify(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if _, nerr := storage.NewS3(t.Context(), cfg); nerr == nil {
				t.Errorf("NewS3(invalid config) error = nil")
			}
		})
	}
}

func TestS3ConfigRedactsSecret(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	cfg := storage.S3Config{Endpoint: "minio:9000", Bucket: "b", AccessKey: "ak", SecretKey: secret}

	outputs := append(testenv.Printed(t, cfg), testenv.Printed(t, &cfg)...)
	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks the secret: %s", out)
		}
	}
	for _, out := range []string{outputs[0], outputs[len(outputs)-1]} {
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("output = %s, want REDACTED in place of the secret", out)
		}
	}
	if got := fmt.Sprintf("%v", cfg); !strings.Contains(got, "minio:9000") {
		t.Errorf("%%v = %s, want the other fields printed", got)
	}
}

func TestS3CreateBucketRace(t *testing.T) {
	t.Parallel()
	env := testenv.MinIO(t)
	bucket := env.Bucket + "-new"
	client := env.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_ = client.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true})
	})
	cfg := storage.S3Config{
		Endpoint: env.Endpoint, Bucket: bucket, AccessKey: env.AccessKey,
		SecretKey: env.SecretKey, CreateBucket: true,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := storage.NewS3(t.Context(), cfg)
			if err != nil {
				t.Errorf("NewS3(CreateBucket) racing with others = %v", err)
				return
			}
			defer s.Close()
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping() after NewS3(CreateBucket) = %v", err)
			}
		})
	}
	wg.Wait()
	if ok, err := client.BucketExists(t.Context(), bucket); err != nil || !ok {
		t.Errorf("BucketExists(%s) = %v, %v, want true", bucket, ok, err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	t.Parallel()
	env := testenv.MinIO(t)
	s, err := storage.NewS3(t.Context(), storage.S3Config{
		Endpoint: env.Endpoint, Bucket: env.Bucket + "-missing", AccessKey: env.AccessKey,
		SecretKey: env.SecretKey,
	})
	if err != nil {
		t.Fatalf("NewS3 without CreateBucket = %v, want nil: no request made", err)
	}
	defer s.Close()
	ctx := t.Context()
	checks := map[string]error{
		"Ping":    s.Ping(ctx),
		"Stat":    second(s.Stat(ctx, "k")),
		"Open":    second(s.Open(ctx, "k")),
		"Put":     s.Put(ctx, "k", strings.NewReader("x"), 1, ""),
		"GetFile": s.GetFile(ctx, "k", t.TempDir()+"/k"),
		"Delete":  s.Delete(ctx, "k"),
	}
	for _, err := range s.List(ctx, "") {
		checks["List"] = err
	}
	for op, err := range checks {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s on a missing bucket = %v, want ErrNotFound", op, err)
		}
	}
}

func TestS3BadCredentials(t *testing.T) {
	t.Parallel()
	env := testenv.MinIO(t)
	s, err := storage.NewS3(t.Context(), storage.S3Config{
		Endpoint: env.Endpoint, Bucket: env.Bucket, AccessKey: env.AccessKey, SecretKey: "wrong-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Ping(t.Context())
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Ping() with a wrong secret = %v, want an error that is not ErrNotFound", err)
	}
	if strings.Contains(fmt.Sprint(err), "wrong-secret") {
		t.Errorf("Ping() error leaks the secret: %v", err)
	}
	if _, err := storage.NewS3(t.Context(), storage.S3Config{
		Endpoint: env.Endpoint, Bucket: env.Bucket, AccessKey: env.AccessKey, SecretKey: "wrong-secret", CreateBucket: true,
	}); err == nil {
		t.Errorf("NewS3(CreateBucket) with a wrong secret = nil, want an error")
	}
}
