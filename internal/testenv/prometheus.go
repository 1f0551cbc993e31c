package testenv

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// prometheusReadyTimeout bounds the wait for /-/ready.
const prometheusReadyTimeout = 60 * time.Second

// Prometheus starts a Prometheus server with configFile on a loopback port
// the kernel picked, its TSDB in t.TempDir(), and returns its base URL
// ("http://127.0.0.1:<port>") once /-/ready answers. It is stopped, and
// waited for, in t.Cleanup.
//
// Under -short the test is skipped; a missing prometheus binary (found on
// PATH, in <module>/bin or through EXPORTER_TEST_PROMETHEUS) fails it.
func Prometheus(t testing.TB, configFile string) string {
	t.Helper()
	bin := requireBinary(t, "prometheus", EnvPrometheus)
	dir := t.TempDir()
	client := &http.Client{Timeout: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + loopbackAddr(port)
		cmd := exec.Command(bin,
			"--config.file="+configFile,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("tsdb-%d", attempt)),
			"--web.listen-address="+loopbackAddr(port),
			"--log.level=warn",
		)
		cmd.Dir = dir
		p, err := StartProcess("prometheus", cmd, filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		err = p.WaitReady(prometheusReadyTimeout, func() error {
			resp, err := client.Get(url + "/-/ready")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /-/ready = %d", resp.StatusCode)
			}
			return nil
		})
		if err == nil {
			t.Cleanup(func() {
				if err := p.Stop(); err != nil {
					t.Errorf("testenv: %v", err)
				}
			})
			return url
		}
		select {
		case <-p.Exited():
			if attempt < redisAttempts {
				continue // most likely a lost race for the port
			}
		default:
			_ = p.Stop()
		}
		t.Fatalf("testenv: start prometheus (attempt %d): %v", attempt, err)
	}
}

// Promtool returns the promtool binary (found on PATH, in <module>/bin or
// through EXPORTER_TEST_PROMTOOL). Under -short the test is skipped; a
// missing binary fails it.
func Promtool(t testing.TB) string {
	t.Helper()
	return requireBinary(t, "promtool", EnvPromtool)
}
