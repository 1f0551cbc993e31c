package testenv

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestMinIO(t *testing.T) {
	t.Parallel()
	env := MinIO(t)
	ctx := t.Context()

	resp, err := http.Get(env.URL() + "/minio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /minio/health/live = %s, want 200", resp.Status)
	}

	c := env.Client(t)
	ok, err := c.BucketExists(ctx, env.Bucket)
	if err != nil || !ok {
		t.Fatalf("BucketExists(%s) = %v, %v, want true", env.Bucket, ok, err)
	}
	body := []byte("hello")
	if _, err := c.PutObject(ctx, env.Bucket, "a/b.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if _, err := c.StatObject(ctx, env.Bucket, "a/b.txt", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("StatObject: %v", err)
	}
}

func TestMinIOShared(t *testing.T) {
	t.Parallel()
	a, b := MinIO(t), MinIO(t)
	if a.Endpoint != b.Endpoint || a.SecretKey != b.SecretKey {
		t.Errorf("MinIO(t) twice gave servers %s and %s, want one shared server", a.Endpoint, b.Endpoint)
	}
	if a.Bucket == b.Bucket {
		t.Errorf("MinIO(t) twice gave bucket %s both times, want one per call", a.Bucket)
	}
}

func TestMinIOBucketRemoved(t *testing.T) {
	skipShort(t) // the checks after the subtest need a server
	t.Parallel()
	var env MinIOEnv
	t.Run("use", func(t *testing.T) {
		env = MinIO(t)
		body := []byte("left behind")
		_, err := env.Client(t).PutObject(t.Context(), env.Bucket, "x", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ok, err := env.Client(t).BucketExists(ctx, env.Bucket)
	if err != nil || ok {
		t.Errorf("BucketExists(%s) after its test = %v, %v, want false", env.Bucket, ok, err)
	}
}
