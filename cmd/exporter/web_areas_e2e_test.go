package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
)

// TestWebToolAreasEndToEnd drives the web tool's selections in headless
// Chromium at 1280×800 against a real `exporter all`: it draws a polygon on
// the map and sees its default zoom stay within the page's size budget
// (500 MB) while the next finer zoom would not, sets its zooms, moves a
// vertex, draws a
// polygon whose edges cross and sees the API's reason next to it, deletes
// it, imports a
// GeoJSON file of two features with different zoom ranges through the file
// input, imports a zipped shapefile in Web Mercator and deletes it, sees
// why the whole layer cannot be exported, checks that the Export button and the messages under it are
// visible without scrolling the page, exports, follows the job to
// Completed and downloads the package and its metadata JSON through the
// page's links. The package must hold exactly the tiles per zoom that the
// request's area covers, computed here with area.Cover from the area the
// metadata records, whose features must be the drawn polygon (its
// vertices within three pixels of the clicks) and the file's two, with
// the zooms chosen. Last it exports the polygon at a finer zoom and
// cancels that job, which the page asks about first. Any console error
// fails the test.
func TestWebToolAreasEndToEnd(t *testing.T) {
	w := openWebTool(t, 90*time.Second)
	w.pickDemoLayer()

	// 1. Draw a polygon: press "Polygon", click four corners, then the first
	// one again to close it. The map's mouse-position control tells what
	// coordinates the clicks are.
	box := w.mapBox()
	px := func(fx, fy float64) [2]float64 { return [2]float64{box[0] + box[2]*fx, box[1] + box[3]*fy} }
	clicks := [][2]float64{px(0.35, 0.15), px(0.55, 0.18), px(0.50, 0.32), px(0.38, 0.30)}
	var lonlat [][2]float64
	for _, c := range clicks {
		lonlat = append(lonlat, w.at(c[0], c[1]))
	}
	w.draw("draw-poly-btn", append(clicks, clicks[0]))
	const polygonJS = `document.querySelector('#selections > li[data-selection-index="0"][data-kind="polygon"]')`
	// Its default zoom: refined from the server's estimate of the polygon
	// alone (data-zoom-pending while that runs), then estimated.
	byDefault := w.wait("the polygon's default zoom and estimate", `(() => {
		const li = `+polygonJS+`;
		const est = li?.querySelector('[data-selection-estimate]')?.dataset.selectionEstimate;
		return li && !li.dataset.zoomPending && li.dataset.zoomFrom === 'default' && est &&
			li.querySelector('select[data-zoom="max"]').value + ' ' + est;
	})()`, 15*time.Second)
	var zDefault int
	var bytesDefault int64
	if _, err := fmt.Sscanf(byDefault, "%d %d", &zDefault, &bytesDefault); err != nil {
		w.fail("default zoom and bytes %q: %v", byDefault, err)
	}
	w.shot("polygon")
	if zDefault >= 18 || bytesDefault > 500e6 {
		t.Errorf("polygon's default: zoom %d, %d bytes; want coarser than the layer's finest (18) and at most 500 MB", zDefault, bytesDefault)
	}
	// One zoom finer is over the budget: the default is the finest within it.
	finer := w.chooseZoom(0, "max", zDefault+1)
	if finer <= 500e6 {
		t.Errorf("polygon at zoom %d estimated %d bytes: the default %d was not the finest within 500 MB", zDefault+1, finer, zDefault)
	}
	// Keep the export small: zooms 0 to 12.
	w.chooseZoom(0, "max", 12)

	// Edit it: press Edit and drag its second vertex 40 px east, the
	// easternmost, so the selection's east edge follows.
	moved := [2]float64{clicks[1][0] + 40, clicks[1][1]}
	clicks[1], lonlat[1] = moved, w.at(moved[0], moved[1])
	if err := chromedp.Do(w.browser,
		chromedp.Click(`#selections > li[data-selection-index="0"] button[data-action="edit"]`),
		chromedp.MouseEvent(chromedp.MouseMoved, moved[0]-40, moved[1]),
		chromedp.MouseEvent(chromedp.MousePressed, moved[0]-40, moved[1], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, moved[0]-20, moved[1], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, moved[0], moved[1], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, moved[0], moved[1], chromedp.ButtonLeft),
	); err != nil {
		w.fail("drag the polygon's vertex: %v", err)
	}
	east := w.wait("the polygon's new east edge", `(() => { const li = `+polygonJS+`;
		return li?.querySelector('[data-selection-estimate]').dataset.selectionEstimate && li.dataset.extent.split(',')[2]; })()`, 10*time.Second)
	if e, err := strconv.ParseFloat(east, 64); err != nil || math.Abs(e-lonlat[1][0]) > 3*math.Abs(lonlat[1][0]-lonlat[0][0])/math.Abs(clicks[1][0]-clicks[0][0]) {
		t.Errorf("east edge after the drag = %s (%v), want the vertex's new longitude %g", east, err, lonlat[1][0])
	}
	w.shot("edited")
	if err := chromedp.Do(w.browser, chromedp.Click(`#selections > li[data-selection-index="0"] button[data-action="edit"]`)); err != nil {
		w.fail("press Done: %v", err)
	}

	// A polygon whose edges cross is refused by the API, which names its
	// feature: the page shows the reason next to that selection. Delete it.
	w.page.allow("status of 400 (Bad Request) " + w.a.base + "/estimate")
	bowtie := [][2]float64{px(0.60, 0.60), px(0.70, 0.70), px(0.70, 0.60), px(0.60, 0.70), px(0.60, 0.60)}
	w.draw("draw-poly-btn", bowtie)
	const bowtieJS = `document.querySelector('#selections > li[data-selection-index="1"][data-kind="polygon"]')`
	reason := w.wait("the reason next to the crossed polygon", `(() => { const li = `+bowtieJS+`;
		const e = li?.querySelector('[data-selection-error]')?.textContent;
		return li?.classList.contains('invalid') && e; })()`, 10*time.Second)
	if !strings.HasPrefix(reason, "Area: ") {
		t.Errorf("reason shown next to the crossed polygon = %q, want it to start with Area: ", reason)
	}
	t.Logf("crossed polygon: %s", reason)
	w.shot("crossed-polygon")
	if err := chromedp.Do(w.browser, chromedp.Click(`#selections > li[data-selection-index="1"] button[data-action="delete"]`)); err != nil {
		w.fail("delete the crossed polygon: %v", err)
	}
	w.wait("the crossed polygon deleted", `document.querySelectorAll('#selections > li').length === 1`, 5*time.Second)

	// 2. Import a GeoJSON file of two features with different zoom ranges:
	// 10 to 14, and up to 11 (no minResolutionDeg: from 0).
	roiFile := fmt.Sprintf(twoSites, grid.Zoom(14).Resolution(), grid.Zoom(10).Resolution(), grid.Zoom(11).Resolution())
	path := filepath.Join(t.TempDir(), "sites.geojson")
	if err := os.WriteFile(path, []byte(roiFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(w.browser, chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{path})); err != nil {
		w.fail("choose %s in the file input: %v", path, err)
	}
	imported := w.wait("the two imported selections", `(() => {
		const items = [...document.querySelectorAll('#selections > li[data-kind="imported"]')];
		return items.length === 2 && items.map((li) => li.dataset.selectionIndex + ':' + li.dataset.zoomFrom + ':' +
			li.querySelector('select[data-zoom="min"]').value + '-' + li.querySelector('select[data-zoom="max"]').value).join(' ');
	})()`, 10*time.Second)
	if imported != "1:file:10-14 2:file:0-11" {
		t.Errorf("imported selections (index:zooms from:min-max) = %q, want 1:file:10-14 2:file:0-11", imported)
	}

	// 3. Import a zipped shapefile in Web Mercator with its .prj, made by
	// GDAL from a GeoJSON square: it arrives in longitude and latitude where
	// the square was. Then delete it.
	zipPath := zippedShapefile(t, `{"type":"Polygon","coordinates":[[[34.9,30.5],[35.0,30.5],[35.0,30.6],[34.9,30.6],[34.9,30.5]]]}`)
	if err := chromedp.Do(w.browser, chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{zipPath})); err != nil {
		w.fail("choose %s in the file input: %v", zipPath, err)
	}
	const shpJS = `document.querySelector('#selections > li[data-selection-index="3"][data-kind="imported"]')`
	extent := w.wait("the shapefile's selection", `(() => { const li = `+shpJS+`; return li?.dataset.extent; })()`, 10*time.Second)
	var got [4]float64
	if _, err := fmt.Sscanf(extent, "%g,%g,%g,%g", &got[0], &got[1], &got[2], &got[3]); err != nil {
		w.fail("extent %q: %v", extent, err)
	}
	for i, want := range [4]float64{34.9, 30.5, 35.0, 30.6} {
		if math.Abs(got[i]-want) > 1e-6 {
			t.Errorf("shapefile's square imported with extent %v, want 34.9,30.5,35,30.6", got)
			break
		}
	}
	w.shot("shapefile")
	if err := chromedp.Do(w.browser, chromedp.Click(`#selections > li[data-selection-index="3"] button[data-action="delete"]`)); err != nil {
		w.fail("delete the shapefile's selection: %v", err)
	}
	w.wait("three selections left", `document.querySelectorAll('#selections > li').length === 3 && !`+shpJS, 5*time.Second)

	// 4. Whole layer: the demo layer's footprint at zoom 18 is more tiles
	// than an export may have; the page says so in its own words. Untick it.
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("whole-layer"))); err != nil {
		w.fail("tick Whole layer: %v", err)
	}
	whole := w.wait("the whole layer's problem", `(() => { const e = document.getElementById('area-error').textContent;
		return [...document.querySelectorAll('#selections select')].every((s) => s.disabled) && e; })()`, 10*time.Second)
	if !strings.HasPrefix(whole, "The whole layer holds more than ") || !strings.Contains(whole, "5,000,000") || strings.Contains(whole, "roi") {
		t.Errorf("Whole layer: the page says %q, want the whole layer's tiles over the limit of 5,000,000 in the form's words", whole)
	}
	w.shot("whole-layer")
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("whole-layer"))); err != nil {
		w.fail("untick Whole layer: %v", err)
	}

	// 5. A description, then the estimate of each selection and the total.
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("description")), chromedp.KeyEvent("three areas")); err != nil {
		w.fail("type the description: %v", err)
	}
	total := w.wait("the estimates", `(() => {
		const each = [...document.querySelectorAll('#selections [data-selection-estimate]')].map((p) => p.dataset.selectionEstimate);
		const dt = [...document.querySelectorAll('#estimate-body dt')].find((dt) => dt.textContent === 'Tiles');
		return each.length === 3 && each.every(Boolean) && !document.getElementById('submit-btn').disabled && dt?.nextElementSibling.textContent;
	})()`, 10*time.Second)
	w.shot("areas")

	// 6. At 1280×800 the page does not scroll, and the Export button and
	// the messages under it are in view.
	if problem, err := chromedp.Run(w.browser, chromedp.Evaluate[string](layoutJS)); err != nil || problem != "" {
		t.Errorf("at 1280×800: %s (%v)", problem, err)
	}

	// 7. Export and follow the job to Completed.
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export: %v", err)
	}
	w.wait("the export started", `document.getElementById('submit-info').textContent.startsWith('Export started')`, 10*time.Second)
	jobID := w.wait("the job's row", `(() => { const rows = document.querySelectorAll('#jobs-list > li[data-job-id]');
		return rows.length === 1 && rows[0].dataset.jobId; })()`, 10*time.Second)
	if layout, err := chromedp.Run(w.browser, chromedp.Evaluate[string](layoutJS)); err != nil || layout != "" {
		t.Errorf("at 1280×800 after Export: %s (%v)", layout, err)
	}
	href := w.completed(jobID, 45*time.Second)
	meta := w.wait("the metadata link", `(() => { const a = `+rowJS(jobID)+`?.querySelector('a[data-link="metadata"]'); return a?.href; })()`, time.Second)
	w.shot("completed")

	// 8. Download the package and its metadata through the page's links.
	pkg, err := fetchPackage(t, href)
	if err != nil {
		t.Fatalf("the page's download link: %v", err)
	}
	var md struct {
		Request struct {
			Description string          `json:"description"`
			ROI         json.RawMessage `json:"roi"`
		} `json:"request"`
	}
	resp, err := http.Get(meta)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d, %v", withoutQuery(meta), resp.StatusCode, err)
	}
	if md.Request.Description != "three areas" {
		t.Errorf("metadata description = %q, want %q", md.Request.Description, "three areas")
	}

	// 9. The area sent is what was drawn and imported, and the package
	// holds exactly its tiles per zoom.
	features, want := demoCoverage(t, md.Request.ROI)
	fileFeatures, _ := demoCoverage(t, []byte(roiFile))
	if len(features) != 3 {
		t.Fatalf("metadata roi has %d features, want 3: %s", len(features), md.Request.ROI)
	}
	zooms := func(i int) [2]grid.Zoom { return [2]grid.Zoom{features[i].MinZoom, features[i].MaxZoom} }
	if got := [][2]grid.Zoom{zooms(0), zooms(1), zooms(2)}; !cmp.Equal(got, [][2]grid.Zoom{{0, 12}, {10, 14}, {0, 11}}) {
		t.Errorf("zooms of the features sent = %v, want [0 12] [10 14] [0 11]", got)
	}
	for i, f := range fileFeatures {
		if got, want := features[i+1].Geometry.AsText(), f.Geometry.AsText(); got != want {
			t.Errorf("feature %d sent = %s, want the file's %s", i+1, got, want)
		}
	}
	tol := 3 * math.Abs(lonlat[1][0]-lonlat[0][0]) / math.Abs(clicks[1][0]-clicks[0][0]) // three pixels
	for _, c := range lonlat {
		if !nearVertex(features[0].Geometry.AsText(), c, tol) {
			t.Errorf("drawn polygon %s has no vertex within %g of the click at %v", features[0].Geometry.AsText(), tol, c)
		}
	}
	if n, byZoom := tileCount(t, pkg); !cmp.Equal(byZoom, want) {
		t.Errorf("package holds %d tiles, per zoom %v; want %v (the page's estimate said %s)", n, byZoom, want, total)
	}

	// 10. Export the polygon to zoom 15, thousands of tiles, see the time
	// left, and cancel it: Cancel asks first; "No, keep it" keeps it running, "Yes, cancel it"
	// cancels it.
	w.chooseZoom(0, "max", 15)
	if err := chromedp.Do(w.browser, chromedp.WaitEnabled(chromedp.ID("submit-btn")), chromedp.Click(chromedp.ID("submit-btn"))); err != nil {
		w.fail("click Export: %v", err)
	}
	second := w.wait("the second job's row", `(() => { const li = document.querySelector('#jobs-list > li[data-job-id]:not([data-job-id="`+jobID+`"])');
		return li?.dataset.status === 'In-Progress' && li.querySelector('button[data-action="cancel"]') && li.dataset.jobId; })()`, 10*time.Second)
	press := func(action string) {
		t.Helper()
		if err := chromedp.Do(w.browser, chromedp.Click(`#jobs-list > li[data-job-id="`+second+`"] button[data-action="`+action+`"]`)); err != nil {
			w.fail("press %s: %v", action, err)
		}
	}
	// While it runs, the row tells the time left, once the job's rate is
	// known (etaSeconds).
	left := w.wait("the time left", `(() => { const li = `+rowJS(second)+`;
		return li.dataset.status === 'In-Progress' && /about .+ left/.test(li.textContent) && li.textContent.match(/about [^·]+ left/)[0]; })()`, 20*time.Second)
	t.Logf("running export: %s", left)
	press("cancel")
	question := w.wait("the question", `(() => { const li = `+rowJS(second)+`;
		return li.dataset.status === 'In-Progress' && li.querySelector('button[data-action="confirm-cancel"]') && li.querySelector('.confirm').textContent; })()`, 5*time.Second)
	t.Logf("Cancel asks: %s", question)
	w.shot("cancel-asks")
	press("keep")
	w.wait("the job kept", `(() => { const li = `+rowJS(second)+`;
		return li.dataset.status === 'In-Progress' && li.querySelector('button[data-action="cancel"]') && !li.querySelector('.confirm'); })()`, 5*time.Second)
	press("cancel")
	press("confirm-cancel")
	w.wait("the job cancelled", rowJS(second)+`?.dataset.status === 'Cancelled'`, 10*time.Second)
	if st := w.a.getJSON(t, "/jobs/"+second)["status"]; st != "Cancelled" {
		t.Errorf("GET /jobs/%s: status %v after cancelling in the page, want Cancelled", second, st)
	}
	w.shot("cancelled")
}

