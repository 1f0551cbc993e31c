package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// webQuota is the storage quota of TestWebToolStorage, in bytes: some
// hundred tiles of the spec's example rectangle at the default estimate.
const webQuota = 500_000

// TestWebToolStorage drives the web tool of an `exporter all` with a
// small storage quota in headless Chromium at 1280×800: the page shows
// the quota left beside the estimate, as GET /storage answers it; an area
// whose estimate exceeds it cannot be exported, and the page says how much
// is needed and how much is free, with the Export button and the message
// in view; a coarser zoom that fits exports, and once the job is Completed
// the free space shown is GET /storage's again, less the package. A tab
// opened with a token the API refuses says so once, in the sign-in box,
// and its header never says "Signed in".
func TestWebToolStorage(t *testing.T) {
	w := openWebToolWith(t, 120*time.Second, map[string]string{"EXPORTER_JOBS_QUOTA_BYTES": strconv.Itoa(webQuota)})
	w.pickDemoLayer()

	// 1. The free space is the quota, shown in human sizes before any area.
	free := w.freeShown(webQuota)
	if text := w.wait("the free space's text", `document.getElementById('storage-free').textContent`, time.Second); text != "Free for packages: 500 kB of 500 kB" {
		t.Errorf("free space shown as %q with %d bytes free, want %q", text, free, "Free for packages: 500 kB of 500 kB")
	}

	// 2. A rectangle by its corners, then finer zooms until the estimate
	// no longer fits: Export is disabled and the message says why.
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("corners-btn"))); err != nil {
		w.fail("press Corners: %v", err)
	}
	w.typeCorners()
	fits, tooBig := -1, -1
	var need int64
	for z := 8; z <= 18 && tooBig < 0; z++ {
		if need = w.chooseZoom(0, "max", z); need > webQuota {
			tooBig = z
		} else {
			fits = z
		}
	}
	if fits < 0 || tooBig < 0 {
		w.fail("zooms 8..18 of the rectangle: fitting %d, too big %d; want both within the quota of %d bytes", fits, tooBig, webQuota)
	}
	t.Logf("zoom %d is estimated at %d bytes, over the quota of %d; zoom %d fits", tooBig, need, webQuota, fits)
	msg := w.wait("the message that the export does not fit", `(() => {
		const m = document.getElementById('storage-error');
		return document.getElementById('submit-btn').disabled && m.offsetParent !== null && m.textContent;
	})()`, 5*time.Second)
	if !strings.HasPrefix(msg, "Too large for the free space: this export needs ≈ ") || !strings.Contains(msg, ", and 500 kB is free.") {
		t.Errorf("at zoom %d (%d bytes estimated) the page says %q, want how much is needed and that 500 kB is free", tooBig, need, msg)
	}
	if problem, err := chromedp.Run(w.browser, chromedp.Evaluate[string](layoutJS+` || (() => {
		const r = document.getElementById('storage-error').getBoundingClientRect();
		return r.top < 0 || r.bottom > innerHeight ? 'the message is at ' + r.top + '..' + r.bottom : '';
	})()`)); err != nil || problem != "" {
		t.Errorf("at 1280×800 with the message: %s (%v)", problem, err)
	}
	w.shot("too-big")
	// Pressing the disabled button (and submitting the form) sends nothing.
	if err := chromedp.Do(w.browser, chromedp.Evaluate[chromedp.Void](`document.getElementById('export-form').requestSubmit()`)); err != nil {
		w.fail("submit the form: %v", err)
	}
	if info, err := chromedp.Run(w.browser, chromedp.Text(chromedp.ID("submit-info"))); err != nil || info != "" {
		t.Errorf("after submitting an export that does not fit, the page says %q (%v), want nothing sent", info, err)
	}
	if jobs := asSlice(w.a.getJSON(t, "/jobs")["jobs"]); len(jobs) != 0 {
		t.Errorf("GET /jobs = %v after an export that does not fit, want none", jobs)
	}

	// 3. The finest zoom that fits exports; the message goes away.
	w.chooseZoom(0, "max", fits)
	w.wait("Export enabled without the message", `!document.getElementById('submit-btn').disabled &&
		document.getElementById('storage-error').textContent === ''`, 5*time.Second)
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export: %v", err)
	}
	jobID := w.wait("the job's row", `(() => { const li = document.querySelector('#jobs-list > li[data-job-id]'); return li?.dataset.jobId; })()`, 10*time.Second)
	w.completed(jobID, 60*time.Second)
	stored := waitCompleted(t, w.a, jobID)["result"].(map[string]any)["fileSize"].(float64)
	if after := w.freeShown(-1); after != webQuota-int64(stored) {
		t.Errorf("free space shown after the export = %d, want the quota %d less the package's %v bytes", after, webQuota, stored)
	}
	w.shot("exported")

	// 4. A token the API refuses: one message, and never "Signed in".
	w.refusedToken()
}

