package testenv

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts a headless Chromium (the Debian package's /usr/bin/chromium,
// found on PATH) for a test, with a fresh profile and a window of width ×
// height, and returns a chromedp context bound to ctx. Only 127.0.0.1 can be
// reached: every other host name fails at once, so a page that needs
// anything else shows it instead of timing out. The browser is closed when
// ctx is done or the test ends.
//
// Under -short the test is skipped; a missing chromium fails it with an
// install hint.
func Browser(tb testing.TB, ctx context.Context, width, height int) context.Context {
	tb.Helper()
	if testing.Short() {
		tb.Skip("testenv: test needs Chromium; skipped under -short")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		tb.Fatalf("testenv: chromium not found (%v): run make tools, which installs the Debian package chromium", err)
	}
	allocCtx, closeAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(width, height),
	)
	browser, closeBrowser := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() { closeBrowser(); closeAlloc() })
	return browser
}