// layoutJS says what of the page does not fit the window: a page that
// scrolls, an Export button or messages under it out of view; empty when
// all is in view.
const layoutJS = `(() => {
	const out = [], b = document.getElementById('submit-btn').getBoundingClientRect();
	const msg = document.getElementById('submit-info').parentElement.getBoundingClientRect();
	if (document.documentElement.scrollHeight > innerHeight + 1) out.push('the page scrolls: ' + document.documentElement.scrollHeight + ' > ' + innerHeight);
	if (b.top < 0 || b.bottom > innerHeight) out.push('the Export button is at ' + b.top + '..' + b.bottom);
	if (msg.bottom > innerHeight + 1) out.push('the messages end at ' + msg.bottom);
	return out.join('; ');
})()`

// draw presses the drawing button of id and clicks the points on the map.
func (w *webTool) draw(id string, points [][2]float64) {
	w.t.Helper()
	if err := chromedp.Do(w.browser, chromedp.Click(chromedp.ID(id))); err != nil {
		w.fail("press %s: %v", id, err)
	}
	for _, c := range points {
		if err := chromedp.Do(w.browser, chromedp.MouseEvent(chromedp.MouseMoved, c[0], c[1]), chromedp.MouseClickXY(c[0], c[1])); err != nil {
			w.fail("click %v: %v", c, err)
		}
	}
}

