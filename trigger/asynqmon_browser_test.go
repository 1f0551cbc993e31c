package trigger_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/testenv"
)

// TestMonitoringInBrowser opens asynqmon in headless Chromium the way an
// operator does, with the token parameter, and waits until the page, by
// its own requests to /monitoring/api (authenticated by the cookie), lists
// the project's queues. The screenshot is written to t.ArtifactDir(): run
// go test -artifacts -outputdir DIR to keep it.
func TestMonitoringInBrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs Chromium and a real redis-server; skipped under -short")
	}
	srv, _ := setupMonitoring(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	browser := testenv.Browser(t, ctx, 1280, 1100)

	token := mint(t, "ops", "operator")
	steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(base + "/monitoring?token=" + token)}
	for _, q := range job.Queues {
		steps = append(steps, chromedp.WaitVisible(chromedp.Search(`//*[text()="`+q+`"]`)))
	}
	if err := chromedp.Do(browser, steps...); err != nil {
		t.Fatalf("open %s/monitoring in Chromium and wait for the queues: %v", base, err)
	}
	cookies, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, token) {
		t.Errorf("the page's scripts can read the token: document.cookie = %q, want the cookie HttpOnly", cookies)
	}
	shot, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), "monitoring.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