// freeShown waits until the page shows the free space GET /storage
// answers (and want, unless want is negative) and returns it.
func (w *webTool) freeShown(want int64) int64 {
	w.t.Helper()
	var free int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, ok := w.a.getJSON(w.t, "/storage")["free"].(float64)
		if !ok {
			w.fail("GET /storage gives no free space with a quota")
		}
		free = int64(f)
		shown, err := chromedp.Run(w.browser, chromedp.Evaluate[string](`(() => {
			const p = document.getElementById('storage-free'); return p.offsetParent !== null ? p.dataset.free : ''; })()`))
		if err == nil && shown == strconv.FormatInt(free, 10) && (want < 0 || free == want) {
			return free
		}
		if time.Now().After(deadline) {
			w.fail("free space shown %q (%v), GET /storage says %d, want %d", shown, err, free, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refusedToken opens the page in a new tab with a token signed by another
// key, and checks that, until every call of the page has been answered
// 401, the refusal was shown once, in the sign-in box, and the header
// never said "Signed in". A script that runs before the page's records
// what every change of the page showed.
func (w *webTool) refusedToken() {
	t := w.t
	t.Helper()
	tab, closeTab := chromedp.NewContext(w.browser)
	defer closeTab()
	pw := watchPage(t, tab)
	pw.allow("status of 401")
	const record = `window.__seen = { most: 0, signedIn: [] };
new MutationObserver(() => {
	const n = (document.body?.innerText.match(/token was not accepted/g) ?? []).length;
	window.__seen.most = Math.max(window.__seen.most, n);
	const h = document.getElementById('auth-state')?.textContent ?? '';
	if (h.includes('Signed in')) window.__seen.signedIn.push(h);
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });`
	bad := joseToken(t, []byte("not-the-exporter-secret-0123456789"), "mallory", "client")
	u := strings.Replace(w.pageURL, "token="+w.a.token, "token="+bad, 1)
	if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: record}); err != nil {
		t.Fatalf("add the recording script: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(u)); err != nil {
		t.Fatalf("open the page with a refused token: %v", err)
	}
	// Every call the page makes at the start is refused: the layers, the
	// free space, the exports. Wait for all three answers, then a moment
	// for the page to show them.
	v, err := chromedp.Run(tab, chromedp.Poll[string](`(() => {
		const done = performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname.split('/').pop());
		return ['layers', 'storage', 'jobs'].every((p) => done.includes(p)) && !document.getElementById('signin').hidden &&
			document.getElementById('token-error').textContent;
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the page with a refused token: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the page's handlers of the last answer
	seen, err := chromedp.Run(tab, chromedp.Evaluate[struct {
		Most     int      `json:"most"`
		SignedIn []string `json:"signedIn"`
	}](`window.__seen`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "Your token was not accepted") || seen.Most != 1 {
		t.Errorf("a refused token: the sign-in box says %q, and the page showed the refusal up to %d times at once, want once", v, seen.Most)
	}
	header, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("auth-state")))
	if err != nil || len(seen.SignedIn) > 0 || header != "Not signed in: the token was refused." {
		t.Errorf("a refused token: header %q (%v), and it said %q on the way; want it never to say Signed in", header, err, seen.SignedIn)
	}
	w.shotOf(tab, pw, "refused-token")
}