// chooseZoom picks zoom z in the min or max zoom list of the selection at
// index i, as a person picks it by its label, and returns the selection's
// estimated bytes once the page has them.
func (w *webTool) chooseZoom(i int, which string, z int) int64 {
	w.t.Helper()
	sel := fmt.Sprintf(`document.querySelector('#selections > li[data-selection-index="%d"] select[data-zoom=%q]')`, i, which)
	w.wait(fmt.Sprintf("zoom %d chosen as selection %d's %s", z, i, which), `(() => {
		const s = `+sel+`;
		const o = s && [...s.options].find((o) => o.text.startsWith('`+strconv.Itoa(z)+` '));
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`, 5*time.Second)
	v := w.wait("the estimate at the chosen zoom", `(() => {
		const li = `+sel+`?.closest('li');
		return li?.querySelector('select[data-zoom="`+which+`"]').value === '`+strconv.Itoa(z)+`' &&
			li.querySelector('[data-selection-estimate]').dataset.selectionEstimate;
	})()`, 10*time.Second)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		w.fail("estimated bytes %q: %v", v, err)
	}
	return n
}

// nearVertex tells whether the WKT polygon wkt has a vertex within tol
// degrees of c on both axes.
func nearVertex(wkt string, c [2]float64, tol float64) bool {
	coords := strings.FieldsFunc(wkt, func(r rune) bool { return r == '(' || r == ')' || r == ',' })
	for _, xy := range coords {
		var x, y float64
		if _, err := fmt.Sscanf(strings.TrimSpace(xy), "%g %g", &x, &y); err == nil && math.Abs(x-c[0]) <= tol && math.Abs(y-c[1]) <= tol {
			return true
		}
	}
	return false
}

// zippedShapefile converts a GeoJSON geometry in longitude and latitude
// into a shapefile in Web Mercator (EPSG:3857, with its .prj) with GDAL's
// ogr2ogr, and zips its files as a person sends them.
func zippedShapefile(t *testing.T, geometry string) string {
	t.Helper()
	ogr2ogr, err := exec.LookPath("ogr2ogr")
	if err != nil {
		t.Fatalf("ogr2ogr not found (GDAL; make tools installs it): %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "square.geojson")
	if err := os.WriteFile(src, []byte(`{"type":"Feature","properties":{"name":"square"},"geometry":`+geometry+`}`), 0o644); err != nil {
		t.Fatal(err)
	}
	shp := filepath.Join(dir, "shp")
	if out, err := exec.Command(ogr2ogr, "-f", "ESRI Shapefile", "-t_srs", "EPSG:3857", shp, src).CombinedOutput(); err != nil {
		t.Fatalf("ogr2ogr: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "square.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	if err := zw.AddFS(os.DirFS(shp)); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}
