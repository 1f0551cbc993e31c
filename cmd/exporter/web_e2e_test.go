package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/geoexport/exporter/internal/testenv"
)

// TestWebToolEndToEnd drives the web export tool of `exporter all` in
// headless Chromium as a person does: it opens the address the exporter
// prints, picks the demo layer, draws a rectangle on the map, types the
// specification's example corners, chooses zoom 14, waits for the estimate
// of 18 tiles, exports, follows the job to Completed, downloads the package
// through the page's link, and exports the same area again to see it
// marked as ready from the earlier export. A screenshot of every step is
// written to t.ArtifactDir(): run go test -artifacts -outputdir DIR to keep
// them.
func TestWebToolEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with Chromium: skipped under -short")
	}
	t.Parallel()

	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	p := start(t, dir, map[string]string{"EXPORTER_HTTP_ADDR": addr, "EXPORTER_HTTP_RATE_LIMIT": "0"}, "all")
	base, token := waitURL(t, p)
	waitReady(t, base, p)
	pageURL := openURL(t, p)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	browser := testenv.Browser(t, ctx, 1400, 1000)

	step := 0
	shot := func(name string) {
		t.Helper()
		step++
		png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(t.ArtifactDir(), fmt.Sprintf("web-%02d-%s.png", step, name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	// fail reports what the page shows, with a screenshot, and stops.
	fail := func(format string, args ...any) {
		t.Helper()
		shot("failure")
		state, err := chromedp.Run(browser, chromedp.Evaluate[string](pageStateJS))
		if err != nil {
			state = "(page state unavailable: " + err.Error() + ")"
		}
		t.Fatalf("%s\npage: %s", fmt.Sprintf(format, args...), state)
	}
	// wait polls a JavaScript expression until it is truthy and returns
	// its value.
	wait := func(what, expr string, timeout time.Duration) string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Poll[any](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
		if err != nil {
			fail("waiting for %s: %v", what, err)
		}
		return fmt.Sprint(v)
	}

	// 1. Open the page with the token, as the exporter says to.
	if err := chromedp.Do(browser, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("export-form"))); err != nil {
		fail("open %s: %v", pageURL, err)
	}
	if loc, err := chromedp.Run(browser, chromedp.Location()); err != nil || strings.Contains(loc, "token=") {
		t.Errorf("address bar after load = %q (%v), want the token removed", loc, err)
	}
	wait("the signed-in state", `document.getElementById('auth-state').textContent.startsWith('Signed in')`, 10*time.Second)
	wait("the layers", `document.querySelectorAll('#layer option').length > 0`, 10*time.Second)
	shot("opened")

	// 2. Pick the demo layer by its label, as a person reads it.
	layerLabel := wait("the demo layer picked", `(() => {
		const s = document.getElementById('layer');
		const o = [...s.options].find((o) => o.text.startsWith('demo-terrain '));
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return o.text;
	})()`, 5*time.Second)
	if v, err := chromedp.Run(browser, chromedp.Value(chromedp.ID("layer"))); err != nil || v != "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8" {
		fail("layer picker value = %q (%v) after picking %q, want the demo layer's id", v, err, layerLabel)
	}
	wait("the layer's description", `document.getElementById('layer-info').textContent.includes('footprint')`, 5*time.Second)
	shot("layer")

	// 3. Draw a rectangle with the mouse: press "Draw a rectangle", click a
	// corner, move, click the opposite corner. The map's own mouse-position
	// control tells what coordinates the two points are.
	box, err := chromedp.Run(browser, chromedp.Evaluate[[]float64](`(() => {
		const r = document.getElementById('map').getBoundingClientRect();
		return [r.left, r.top, r.width, r.height];
	})()`))
	if err != nil || len(box) != 4 || box[2] < 200 || box[3] < 200 {
		fail("map box = %v (%v), want at least 200×200 px", box, err)
	}
	x1, y1 := box[0]+box[2]*0.45, box[1]+box[3]*0.45 // north-west corner
	x2, y2 := box[0]+box[2]*0.55, box[1]+box[3]*0.55 // south-east corner
	at := func(x, y float64) [2]float64 {
		t.Helper()
		if err := chromedp.Do(browser, chromedp.MouseEvent(chromedp.MouseMoved, x, y)); err != nil {
			fail("move the mouse to %v,%v: %v", x, y, err)
		}
		s := wait("the mouse position", `(() => { const t = document.querySelector('.ol-mouse-position')?.textContent ?? '';
			return /^-?\d/.test(t) && t; })()`, 5*time.Second)
		var c [2]float64
		if _, err := fmt.Sscanf(s, "%g, %g", &c[0], &c[1]); err != nil {
			fail("mouse position %q: %v", s, err)
		}
		return c
	}
	nw, se := at(x1, y1), at(x2, y2)
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.ID("draw-btn")),
		chromedp.MouseEvent(chromedp.MouseMoved, x1, y1),
		chromedp.MouseClickXY(x1, y1),
		chromedp.MouseEvent(chromedp.MouseMoved, (x1+x2)/2, (y1+y2)/2),
		chromedp.MouseEvent(chromedp.MouseMoved, x2, y2),
		chromedp.MouseClickXY(x2, y2),
	); err != nil {
		fail("draw a rectangle: %v", err)
	}
	drawn := wait("the drawn corners", `(() => {
		const v = ['minx', 'miny', 'maxx', 'maxy'].map((id) => document.getElementById(id).value);
		return v.every((s) => s !== '') && document.getElementById('draw-btn').getAttribute('aria-pressed') === 'false' && v.join(' ');
	})()`, 5*time.Second)
	var got [4]float64
	for i, f := range strings.Fields(drawn) {
		got[i], _ = strconv.ParseFloat(f, 64)
	}
	want := [4]float64{nw[0], se[1], se[0], nw[1]}
	tol := 3 * (se[0] - nw[0]) / (x2 - x1) // three pixels
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			fail("drawn corners = %v, want %v within %g (from the map's mouse position)", got, want, tol)
		}
	}
	wait("an estimate of the drawn area", `[...document.querySelectorAll('#estimate-body dt')].some((dt) => dt.textContent === 'Tiles')`, 10*time.Second)
	shot("drawn")

	// 4. Type the specification's example corners over the drawn ones.
	corners := map[string]string{
		"minx": "34.811938017107494", "miny": "31.95475033759175",
		"maxx": "34.82237261707599", "maxy": "31.96426962177354",
	}
	for _, id := range []string{"minx", "miny", "maxx", "maxy"} {
		if err := chromedp.Do(browser,
			chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById('`+id+`'); e.focus(); e.select(); })()`),
			chromedp.KeyEvent(corners[id]),
		); err != nil {
			fail("type %s: %v", id, err)
		}
		if v, err := chromedp.Run(browser, chromedp.Value(chromedp.ID(id))); err != nil || v != corners[id] {
			fail("#%s = %q (%v) after typing, want %q", id, v, err, corners[id])
		}
	}
	shot("typed")

	// 5. Choose zoom 14 by its label and wait for the estimate: 18 tiles.
	zoomLabel := wait("zoom 14 chosen", `(() => {
		const s = document.getElementById('resolution');
		const o = [...s.options].find((o) => o.text.startsWith('Zoom 14 '));
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return o.text;
	})()`, 5*time.Second)
	tiles := wait("the estimate of 18 tiles", `(() => {
		const dt = [...document.querySelectorAll('#estimate-body dt')].find((dt) => dt.textContent === 'Tiles');
		const dd = dt?.nextElementSibling?.textContent ?? '';
		return dd.startsWith('18 ') && dd;
	})()`, 10*time.Second)
	if tiles != "18 (zoom 0–14)" {
		fail("estimate says %q tiles for %q, want 18 (zoom 0–14)", tiles, zoomLabel)
	}
	shot("estimate")

	// 6. Export and follow the job until it is Completed with a link.
	if err := chromedp.Do(browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		fail("click Export: %v", err)
	}
	wait("the export started", `document.getElementById('submit-info').textContent.startsWith('Export started')`, 10*time.Second)
	shot("submitted")
	const rowJS = `[...document.querySelectorAll('#jobs-list > li.job')].find((li) =>
		li.querySelector('.job-title')?.textContent.endsWith('· zoom 14'))`
	href := wait("the job Completed with a download link", `(() => {
		const li = `+rowJS+`;
		const a = li?.querySelector('.actions a[download]');
		return li && li.querySelector('.badge')?.textContent === 'Completed' && a?.href;
	})()`, 30*time.Second)
	progress := wait("the progress bar", `(() => {
		const li = `+rowJS+`;
		const p = li?.querySelector('progress');
		return p && !p.hidden && p.getAttribute('aria-label') + ' = ' + p.value + '; ' + p.nextElementSibling.textContent;
	})()`, 5*time.Second)
	if !strings.Contains(progress, " = 100; ") || !strings.HasSuffix(progress, "18 of 18 tiles") {
		t.Errorf("progress bar of the completed job: %q, want 100 and 18 of 18 tiles", progress)
	}
	shot("completed")

	// 7. Download the package through the page's link, with Go's client.
	// The link must be the API's fileUri with the token.
	jobID := strings.TrimPrefix(wait("the job's id", `(() => { const li = `+rowJS+`; return li?.querySelector('progress')?.id; })()`, time.Second), "progress-")
	a := api{base: base, token: token}
	fileURI, _ := a.getJSON(t, "/jobs/"+jobID)["result"].(map[string]any)["fileUri"].(string)
	u, err := url.Parse(href)
	if err != nil || u.Query().Get("token") != token {
		t.Errorf("download link %q (%v): want ?token= with the session's token", href, err)
	}
	if f, ferr := url.Parse(fileURI); ferr != nil || u == nil || u.Path != f.Path {
		t.Errorf("download link %s, want the path of the job's fileUri %s (%v)", href, fileURI, ferr)
	}
	path, err := fetchPackage(t, href)
	if err != nil {
		t.Errorf("the page's download link does not work: %v", err)
		path = downloadPackage(t, a, fileURI) // check the package all the same
	}
	if n, byZoom := tileCount(t, path); n != 18 {
		t.Errorf("downloaded package holds %d tiles (%v), want 18", n, byZoom)
	}

	// 8. Export the same request again: the row is marked as ready from
	// the earlier export, and no second job appears.
	if err := chromedp.Do(browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		fail("click Export again: %v", err)
	}
	info := wait("the answer to the second export", `(() => { const t = document.getElementById('submit-info').textContent;
		return t.startsWith('Ready from an earlier export') && t; })()`, 10*time.Second)
	marked := wait("the row marked as ready from an earlier export", `(() => {
		const li = `+rowJS+`;
		const c = li?.querySelector('.cached');
		return c && !c.hidden && c.offsetParent !== null && c.textContent + ' | ' + li.querySelector('.actions a[download]')?.href;
	})()`, 10*time.Second)
	if marked != "Ready from an earlier export | "+href {
		t.Errorf("marked row = %q, want the mark on the row whose link is %s", marked, href)
	}
	if n, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll('#jobs-list > li.job').length`)); err != nil || n != 1 {
		t.Errorf("jobs panel lists %d rows (%v) after the second export, want the one job", n, err)
	}
	t.Logf("second export: %s", info)
	shot("cached")
}

