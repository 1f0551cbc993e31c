package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/testenv"
)

// webTool is the web export tool of a running `exporter all`, open in
// headless Chromium at 1280×800, with what a test of the page needs: a
// screenshot of every step into t.ArtifactDir() (run go test -artifacts
// -outputdir DIR to keep them) that also fails the test for any console
// error, uncaught exception or failed request since the last one.
type webTool struct {
	t       *testing.T
	a       api
	dir     string // the exporter's working directory, ./data in it
	pageURL string
	browser context.Context
	page    *pageWatch
	step    int
}

// regionView opens the web tool at a view of the specification's example
// region (#map=zoom/latitude/longitude), as a shared link would, where the
// demo layer's footprint alone would show the whole world: the tests draw
// at fractions of the map.
const regionView = "#map=7.8/31.4/35.05"

// openWebTool starts `exporter all`, opens the address it prints for the
// web tool (at regionView) in a viewport of exactly 1280×800, checks that
// the token left the address bar, and waits for the signed-in state, the
// layers and the view. The browser is closed after timeout.
func openWebTool(t *testing.T, timeout time.Duration) *webTool {
	t.Helper()
	return openWebToolWith(t, timeout, nil)
}

// openWebToolWith is openWebTool with more EXPORTER_* settings.
func openWebToolWith(t *testing.T, timeout time.Duration, settings map[string]string) *webTool {
	t.Helper()
	skipShort(t)
	t.Parallel()

	dir := t.TempDir()
	env := map[string]string{"EXPORTER_HTTP_ADDR": testenv.FreeAddr(t), "EXPORTER_HTTP_RATE_LIMIT": "0"}
	maps.Copy(env, settings)
	p := start(t, dir, env, "all")
	base, token := waitURL(t, p)
	waitReady(t, base, p)
	w := &webTool{t: t, a: api{base: base, token: token}, dir: dir, pageURL: openURL(t, p) + regionView}

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	w.browser = testenv.Browser(t, ctx, 1280, 800)
	w.page = watchPage(t, w.browser)

	if err := chromedp.Do(w.browser, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(w.pageURL), chromedp.WaitVisible(chromedp.ID("export-form"))); err != nil {
		w.fail("open %s: %v", w.pageURL, err)
	}
	if loc, err := chromedp.Run(w.browser, chromedp.Location()); err != nil || strings.Contains(loc, "token=") {
		t.Errorf("address bar after load = %q (%v), want the token removed", loc, err)
	}
	w.wait("the signed-in state", `document.getElementById('auth-state').textContent.startsWith('Signed in')`, 10*time.Second)
	w.wait("the layers", `document.querySelectorAll('#layer option').length > 0`, 10*time.Second)
	// The view the address named stays (the demo layer's world footprint
	// does not replace it), and the address keeps it as the map saves it.
	w.wait("the address's view kept", `location.hash === '#map=7.80/31.40000/35.05000'`, 10*time.Second)
	w.shot("opened")
	return w
}

// tokenFor mints a client token for sub with `exporter token`, signed by
// the secret the running exporter keeps in its data directory.
func (w *webTool) tokenFor(sub string) string {
	w.t.Helper()
	cmd := exec.Command(binary(w.t), "token", "-sub", sub, "-role", "client")
	cmd.Dir = w.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXPORTER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("exporter token -sub %s: %v", sub, err)
	}
	return strings.TrimSpace(string(out))
}

