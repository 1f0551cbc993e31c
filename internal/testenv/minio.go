package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	minioAttempts     = 5
	minioReadyTimeout = 90 * time.Second
	// minioDirPrefix names the shared server's temp directory:
	// <prefix><pid>-<random>, so a later run can sweep the directories of
	// test binaries that died without calling Shutdown.
	minioDirPrefix = "exporter-testenv-minio-"
	// bucketOpTimeout bounds creating and removing a test's bucket.
	bucketOpTimeout = 30 * time.Second
)

// MinIOEnv is how a test reaches the shared MinIO server and its own bucket.
// The server speaks plain HTTP.
type MinIOEnv struct {
	// Endpoint is "127.0.0.1:<port>", without a scheme, as minio.New and
	// storage.S3Config take it.
	Endpoint string
	// AccessKey and SecretKey are the server's random root credentials.
	AccessKey string
	SecretKey string
	// Bucket exists, is empty, and belongs to this test alone.
	Bucket string
}

// URL returns the endpoint as an http:// URL.
func (e MinIOEnv) URL() string { return "http://" + e.Endpoint }

// Client returns a minio-go client with the root credentials, for setting
// up and inspecting a test's objects directly. Its idle connections are
// closed in t.Cleanup.
func (e MinIOEnv) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, tr, err := newMinIOClient(e.Endpoint, e.AccessKey, e.SecretKey)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// MinIO returns the MinIO server shared by every test in this test binary,
// starting it on first use, and a new randomly named bucket for this test.
// The bucket is removed with everything in it in t.Cleanup.
//
// The server binds 127.0.0.1 on a port the kernel picked (the console on
// another), keeps its data in a directory under os.TempDir and runs with
// random root credentials. It is ready once /minio/health/live answers 200
// and the credentials are accepted. Call [Shutdown] (or use [Run] in
// TestMain) to stop it and remove its data; on Linux it is killed anyway
// when the test binary exits.
//
// Under -short the test is skipped; a missing minio binary, or a server that
// fails to start, fails it (and every later caller, with the same error).
func MinIO(t testing.TB) MinIOEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: test needs a real MinIO server; skipped under -short")
	}
	srv, err := sharedMinIO()
	if err != nil {
		t.Fatal(err)
	}
	env := MinIOEnv{
		Endpoint:  srv.endpoint,
		AccessKey: srv.accessKey,
		SecretKey: srv.secretKey,
		Bucket:    "testenv-" + strings.ToLower(rand.Text()[:16]),
	}
	c, tr, err := newMinIOClient(env.Endpoint, env.AccessKey, env.SecretKey)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), bucketOpTimeout)
	defer cancel()
	if err := c.MakeBucket(ctx, env.Bucket, minio.MakeBucketOptions{}); err != nil {
		tr.CloseIdleConnections()
		t.Fatalf("testenv: create bucket %s: %v", env.Bucket, err)
	}
	t.Cleanup(func() {
		defer tr.CloseIdleConnections()
		// t.Context() is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), bucketOpTimeout)
		defer cancel()
		err := c.RemoveBucketWithOptions(ctx, env.Bucket, minio.RemoveBucketOptions{ForceDelete: true})
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchBucket {
			t.Errorf("testenv: remove bucket %s: %v", env.Bucket, err)
			return
		}
		// A forced removal has answered before HeadBucket stopped finding
		// the bucket (once, in CI, on a loaded machine): wait until it is
		// gone, so that it is gone when the cleanup returns.
		for {
			ok, err := c.BucketExists(ctx, env.Bucket)
			if err == nil && !ok {
				return
			}
			select {
			case <-ctx.Done():
				t.Errorf("testenv: bucket %s still exists after its removal: %v, %v", env.Bucket, ok, err)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return env
}

// Run runs the tests, then stops the shared MinIO server and removes its
// data; it returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if err := Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Shutdown stops the shared MinIO server, if one was started, waits for it
// to exit and removes its data directory. A later [MinIO] call starts a new
// server. TestMain functions that cannot use [Run] (goleak.VerifyTestMain
// checks for leaks before its Cleanup option runs) call it after m.Run and
// before checking for leaked goroutines.
func Shutdown() error {
	minioState.mu.Lock()
	defer minioState.mu.Unlock()
	srv := minioState.srv
	minioState.srv, minioState.err = nil, nil
	if srv == nil {
		return nil
	}
	return errors.Join(srv.proc.Stop(), os.RemoveAll(srv.root))
}

type minioServer struct {
	proc                 *Process
	root                 string // temp directory: data/, certs/, logs
	endpoint             string
	accessKey, secretKey string
}

// minioState holds the shared server. A mutex rather than a sync.Once, so
// that Shutdown can reset it; a failed start is remembered so that every
// later test fails at once with the same error.
var minioState struct {
	mu  sync.Mutex
	srv *minioServer
	err error
}

func sharedMinIO() (*minioServer, error) {
	minioState.mu.Lock()
	defer minioState.mu.Unlock()
	if minioState.srv == nil && minioState.err == nil {
		minioState.srv, minioState.err = startMinIO()
	}
	return minioState.srv, minioState.err
}

func startMinIO() (*minioServer, error) {
	bin, err := findBinary("minio", EnvMinIO)
	if err != nil {
		return nil, err
	}
	sweepStaleMinIODirs()
	root, err := os.MkdirTemp("", minioDirPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("testenv: start minio: %w", err)
	}
	srv := &minioServer{
		root:      root,
		accessKey: "testenv-" + rand.Text()[:12],
		secretKey: rand.Text(),
	}
	for attempt := 1; ; attempt++ {
		err := srv.start(bin, attempt)
		if err == nil {
			return srv, nil
		}
		if !errors.Is(err, errExitedEarly) || attempt == minioAttempts {
			_ = os.RemoveAll(root)
			return nil, fmt.Errorf("testenv: start minio (attempt %d): %w", attempt, err)
		}
	}
}

func (s *minioServer) start(bin string, attempt int) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	consolePort, err := freePort()
	if err != nil {
		return err
	}
	if consolePort == port {
		return fmt.Errorf("%w: kernel picked port %d twice", errExitedEarly, port)
	}
	endpoint := loopbackAddr(port)
	cmd := exec.Command(bin, "server",
		"--address", endpoint,
		"--console-address", loopbackAddr(consolePort),
		"--certs-dir", filepath.Join(s.root, "certs"),
		filepath.Join(s.root, "data"),
	)
	cmd.Dir = s.root
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+s.accessKey,
		"MINIO_ROOT_PASSWORD="+s.secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	p, err := StartProcess("minio", cmd, filepath.Join(s.root, fmt.Sprintf("minio-%d.log", attempt)))
	if err != nil {
		return err
	}
	client, tr, err := newMinIOClient(endpoint, s.accessKey, s.secretKey)
	if err != nil {
		_ = p.Stop()
		return err
	}
	defer tr.CloseIdleConnections()
	httpClient := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	err = p.WaitReady(minioReadyTimeout, func() error {
		resp, err := httpClient.Get("http://" + endpoint + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /minio/health/live: %s", resp.Status)
		}
		// Another MinIO may have won the port: ours alone accepts our
		// random credentials.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := client.ListBuckets(ctx); err != nil {
			return fmt.Errorf("list buckets with our credentials: %w", err)
		}
		return nil
	})
	if err != nil {
		select {
		case <-p.Exited():
			return fmt.Errorf("%w: %w", errExitedEarly, err)
		default:
		}
		_ = p.Stop()
		return err
	}
	s.proc, s.endpoint = p, endpoint
	return nil
}

// newMinIOClient returns a client with its own transport, so that callers can
// close its idle connections (and their goroutines) when they are done.
func newMinIOClient(endpoint, accessKey, secretKey string) (*minio.Client, *http.Transport, error) {
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, nil, fmt.Errorf("minio transport: %w", err)
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Transport: tr,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("minio client: %w", err)
	}
	return c, tr, nil
}

// environWithout returns the environment minus variables with the prefix,
// so that a developer's own MINIO_* settings cannot leak into the server.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// sweepStaleMinIODirs removes the data directories of earlier test binaries
// that exited without Shutdown. Best effort.
func sweepStaleMinIODirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), minioDirPrefix+"*"))
	for _, dir := range dirs {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), minioDirPrefix), "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || !processGone(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