// openURL reads the address the exporter prints for the web tool, with
// 127.0.0.1 for localhost (the browser resolves no other name).
func openURL(t *testing.T, p *proc) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "open "); ok && strings.Contains(u, "/?token=") {
			return strings.Replace(u, "//localhost:", "//127.0.0.1:", 1)
		}
	}
	t.Fatalf("no open …/?token= line printed; stdout: %q", p.stdout.String())
	return ""
}

// fetchPackage GETs a download link as it is, token included, checks
// that the answer is a GeoPackage (its content type, the SQLite header and
// the application_id "GPKG") and keeps it in a file.
func fetchPackage(t *testing.T, href string) (string, error) {
	t.Helper()
	resp, err := http.Get(href)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/geopackage+sqlite3" {
		return "", fmt.Errorf("GET %s = %d %s %.200s", href, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if len(b) < 100 || !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) || string(b[68:72]) != "GPKG" {
		return "", fmt.Errorf("GET %s: %d bytes that are not a GeoPackage (header %q)", href, len(b), b[:min(len(b), 16)])
	}
	path := filepath.Join(t.TempDir(), "web.gpkg")
	return path, os.WriteFile(path, b, 0o644)
}

// pageStateJS sums up what the page shows, for failure reports.
const pageStateJS = `JSON.stringify({
	auth: document.getElementById('auth-state').textContent,
	signin: !document.getElementById('signin').hidden && document.getElementById('token-error').textContent,
	layer: document.getElementById('layer').value,
	corners: ['minx', 'miny', 'maxx', 'maxy'].map((id) => document.getElementById(id).value),
	resolution: document.getElementById('resolution').value,
	errors: [...document.querySelectorAll('.error')].map((e) => e.id + ': ' + e.textContent).filter((s) => !s.endsWith(': ')),
	estimate: document.getElementById('estimate-body').innerText,
	submit: document.getElementById('submit-info').textContent,
	jobsStatus: document.getElementById('jobs-status').textContent,
	jobs: [...document.querySelectorAll('#jobs-list > li')].map((li) => li.innerText),
})`
