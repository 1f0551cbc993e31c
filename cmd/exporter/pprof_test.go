package main

import (
	"net/http"
	"testing"

	"github.com/geoexport/exporter/internal/testenv"
)

// TestProfiles: EXPORTER_HTTP_PPROF serves the runtime profiles beside
// /metrics on the address without a token, never on the API, and nowhere
// without it.
func TestProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped under -short")
	}
	t.Parallel()
	metricsAddr := testenv.FreeAddr(t)
	all := start(t, t.TempDir(), map[string]string{
		"EXPORTER_HTTP_ADDR": testenv.FreeAddr(t), "EXPORTER_HTTP_METRICS_ADDR": metricsAddr, "EXPORTER_HTTP_PPROF": "true",
	}, "all")
	base, _ := waitURL(t, all)
	waitReady(t, base, all)
	workerAddr := testenv.FreeAddr(t)
	w := start(t, t.TempDir(), map[string]string{
		"EXPORTER_REDIS_URL": "redis://" + testenv.RedisAddr(t), "EXPORTER_HTTP_ADDR": workerAddr,
	}, "worker")
	waitReady(t, "http://"+workerAddr, w)

	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"metrics address, profiles on", "http://" + metricsAddr + "/debug/pprof/cmdline", http.StatusOK},
		{"API address, profiles on", base + "/debug/pprof/cmdline", http.StatusNotFound},
		{"worker address, profiles off", "http://" + workerAddr + "/debug/pprof/cmdline", http.StatusNotFound},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: GET %s = %d, want %d", tc.name, tc.url, resp.StatusCode, tc.want)
		}
	}
}
