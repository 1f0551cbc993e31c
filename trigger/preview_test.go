package trigger_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // decode preview tiles
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/trigger"
)

// Layer ids of the preview tests' catalog.
const (
	demoLayer   = "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8" // catalog.DemoLayerID
	storeLayer  = "5b0c8a1e-0000-4000-8000-000000000001"
	brokenLayer = "5b0c8a1e-0000-4000-8000-000000000002"
	slowLayer   = "5b0c8a1e-0000-4000-8000-000000000003"
	gpkgLayer   = "5b0c8a1e-0000-4000-8000-000000000004"
	previewZoom = grid.Zoom(8)
)

// footprint is every test layer's: a region around the specification's
// example, where the built-in demo layer covers the world, so that tests
// can ask outside it.
var footprint = grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}

// demoCatalog is the built-in catalog with its demo layer over footprint.
func demoCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.New([]catalog.Layer{regionalDemo()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// regionalDemo is the demo layer over footprint.
func regionalDemo() catalog.Layer {
	l := catalog.Demo().Layers()[0]
	l.Footprint = footprint
	return l
}

// inside is a tile at previewZoom whose column is i tiles east of the
// footprint's first.
func inside(i int64) grid.Tile {
	r := previewZoom.Range(footprint)
	return grid.Tile{Zoom: previewZoom, Col: r.MinCol + i, Row: r.MinRow}
}

func tilePath(layer string, t grid.Tile) string {
	return fmt.Sprintf("/layers/%s/tiles/%d/%d/%d", layer, t.Zoom, t.Col, t.Row)
}

// upstream is a real tile service for XYZ layers: it answers 500 for the
// "broken" layer's requests and holds the "slow" layer's ones until the
// request ends or release is closed.
type upstream struct {
	srv     *httptest.Server
	entered chan struct{} // a slow request arrived
	release chan struct{}
	once    sync.Once
}

// Release lets the held requests go on.
func (u *upstream) Release() { u.once.Do(func() { close(u.release) }) }

func newUpstream(t *testing.T) *upstream {
	u := &upstream{entered: make(chan struct{}, 16), release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/broken/") {
			http.Error(w, "upstream secret detail", http.StatusInternalServerError)
			return
		}
		u.entered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-u.release:
		}
		http.Error(w, "too late", http.StatusServiceUnavailable)
	}))
	t.Cleanup(func() { u.Release(); u.srv.Close() })
	return u
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// previewCatalog has the demo layer, a tile store in a directory with one
// JPEG tile (inside(1)) and one corrupt tile (inside(2)), XYZ layers over
// u, and a GeoPackage layer.
func previewCatalog(t *testing.T, u *upstream) (*catalog.Catalog, []byte) {
	t.Helper()
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	img.Set(3, 4, color.RGBA{R: 200, A: 255})
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	write := func(tile grid.Tile, data []byte) {
		p := filepath.Join(dir, fmt.Sprint(tile.Zoom), fmt.Sprint(tile.Col), fmt.Sprint(tile.Row)+".jpg")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(inside(1), jpg.Bytes())
	write(inside(2), []byte("this is not an image"))
	layer := func(id, product string, src catalog.Source) catalog.Layer {
		return catalog.Layer{
			ID: id, ProductID: product, ProductType: "Orthophoto", Version: "1", Footprint: footprint,
			MaxResolution: grid.Zoom(12).Resolution(), Source: src,
		}
	}
	cat, err := catalog.New([]catalog.Layer{
		regionalDemo(),
		layer(storeLayer, "store", catalog.Source{Kind: catalog.SourceTileStore, Path: dir}),
		layer(brokenLayer, "broken", catalog.Source{Kind: catalog.SourceXYZ, URL: u.srv.URL + "/broken/{z}/{x}/{y}.png", MaxAttempts: 1}),
		layer(slowLayer, "slow", catalog.Source{Kind: catalog.SourceXYZ, URL: u.srv.URL + "/slow/{z}/{x}/{y}.png", MaxAttempts: 1}),
		// A GeoPackage object, with no object store to read it from.
		layer(gpkgLayer, "gpkg", catalog.Source{Kind: catalog.SourceGeoPackage, S3Key: "sources/ortho.gpkg"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return cat, jpg.Bytes()
}

// setupPreview starts a trigger over the preview catalog with the preview
// timeout and concurrency given, logging into the returned buffer.
func setupPreview(t *testing.T, timeout time.Duration, concurrency int) (*trigger.Server, *upstream, []byte, *lockedBuffer) {
	t.Helper()
	u := newUpstream(t)
	cat, jpg := previewCatalog(t, u)
	logs := &lockedBuffer{}
	srv, _ := setup(t, func(c *trigger.Config, d *trigger.Deps) {
		c.PreviewTimeout, c.PreviewConcurrency = timeout, concurrency
		d.Catalog = cat
		d.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	t.Cleanup(func() { srv.Close() })
	return srv, u, jpg, logs
}

// TestPreviewTile checks the answers of GET /layers/{id}/tiles/{z}/{x}/{y}
// that need no slow source: tiles drawn, passed through and empty, the
// cache headers, the token parameter, and every 4xx and the 502.
func TestPreviewTile(t *testing.T) {
	t.Parallel()
	srv, _, jpg, logs := setupPreview(t, 5*time.Second, 2)
	noAuth := []string{"Authorization", ""}

	t.Run("demo tile drawn", func(t *testing.T) {
		resp, body := do(t, srv, "GET", tilePath(demoLayer, inside(0)), "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET demo tile = %d %s, want 200", resp.StatusCode, body)
		}
		ct := resp.Header.Get("Content-Type")
		cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
		if err != nil || cfg.Width != 256 || cfg.Height != 256 || ct != "image/"+format {
			t.Errorf("demo tile: %s %dx%d (%v), Content-Type %q; want a 256×256 image of its content type", format, cfg.Width, cfg.Height, err, ct)
		}
		etag, cc := resp.Header.Get("ETag"), resp.Header.Get("Cache-Control")
		if len(etag) != 34 || cc != "private, max-age=600" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("demo tile headers: ETag %q, Cache-Control %q, %v; want a quoted hash, private caching, nosniff", etag, cc, resp.Header)
		}
		resp, body = do(t, srv, "GET", tilePath(demoLayer, inside(0)), "", "If-None-Match", etag)
		if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("GET with If-None-Match %s = %d, %d bytes, ETag %q; want 304, none, the same ETag", etag, resp.StatusCode, len(body), resp.Header.Get("ETag"))
		}
		resp, _ = do(t, srv, "GET", tilePath(demoLayer, inside(0)), "", "If-None-Match", `"stale"`)
		if resp.StatusCode != 200 {
			t.Errorf("GET with a stale If-None-Match = %d, want 200", resp.StatusCode)
		}
	})
	t.Run("stored tile passed through", func(t *testing.T) {
		resp, body := do(t, srv, "GET", tilePath(storeLayer, inside(1)), "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, jpg) {
			t.Errorf("GET stored tile = %d %s, %d bytes; want 200 image/jpeg, the stored %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(jpg))
		}
	})
	t.Run("no data inside the footprint", func(t *testing.T) {
		resp, body := do(t, srv, "GET", tilePath(storeLayer, inside(0)), "")
		img, format, err := image.Decode(bytes.NewReader(body))
		if resp.StatusCode != 200 || err != nil || format != "png" {
			t.Fatalf("GET tile the store lacks = %d, %s (%v); want 200 and a PNG", resp.StatusCode, format, err)
		}
		if _, _, _, a := img.At(128, 128).RGBA(); a != 0 || img.Bounds().Dx() != 256 {
			t.Errorf("tile the store lacks: alpha %d, %d px wide; want a transparent 256 px tile", a, img.Bounds().Dx())
		}
	})
	t.Run("token parameter", func(t *testing.T) {
		resp, _ := do(t, srv, "GET", tilePath(demoLayer, inside(0))+"?token="+mint(t, "alice", "client"), "", noAuth...)
		if resp.StatusCode != 200 {
			t.Errorf("GET with ?token= = %d, want 200", resp.StatusCode)
		}
	})

	outside := grid.Tile{Zoom: previewZoom, Col: 0, Row: 0}
	tests := []struct {
		name   string
		path   string
		header []string
		want   int
		says   []string // in the message
	}{
		{"no token", tilePath(demoLayer, inside(0)), noAuth, 401, []string{"missing token"}},
		{"no known role", tilePath(demoLayer, inside(0)), []string{"Authorization", bearer(t, "eve", "nobody")}, 403, []string{"role"}},
		{"id not a uuid", "/layers/demo/tiles/8/305/80", nil, 400, []string{`id: "demo" is not a uuid`}},
		{"z not a number", "/layers/" + demoLayer + "/tiles/a/1/0", nil, 400, []string{`z: "a" is not a whole number`}},
		{"z negative", "/layers/" + demoLayer + "/tiles/-1/1/0", nil, 400, []string{`z: "-1" is not a whole number`}},
		{"z beyond the grid", "/layers/" + demoLayer + "/tiles/23/1/0", nil, 400, []string{"z: 23 is beyond the grid's zooms 0 to 22"}},
		{"x fractional", "/layers/" + demoLayer + "/tiles/1/1.5/0", nil, 400, []string{`x: "1.5" is not a whole number`}},
		{"x beyond the columns", "/layers/" + demoLayer + "/tiles/0/2/0", nil, 400, []string{"x: 2 is beyond the 2 columns of zoom 0"}},
		{"y beyond the rows", "/layers/" + demoLayer + "/tiles/0/1/1", nil, 400, []string{"y: 1 is beyond the 1 rows of zoom 0"}},
		{"every field wrong", "/layers/x/tiles/z/-2/0x1", nil, 400, []string{"id: ", "z: ", "x: ", "y: "}},
		{"unknown layer", tilePath("00000000-0000-4000-8000-000000000000", inside(0)), nil, 404, []string{"no layer with id"}},
		{"beyond the layer's zooms", tilePath(demoLayer, grid.Tile{Zoom: 19, Col: 0, Row: 0}), nil, 404, []string{"has zooms 0 to 18, not 19"}},
		{"outside the footprint", tilePath(demoLayer, outside), nil, 404, []string{"outside the footprint"}},
		{"corrupt stored tile", tilePath(storeLayer, inside(2)), nil, 502, []string{"failed to give tile 8/"}},
		{"source answers 500", tilePath(brokenLayer, inside(0)), nil, 502, []string{"the source of layer " + brokenLayer + " failed"}},
		{"source cannot be opened", tilePath(gpkgLayer, inside(0)), nil, 500, []string{"internal server error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, "GET", tc.path, "", tc.header...)
			msg := decode[map[string]any](t, body)["message"]
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, resp.StatusCode, body, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(fmt.Sprint(msg), s) {
					t.Errorf("GET %s: message %q, want it to say %q", tc.path, msg, s)
				}
			}
			if strings.Contains(string(body), "secret") || strings.Contains(string(body), "not an image") {
				t.Errorf("GET %s = %s: the answer shows the source's detail", tc.path, body)
			}
		})
	}
	// The detail went to the log instead.
	for _, want := range []string{"upstream secret detail", "no S3 storage is configured", `msg="preview tile failed"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestPreviewTileSlowSource checks the two limits of a slow source: a
// tile it does not give within the preview timeout is 504, and while it
// holds every slot, other preview tiles get 503 with Retry-After instead
// of waiting, and the API keeps answering.
func TestPreviewTileSlowSource(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		srv, _, _, logs := setupPreview(t, 300*time.Millisecond, 2)
		resp, body := do(t, srv, "GET", tilePath(slowLayer, inside(0)), "")
		if resp.StatusCode != 504 || !strings.Contains(string(body), "within 300ms") {
			t.Errorf("GET tile of a source that does not answer = %d %s, want 504 naming the timeout", resp.StatusCode, body)
		}
		if !strings.Contains(logs.String(), "status=504") {
			t.Errorf("log lacks the 504:\n%s", logs.String())
		}
	})
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		srv, u, _, _ := setupPreview(t, 4*time.Second, 1)
		held := make(chan int, 1)
		go func() {
			req := httptest.NewRequest("GET", tilePath(slowLayer, inside(0)), nil)
			req.Header.Set("Authorization", "Bearer "+mint(t, "alice", "client"))
			resp, err := srv.App().Test(req, 10_000)
			if err != nil {
				held <- 0
				return
			}
			resp.Body.Close()
			held <- resp.StatusCode
		}()
		select {
		case <-u.entered: // the only slot is taken
		case <-time.After(5 * time.Second):
			t.Fatal("the slow source was never asked")
		}
		resp, body := do(t, srv, "GET", tilePath(demoLayer, inside(0)), "")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "too many preview tiles") {
			t.Errorf("GET while every slot is held = %d %s, Retry-After %q; want 503, 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		if resp, body := do(t, srv, "GET", "/layers", ""); resp.StatusCode != 200 {
			t.Errorf("GET /layers while every preview slot is held = %d %s, want 200", resp.StatusCode, body)
		}
		u.Release()
		if code := <-held; code != 502 {
			t.Errorf("the held request, released with a 503 from the source = %d, want 502", code)
		}
		if resp, _ := do(t, srv, "GET", tilePath(demoLayer, inside(0)), ""); resp.StatusCode != 200 {
			t.Errorf("GET once the slot is free = %d, want 200", resp.StatusCode)
		}
	})
}

// TestPreviewSourcesClosed checks that a closed server closes the sources
// it opened and serves no more preview tiles.
func TestPreviewSourcesClosed(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := setupPreview(t, time.Second, 1)
	if resp, _ := do(t, srv, "GET", tilePath(demoLayer, inside(0)), ""); resp.StatusCode != 200 {
		t.Fatalf("GET before Close = %d, want 200", resp.StatusCode)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if resp, _ := do(t, srv, "GET", tilePath(demoLayer, inside(0)), ""); resp.StatusCode != 500 {
		t.Errorf("GET after Close = %d, want 500", resp.StatusCode)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}
