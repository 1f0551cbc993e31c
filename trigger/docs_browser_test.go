package trigger_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/geoexport/exporter/internal/testenv"
)

// TestDocsInBrowser opens the interactive reference at /docs in headless
// Chromium, as a reader does: every operation of the document is listed,
// and "Try it out" on GET /layers first goes out without a token (and is
// answered 401), then, after the reader gives a token with Authorize, with
// exactly that token (and is answered 200). Nothing is fetched from
// another origin, and the page logs no error.
func TestDocsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("Chromium: skipped under -short")
	}
	t.Parallel()
	k := loadContract(t)
	srv, _ := setup(t)
	base := serveTCP(t, srv)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	browser := testenv.Browser(t, ctx, 1280, 900)

	var (
		mu       sync.Mutex
		layers   []string // the Authorization header of each GET /layers
		problems []string
	)
	if err := chromedp.Listen(browser, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "request to another origin: "+u)
			}
			if strings.HasPrefix(u, base+"/layers") {
				h, _ := ev.Request.Headers["Authorization"].(string)
				layers = append(layers, h)
			}
		case *cdpruntime.EventExceptionThrown:
			problems = append(problems, "uncaught: "+ev.ExceptionDetails.Text)
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				problems = append(problems, "console.error")
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.ArtifactDir(), name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	poll := func(what, expr string) string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Poll[string](expr, chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			shot("failed")
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return v
	}

	// Every operation, by method and path.
	want := k.operations()
	if err := chromedp.Do(browser, chromedp.Navigate(base+"/docs")); err != nil {
		t.Fatalf("open %s/docs: %v", base, err)
	}
	listed := poll("every operation listed", `(() => {
		const ops = [...document.querySelectorAll('.opblock')].map((o) =>
			o.querySelector('.opblock-summary-method').textContent + ' ' + o.querySelector('[data-path]').dataset.path);
		return ops.length >= `+strconv.Itoa(len(want))+` ? ops.join('\n') : false;
	})()`)
	got := strings.Split(listed, "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("operations shown by /docs:\n%s\nwant the document's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	shot("docs")

	// Try GET /layers without a token, then with one given to Authorize.
	op := "#operations-layers-listLayers"
	execute := func(status string) {
		t.Helper()
		if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS(op+" .execute"))); err != nil {
			t.Fatalf("Execute GET /layers: %v", err)
		}
		poll("the answer "+status, `(() => {
			const s = document.querySelector('`+op+` .live-responses-table tbody .response-col_status');
			return s && s.textContent.trim().startsWith('`+status+`') ? 'ok' : false;
		})()`)
	}
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
	); err != nil {
		t.Fatalf("Try it out on GET /layers: %v", err)
	}
	execute("401")

	token := mint(t, "alice", "client")
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
		chromedp.SendKeys(chromedp.CSS(`.modal-ux input[aria-label="auth-bearer-value"]`), token),
		chromedp.Click(chromedp.Search(`//div[contains(@class,"modal-ux")]//form[.//input[@aria-label="auth-bearer-value"]]//button[contains(@class,"authorize")]`)),
		chromedp.Click(chromedp.CSS(".modal-ux .btn-done")),
	); err != nil {
		shot("failed")
		t.Fatalf("Authorize with a bearer token: %v", err)
	}
	execute("200")
	shot("tried")

	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(layers, []string{"", "Bearer " + token}) {
		t.Errorf("Authorization of the GET /layers the page sent = %q, want none and then the given token", layers)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