// shotOf checks what the tab of ctx reported and saves its screenshot;
// shot does so for the first tab.
func (w *webTool) shotOf(ctx context.Context, pw *pageWatch, name string) {
	w.t.Helper()
	w.step++
	pw.check(w.t, ctx, name)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		w.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(w.t.ArtifactDir(), fmt.Sprintf("web-%02d-%s.png", w.step, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.t.Logf("screenshot: %s", path)
}

func (w *webTool) shot(name string) {
	w.t.Helper()
	w.shotOf(w.browser, w.page, name)
}

// fail reports what the page shows, with a screenshot, and stops.
func (w *webTool) fail(format string, args ...any) {
	w.t.Helper()
	w.shot("failure")
	state, err := chromedp.Run(w.browser, chromedp.Evaluate[string](pageStateJS))
	if err != nil {
		state = "(page state unavailable: " + err.Error() + ")"
	}
	w.t.Fatalf("%s\npage: %s", fmt.Sprintf(format, args...), state)
}

// wait polls a JavaScript expression until it is truthy and returns its
// value.
func (w *webTool) wait(what, expr string, timeout time.Duration) string {
	w.t.Helper()
	v, err := chromedp.Run(w.browser, chromedp.Poll[any](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		w.fail("waiting for %s: %v", what, err)
	}
	return fmt.Sprint(v)
}

// pickDemoLayer picks the demo layer by its label, as a person reads it,
// and waits for its imagery, drawn from the trigger's preview tiles.
func (w *webTool) pickDemoLayer() {
	w.t.Helper()
	layerLabel := w.wait("the demo layer picked", `(() => {
		const s = document.getElementById('layer');
		const o = [...s.options].find((o) => o.text.startsWith('demo-terrain '));
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return o.text;
	})()`, 5*time.Second)
	if v, err := chromedp.Run(w.browser, chromedp.Value(chromedp.ID("layer"))); err != nil || v != catalog.DemoLayerID {
		w.fail("layer picker value = %q (%v) after picking %q, want the demo layer's id", v, err, layerLabel)
	}
	w.wait("the layer's description", `document.getElementById('layer-info').textContent.includes('footprint')`, 5*time.Second)
	w.wait("preview tiles drawn", `Number(document.getElementById('map').dataset.previewLoaded) > 0`, 15*time.Second)
	if failed := w.wait("the preview tile count", `document.getElementById('map').dataset.previewFailed`, time.Second); failed != "0" {
		w.fail("%s preview tiles failed to load", failed)
	}
	if ok, other := w.page.tiles(); ok == 0 || len(other) > 0 {
		w.fail("preview tile answers: %d of 200 with an image, others %v; want some and no others", ok, other)
	}
	w.shot("layer")
}

// specCorners are the corners of the specification's example bbox, by the
// ids of the page's corner inputs.
var specCorners = map[string]string{
	"minx": "34.811938017107494", "miny": "31.95475033759175",
	"maxx": "34.82237261707599", "maxy": "31.96426962177354",
}

// typeCorners types specCorners into the corner inputs, as a person
// does: over the active rectangle's, or, after "Corners", a new one's.
func (w *webTool) typeCorners() {
	w.t.Helper()
	for _, id := range []string{"minx", "miny", "maxx", "maxy"} {
		if err := chromedp.Do(w.browser,
			chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById('`+id+`'); e.focus(); e.select(); })()`),
			chromedp.KeyEvent(specCorners[id]),
		); err != nil {
			w.fail("type %s: %v", id, err)
		}
		if v, err := chromedp.Run(w.browser, chromedp.Value(chromedp.ID(id))); err != nil || v != specCorners[id] {
			w.fail("#%s = %q (%v) after typing, want %q", id, v, err, specCorners[id])
		}
	}
}

// mapBox is the map's left, top, width and height in CSS pixels.
func (w *webTool) mapBox() [4]float64 {
	w.t.Helper()
	box, err := chromedp.Run(w.browser, chromedp.Evaluate[[]float64](`(() => {
		const r = document.getElementById('map').getBoundingClientRect();
		return [r.left, r.top, r.width, r.height];
	})()`))
	if err != nil || len(box) != 4 || box[2] < 200 || box[3] < 200 {
		w.fail("map box = %v (%v), want at least 200×200 px", box, err)
	}
	return [4]float64(box)
}

// at moves the mouse to x, y and returns the longitude and latitude the
// map's own mouse-position control says are there.
func (w *webTool) at(x, y float64) [2]float64 {
	w.t.Helper()
	if err := chromedp.Do(w.browser, chromedp.MouseEvent(chromedp.MouseMoved, x, y)); err != nil {
		w.fail("move the mouse to %v,%v: %v", x, y, err)
	}
	var c [2]float64
	s := w.wait("the mouse position", `(() => { const t = document.querySelector('.ol-mouse-position')?.textContent ?? '';
		return /^-?\d/.test(t) && t; })()`, 5*time.Second)
	if _, err := fmt.Sscanf(s, "%g, %g", &c[0], &c[1]); err != nil {
		w.fail("mouse position %q: %v", s, err)
	}
	return c
}

// completed follows the jobs panel's row of job id until it is Completed
// with a download link, and returns the link.
func (w *webTool) completed(id string, timeout time.Duration) string {
	w.t.Helper()
	return w.wait("job "+id+" Completed with a download link", `(() => {
		const li = `+rowJS(id)+`;
		const a = li?.querySelector('.actions a[download][data-link="package"]');
		return li?.dataset.status === 'Completed' && a?.href;
	})()`, timeout)
}

// rowJS is a JavaScript expression for the jobs panel's row of job id.
func rowJS(id string) string {
	return `document.querySelector('#jobs-list > li[data-job-id="` + id + `"]')`
}

// TestWebToolEndToEnd drives the web export tool of `exporter all` in
// headless Chromium at 1280×800 as a person does: it opens the address the
// exporter prints, picks the demo layer and sees its preview tiles drawn,
// draws a rectangle on the map, types the specification's example corners,
// chooses zoom 14 as its finest, waits for the estimate of 18 tiles,
// exports (POST /export with the rectangle as the area), follows the
// job to Completed, downloads the package through the page's link, and
// exports the same area again: the answer is the package, and the job's
// row, which rendered it, is not marked as ready from an earlier export.
// Someone else then exports the area at zoom 13, and this person's export
// of it is answered from that package: only that row is marked, in this
// tab and in a new one. The long package name of that
// answer must stay in its panel, at 1280×800 and in a narrow window. Rows
// of the jobs panel are found by their data-job-id and data-status, not by
// their text. Any console error, uncaught exception or failed request of
// the page fails the test. A screenshot of every step is written to
// t.ArtifactDir(): run go test -artifacts -outputdir DIR to keep them.
func TestWebToolEndToEnd(t *testing.T) {
	w := openWebTool(t, 90*time.Second)
	w.pickDemoLayer()

	// 3. Draw a rectangle with the mouse: press "Rectangle", click a
	// corner, move, click the opposite corner. The map's own mouse-position
	// control tells what coordinates the two points are.
	box := w.mapBox()
	x1, y1 := box[0]+box[2]*0.45, box[1]+box[3]*0.45 // north-west corner
	x2, y2 := box[0]+box[2]*0.55, box[1]+box[3]*0.55 // south-east corner
	nw, se := w.at(x1, y1), w.at(x2, y2)
	if err := chromedp.Do(w.browser,
		chromedp.Click(chromedp.ID("draw-rect-btn")),
		chromedp.MouseEvent(chromedp.MouseMoved, x1, y1),
		chromedp.MouseClickXY(x1, y1),
		chromedp.MouseEvent(chromedp.MouseMoved, (x1+x2)/2, (y1+y2)/2),
		chromedp.MouseEvent(chromedp.MouseMoved, x2, y2),
		chromedp.MouseClickXY(x2, y2),
	); err != nil {
		w.fail("draw a rectangle: %v", err)
	}
	drawn := w.wait("the drawn corners", `(() => {
		const v = ['minx', 'miny', 'maxx', 'maxy'].map((id) => document.getElementById(id).value);
		return v.every((s) => s !== '') && document.getElementById('draw-rect-btn').getAttribute('aria-pressed') === 'false' && v.join(' ');
	})()`, 5*time.Second)
	var got [4]float64
	for i, f := range strings.Fields(drawn) {
		got[i], _ = strconv.ParseFloat(f, 64)
	}
	want := [4]float64{nw[0], se[1], se[0], nw[1]}
	tol := 3 * (se[0] - nw[0]) / (x2 - x1) // three pixels
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			w.fail("drawn corners = %v, want %v within %g (from the map's mouse position)", got, want, tol)
		}
	}
	w.wait("an estimate of the drawn area", `[...document.querySelectorAll('#estimate-body dt')].some((dt) => dt.textContent === 'Tiles')`, 10*time.Second)
	w.shot("drawn")

	// 4. Type the specification's example corners over the drawn ones.
	w.typeCorners()
	corners := specCorners
	w.shot("typed")

	// 5. Choose zoom 14 as the selection's finest by its label and wait for
	// the estimate: 18 tiles.
	zoomLabel := w.wait("zoom 14 chosen", `(() => {
		const s = document.querySelector('#selections > li[data-selection-index="0"] select[data-zoom="max"]');
		const o = s && [...s.options].find((o) => o.text.startsWith('14 '));
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return o.text;
	})()`, 5*time.Second)
	tiles := w.wait("the estimate of 18 tiles", `(() => {
		const dt = [...document.querySelectorAll('#estimate-body dt')].find((dt) => dt.textContent === 'Tiles');
		const dd = dt?.nextElementSibling?.textContent ?? '';
		return dd.startsWith('18 ') && dd;
	})()`, 10*time.Second)
	if tiles != "18 (zoom 0–14)" {
		w.fail("estimate says %q tiles for %q, want 18 (zoom 0–14)", tiles, zoomLabel)
	}
	w.shot("estimate")

	// 6. Export and follow the job until it is Completed with a link.
	if err := chromedp.Do(w.browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export: %v", err)
	}
	w.wait("the export started", `document.getElementById('submit-info').textContent.startsWith('Export started')`, 10*time.Second)
	// The panel lists the new job; its row carries the job's id, which is
	// the id the API lists for this subject.
	jobID := w.wait("the job's row", `(() => { const rows = document.querySelectorAll('#jobs-list > li[data-job-id]');
		return rows.length === 1 && rows[0].dataset.jobId; })()`, 10*time.Second)
	a, token := w.a, w.a.token
	if jobs := asSlice(a.getJSON(t, "/jobs")["jobs"]); len(jobs) != 1 || jobs[0].(map[string]any)["id"] != jobID {
		t.Errorf("GET /jobs = %v, want the one job %s the panel shows", jobs, jobID)
	}
	w.shot("submitted")
	row := rowJS(jobID)
	href := w.completed(jobID, 30*time.Second)
	progress := w.wait("the progress bar", `(() => {
		const li = `+row+`;
		const p = li?.querySelector('progress');
		return p && !p.hidden && p.getAttribute('aria-label') + ' = ' + p.value + '; ' + p.nextElementSibling.textContent;
	})()`, 5*time.Second)
	if !strings.Contains(progress, " = 100; ") || !strings.HasSuffix(progress, "18 of 18 tiles") {
		t.Errorf("progress bar of the completed job: %q, want 100 and 18 of 18 tiles", progress)
	}
	w.shot("completed")

	// 7. Download the package through the page's link, with Go's client.
	// The link must be the API's fileUri with the token.
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

	// 8. Export the same request again: the answer is the finished
	// package, no second job appears, and the row of the job, which
	// rendered the package before this person's eyes, is not marked as
	// ready from an earlier export.
	if err := chromedp.Do(w.browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export again: %v", err)
	}
	info := w.wait("the answer to the second export", `(() => { const t = document.getElementById('submit-info').textContent;
		return t.startsWith('Ready from an earlier export') && t; })()`, 10*time.Second)
	t.Logf("second export: %s", info)
	const markedJS = `[...document.querySelectorAll('#jobs-list > li')].map((li) => {
		const c = li.querySelector('.cached');
		return li.dataset.jobId + ':' + (c && !c.hidden && c.offsetParent !== null ? 'cached' : 'rendered');
	}).join(' ')`
	if jobs := asSlice(a.getJSON(t, "/jobs")["jobs"]); len(jobs) != 1 {
		t.Errorf("GET /jobs lists %d jobs after the identical request, want the one job %s", len(jobs), jobID)
	}
	if fromCache := a.getJSON(t, "/jobs/"+jobID)["fromCache"]; fromCache != false {
		t.Errorf("GET /jobs/%s: fromCache = %v for the job this subject created, want false", jobID, fromCache)
	}

	// Someone else exports the rectangle at zoom 13; then this person asks
	// for it: that answer comes from the other's package, and only its
	// row is marked.
	other := api{base: a.base, token: w.tokenFor("someone-else")}
	res := 0.703125 / (1 << 13)
	theirs := other.postJSON(t, "/export", fmt.Sprintf(`{"dbId": %q, "roi": {"type": "FeatureCollection", "features": [{"type": "Feature",
		"geometry": {"type": "Polygon", "coordinates": [[[%[2]s, %[3]s], [%[4]s, %[3]s], [%[4]s, %[5]s], [%[2]s, %[5]s], [%[2]s, %[3]s]]]},
		"properties": {"minResolutionDeg": 0.703125, "maxResolutionDeg": %[6]v}}]}}`,
		catalog.DemoLayerID, corners["minx"], corners["miny"], corners["maxx"], corners["maxy"], res))
	cachedID, _ := theirs["jobId"].(string)
	waitCompleted(t, other, cachedID)
	w.chooseZoom(0, "max", 13)
	if err := chromedp.Do(w.browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export at zoom 13: %v", err)
	}
	info = w.wait("the answer from the other's package", `(() => { const t = document.getElementById('submit-info').textContent;
		return t.startsWith('Ready from an earlier export') && t; })()`, 10*time.Second)
	// The panel lists the jobs again at once after an answer: the new row
	// and the old one come from the same GET /jobs.
	w.wait("the row of the other's job", rowJS(cachedID)+` !== null`, 10*time.Second)
	if marks, err := chromedp.Run(w.browser, chromedp.Evaluate[string](markedJS)); err != nil || marks != cachedID+":cached "+jobID+":rendered" {
		t.Errorf("jobs panel after an answer from another's package = %q (%v), want %s marked and %s not", marks, err, cachedID, jobID)
	}
	if fromCache := a.getJSON(t, "/jobs/"+cachedID)["fromCache"]; fromCache != true {
		t.Errorf("GET /jobs/%s: fromCache = %v for the job answered from the cache, want true", cachedID, fromCache)
	}
	w.shot("cached")

	// 9. The long package name of that answer stays in its panel, here and
	// in a narrow window, where the panels stack below the map.
	const overflowJS = `(() => {
		const info = document.getElementById('submit-info'), panel = info.closest('.panel');
		const r = info.getBoundingClientRect(), m = document.getElementById('map').getBoundingClientRect();
		const out = [];
		if (!info.querySelector('.pkg')) out.push('no package name shown');
		if (info.scrollWidth > info.clientWidth + 1) out.push('the message scrolls sideways: ' + info.scrollWidth + ' > ' + info.clientWidth);
		if (panel.scrollWidth > panel.clientWidth + 1) out.push('the panel scrolls sideways: ' + panel.scrollWidth + ' > ' + panel.clientWidth);
		if (r.right > panel.getBoundingClientRect().right + 1) out.push('the message ends at ' + r.right + ', past its panel');
		if (r.right > m.left + 1 && r.left < m.right - 1 && r.bottom > m.top + 1 && r.top < m.bottom - 1) out.push('the message overlaps the map');
		if (document.documentElement.scrollWidth > innerWidth + 1) out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + innerWidth);
		return out.join('; ');
	})()`
	for _, size := range [][2]int64{{1280, 800}, {480, 900}} {
		if err := chromedp.Do(w.browser, chromedp.EmulateViewport(size[0], size[1])); err != nil {
			w.fail("resize the window to %v: %v", size, err)
		}
		w.wait("the layout at the new size", fmt.Sprintf(`innerWidth === %d`, size[0]), 5*time.Second)
		if err := chromedp.Do(w.browser, chromedp.ScrollIntoView(chromedp.ID("submit-info"))); err != nil {
			w.fail("scroll to the message: %v", err)
		}
		if problem, err := chromedp.Run(w.browser, chromedp.Evaluate[string](overflowJS)); err != nil || problem != "" {
			t.Errorf("at %d×%d, the message %q: %s (%v)", size[0], size[1], info, problem, err)
		}
		w.shot(fmt.Sprintf("message-%dx%d", size[0], size[1]))
	}

	// 10. A new tab, which shares no memory with this one, marks the job
	// as well: the mark comes from the API.
	tab, closeTab := chromedp.NewContext(w.browser)
	defer closeTab()
	tabPage := watchPage(t, tab)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(w.pageURL)); err != nil {
		w.fail("open the page in a new tab: %v", err)
	}
	v, err := chromedp.Run(tab, chromedp.Poll[any](`document.querySelectorAll('#jobs-list > li[data-status="Completed"]').length === 2 && `+markedJS,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil || v != cachedID+":cached "+jobID+":rendered" {
		t.Errorf("a new tab marks the jobs %v (%v), want %s ready from an earlier export and %s not", v, err, cachedID, jobID)
	}
	w.shotOf(tab, tabPage, "new-tab")
}

// pageWatch collects what a page reports that a person would call broken:
// console errors, uncaught exceptions and browser log errors (a failed
// request among them), and the answers to preview tile requests.
type pageWatch struct {
	mu       sync.Mutex
	problems []string
	reported int
	allowed  []string // problems containing one of these are expected
	tileOK   int      // preview tiles answered 200 with an image
	tileElse []string // any other answer to a preview tile request
}

// watchPage starts collecting from the tab of ctx; call it before the tab
// navigates.
func watchPage(t *testing.T, ctx context.Context) *pageWatch {
	t.Helper()
	w := &pageWatch{}
	// Listen calls back on the goroutine that reads the browser's messages,
	// in order: an event that came before a command's reply is seen before
	// that command returns, so check sees everything up to its screenshot.
	err := chromedp.Listen(ctx, func(ev any) {
		var problem string
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, cmp.Or(a.Description, string(a.Value)))
				}
				problem = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
			}
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			problem = "uncaught: " + d.Text
			if d.Exception != nil {
				problem += " " + d.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problem = "browser log: " + ev.Entry.Text + " " + withoutQuery(ev.Entry.URL)
			}
		case *network.EventResponseReceived:
			r := ev.Response
			if !strings.Contains(r.URL, "/tiles/") {
				return
			}
			w.mu.Lock()
			if r.Status == 200 && strings.HasPrefix(r.MimeType, "image/") {
				w.tileOK++
			} else {
				w.tileElse = append(w.tileElse, fmt.Sprintf("%d %s %s", r.Status, r.MimeType, withoutQuery(r.URL)))
			}
			w.mu.Unlock()
		}
		if problem != "" {
			w.mu.Lock()
			w.problems = append(w.problems, problem)
			w.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("watch the page: %v", err)
	}
	return w
}

// check fails the test for every problem reported since the last check.
// It runs a command first, so that the events before it have been seen.
func (w *pageWatch) check(t *testing.T, ctx context.Context, step string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`0`)); err != nil {
		t.Errorf("%s: the page does not answer: %v", step, err)
	}
	w.mu.Lock()
	news := w.problems[w.reported:]
	w.reported = len(w.problems)
	allowed := w.allowed
	w.mu.Unlock()
	for _, p := range news {
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(p, a) }) {
			t.Errorf("%s: the page reported %s", step, p)
		}
	}
}

// allow makes the problems that contain text expected from now on, as the
// browser's log of a 400 the test provokes.
func (w *pageWatch) allow(text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.allowed = append(w.allowed, text)
}

// tiles returns the count of preview tiles answered 200 with an image, and
// every other answer to a preview tile request.
func (w *pageWatch) tiles() (ok int, other []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tileOK, slices.Clone(w.tileElse)
}

// withoutQuery drops the query of a URL, where the page puts its token.
func withoutQuery(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}

// openURL reads the address the exporter prints for the web tool, with
// 127.0.0.1 for localhost (the browser resolves no other name).
func openURL(t *testing.T, p *proc) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "open "); ok && strings.Contains(u, "/?token=") {
			return strings.Replace(u, "//localhost:", "//127.0.0.1:", 1)
		}
	}
	t.Fatalf("no open …/?token= line printed; stdout: %q", p.logs.String())
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
	selections: [...document.querySelectorAll('#selections > li')].map((li) => li.innerText),
	errors: [...document.querySelectorAll('.error')].map((e) => e.id + ': ' + e.textContent).filter((s) => !s.endsWith(': ')),
	estimate: document.getElementById('estimate-body').innerText,
	submit: document.getElementById('submit-info').textContent,
	jobsStatus: document.getElementById('jobs-status').textContent,
	jobs: [...document.querySelectorAll('#jobs-list > li')].map((li) => li.innerText),
})`
