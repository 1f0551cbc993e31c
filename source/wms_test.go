package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
	"github.com/geoexport/exporter/source/sourcetest"
)

// fakeWMS answers GetMap requests of the given version with the pattern
// tiles of sourcetest over the requested bbox, and checks every parameter
// the way a strict server would: a bbox in the wrong axis order is
// refused with a service exception.
func fakeWMS(tb testing.TB, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		img, err := renderGetMap(r.URL.Query(), version)
		if err != nil {
			w.Header().Set("Content-Type", "application/vnd.ogc.se_xml")
			fmt.Fprintf(w, `<ServiceExceptionReport><ServiceException code="InvalidParameterValue">%s</ServiceException></ServiceExceptionReport>`, err)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(w, img); err != nil {
			tb.Errorf("fake wms: %v", err)
		}
	}
}

func renderGetMap(q url.Values, version string) (image.Image, error) {
	crsKey := "SRS"
	if version == "1.3.0" {
		crsKey = "CRS"
	}
	switch {
	case q.Get("SERVICE") != "WMS" || q.Get("REQUEST") != "GetMap" || q.Get("VERSION") != version:
		return nil, fmt.Errorf("not a WMS %s GetMap: %v", version, q)
	case q.Get(crsKey) != "EPSG:4326":
		return nil, fmt.Errorf("%s=%q, want EPSG:4326", crsKey, q.Get(crsKey))
	case q.Get("FORMAT") != "image/png":
		return nil, fmt.Errorf("FORMAT=%q", q.Get("FORMAT"))
	}
	parts := strings.Split(q.Get("BBOX"), ",")
	if len(parts) != 4 {
		return nil, fmt.Errorf("BBOX=%q", q.Get("BBOX"))
	}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return nil, fmt.Errorf("BBOX=%q: %w", q.Get("BBOX"), err)
		}
		v[i] = f
	}
	b := grid.BBox{MinX: v[0], MinY: v[1], MaxX: v[2], MaxY: v[3]}
	if version == "1.3.0" {
		b = grid.BBox{MinY: v[0], MinX: v[1], MaxY: v[2], MaxX: v[3]}
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("BBOX=%q: %w", q.Get("BBOX"), err)
	}
	w, _ := strconv.Atoi(q.Get("WIDTH"))
	h, _ := strconv.Atoi(q.Get("HEIGHT"))
	if w <= 0 || h <= 0 || w%256 != 0 || h%256 != 0 {
		return nil, fmt.Errorf("WIDTH=%d HEIGHT=%d", w, h)
	}
	resX, resY := (b.MaxX-b.MinX)/float64(w), (b.MaxY-b.MinY)/float64(h)
	z, err := grid.ZoomForResolution(resX)
	if err != nil || resX != resY || resX != z.Resolution() {
		return nil, fmt.Errorf("pixels %v × %v degrees: not square pixels of a grid zoom (BBOX=%q in %s order?)",
			resX, resY, q.Get("BBOX"), map[bool]string{true: "lat,lon", false: "lon,lat"}[version == "1.3.0"])
	}
	r := z.Range(b)
	if r.Bounds() != b {
		return nil, fmt.Errorf("BBOX %v is not aligned to tiles at zoom %d", b, z)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for t := range r.Tiles {
		at := image.Pt(int(t.Col-r.MinCol)*256, int(t.Row-r.MinRow)*256)
		draw.Draw(img, image.Rectangle{Min: at, Max: at.Add(image.Pt(256, 256))}, sourcetest.PatternTile(t), image.Point{}, draw.Src)
	}
	return img, nil
}

func newWMS(tb testing.TB, srv *tileServer, mod func(*source.WMSConfig)) *source.WMS {
	tb.Helper()
	cfg := source.WMSConfig{
		URL:    srv.URL + "/wms?map=/srv/ortho.map",
		Layers: []string{"ortho"},
		HTTP:   source.HTTPConfig{Name: "test-wms", RetryBase: time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	s := mustOpen(tb, "NewWMS", source.NewWMS, cfg)
	sl := &sleeps{}
	source.SetRetryClock(s, sl.sleep, nil)
	return s
}

// TestWMSAxisOrder checks the whole GetMap of both versions for one tile:
// 1.1.1 sends SRS and longitude first, 1.3.0 CRS and latitude first; an
// opaque request has no TRANSPARENT (the standard's default is FALSE), a
// transparent one TRANSPARENT=TRUE; STYLES is always there, as both
// versions require.
func TestWMSAxisOrder(t *testing.T) {
	t.Parallel()
	tile := grid.Tile{Zoom: 2, Col: 5, Row: 1} // [45, 0, 90, 45]
	tests := []struct {
		version     source.WMSVersion
		transparent bool
		want        string
	}{
		{version: source.WMS111, want: "BBOX=45,0,90,45&FORMAT=image/png&HEIGHT=256&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&SRS=EPSG:4326&STYLES=&VERSION=1.1.1&WIDTH=256&map=/srv/ortho.map"},
		{version: source.WMS130, want: "BBOX=0,45,45,90&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=256&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=256&map=/srv/ortho.map"},
		{version: source.WMS130, transparent: true, want: "BBOX=0,45,45,90&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=256&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&TRANSPARENT=TRUE&VERSION=1.3.0&WIDTH=256&map=/srv/ortho.map"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s transparent %t", tc.version, tc.transparent), func(t *testing.T) {
			t.Parallel()
			srv := newTileServer(t, fakeWMS(t, string(tc.version)))
			s := newWMS(t, srv, func(c *source.WMSConfig) {
				c.Version, c.Transparent, c.MetatileCols, c.MetatileRows = tc.version, tc.transparent, 1, 1
			})
			got := mustTile(t, s, tile)
			if err := sourcetest.CheckPattern(got.Image, tile, 0); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff([]string{"/wms?" + tc.want}, srv.requestURIs()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("wrong axis order is an exception", func(t *testing.T) {
		t.Parallel()
		// A 1.1.1 client against a strict 1.3.0 server.
		srv := newTileServer(t, fakeWMS(t, "1.3.0"))
		s := newWMS(t, srv, func(c *source.WMSConfig) { c.Version = source.WMS111 })
		_, err := s.Tile(t.Context(), tile)
		var re *source.ResponseError
		if !errors.As(err, &re) || !re.Exception || !strings.Contains(err.Error(), `wms "test-wms": tile 2/5/1`) {
			t.Errorf("Tile(%v) = %v, want a service exception naming the source and tile", tile, err)
		}
	})
}

// TestWMSMetatileSharing asks for the 16 tiles of one metatile at once:
// the server sees one request, and every tile is cut from the right
// place.
func TestWMSMetatileSharing(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newTileServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		fakeWMS(t, "1.3.0")(w, r)
	})
	s := newWMS(t, srv, nil)
	block := grid.TileRange{Zoom: 4, MinCol: 8, MinRow: 4, MaxCol: 12, MaxRow: 8}
	var wg sync.WaitGroup
	var started atomic.Int64
	for tile := range block.Tiles {
		wg.Go(func() {
			started.Add(1)
			got, err := s.Tile(t.Context(), tile)
			if err != nil {
				t.Errorf("Tile(%v): %v", tile, err)
				return
			}
			if got.Data != nil || !got.Opaque {
				t.Errorf("Tile(%v) = %d bytes, opaque %v, want an opaque image", tile, len(got.Data), got.Opaque)
			}
			if err := sourcetest.CheckPattern(got.Image, tile, 0); err != nil {
				t.Error(err)
			}
		})
	}
	for started.Load() < 16 {
		// Let the callers reach the fetch in flight before it ends; if
		// some come later, they are served from the cache instead.
		select {
		case <-time.After(time.Millisecond):
		case <-t.Context().Done():
		}
	}
	close(release)
	wg.Wait()
	uris := srv.requestURIs()
	if len(uris) != 1 {
		t.Fatalf("server got %d requests, want 1: %q", len(uris), uris)
	}
	for _, want := range []string{"WIDTH=1024", "HEIGHT=1024", "BBOX=0,-90,45,-45"} {
		if !strings.Contains(uris[0], want) {
			t.Errorf("request %q lacks %q", uris[0], want)
		}
	}
	// Later tiles of the block come from the cache.
	if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 4, Col: 9, Row: 5}); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests.Load(); got != 1 {
		t.Errorf("server got %d requests after a cached tile, want 1", got)
	}
	if cached, inFlight, _ := source.MetatileCache(s); cached != 1 || inFlight != 0 {
		t.Errorf("cache holds %d metatiles, %d in flight, want 1 and 0", cached, inFlight)
	}
}

// TestWMSMetatileBlocks checks the extent of the GetMap requests: aligned
// blocks, clipped to the grid and to the footprint.
func TestWMSMetatileBlocks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cols, rows int
		footprint  grid.BBox
		tile       grid.Tile
		want       string // BBOX (1.3.0: lat,lon), WIDTH and HEIGHT
	}{
		{name: "zoom 0 clipped to the grid", tile: grid.Tile{Zoom: 0, Col: 1, Row: 0}, want: "BBOX=-90,-180,90,180&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=256&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=512"},
		{name: "zoom 1 clipped to the grid", tile: grid.Tile{Zoom: 1, Col: 3, Row: 1}, want: "BBOX=-90,-180,90,180&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=512&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=1024"},
		{name: "aligned block", tile: grid.Tile{Zoom: 3, Col: 13, Row: 6}, want: "BBOX=-90,90,0,180&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=1024&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=1024"},
		{name: "2 × 1", cols: 2, rows: 1, tile: grid.Tile{Zoom: 3, Col: 13, Row: 6}, want: "BBOX=-67.5,90,-45,135&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=256&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=512"},
		{
			name:      "clipped to the footprint",
			footprint: grid.BBox{MinX: 34.5, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}, // zoom 8: cols 305..307, rows 80..86
			tile:      grid.Tile{Zoom: 8, Col: 306, Row: 85},                     // block cols 304..307, rows 84..87
			want:      "BBOX=28.828125,34.453125,30.9375,36.5625&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=768&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=768",
		},
		{
			name:      "outside the footprint: the grid only",
			footprint: grid.BBox{MinX: 34.5, MinY: 29.4, MaxX: 35.9, MaxY: 33.4},
			tile:      grid.Tile{Zoom: 8, Col: 10, Row: 10},
			want:      "BBOX=81.5625,-174.375,84.375,-171.5625&CRS=EPSG:4326&FORMAT=image/png&HEIGHT=1024&LAYERS=ortho&REQUEST=GetMap&SERVICE=WMS&STYLES=&VERSION=1.3.0&WIDTH=1024",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTileServer(t, fakeWMS(t, "1.3.0"))
			s, err := source.NewWMS(source.WMSConfig{
				URL: srv.URL + "/wms", Layers: []string{"ortho"},
				MetatileCols: tc.cols, MetatileRows: tc.rows, Footprint: tc.footprint,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := mustTile(t, s, tc.tile)
			if err := sourcetest.CheckPattern(got.Image, tc.tile, 0); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff([]string{"/wms?" + tc.want}, srv.requestURIs()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWMSBlocksAtTheFootprintEdge asks, from one source, for a tile inside
// the footprint and one just outside it in the same aligned block: their
// metatiles differ, and each tile is cut from its own.
func TestWMSBlocksAtTheFootprintEdge(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, fakeWMS(t, "1.3.0"))
	s := newWMS(t, srv, func(c *source.WMSConfig) {
		c.Footprint = grid.BBox{MinX: 34.5, MinY: 29.4, MaxX: 35.9, MaxY: 33.4} // zoom 8: cols 305..307, rows 80..86
	})
	for _, tile := range []grid.Tile{{Zoom: 8, Col: 306, Row: 85}, {Zoom: 8, Col: 304, Row: 84}, {Zoom: 8, Col: 305, Row: 84}, {Zoom: 8, Col: 307, Row: 87}} {
		got := mustTile(t, s, tile)
		if err := sourcetest.CheckPattern(got.Image, tile, 0); err != nil {
			t.Error(err)
		}
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("server got %d requests, want 2: %q", got, srv.requestURIs())
	}
}

func TestWMSParameters(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s := newWMS(t, srv, func(c *source.WMSConfig) {
		c.URL = srv.URL + "/ows?SERVICE=ignored&token=abc"
		c.Version = source.WMS111
		c.Layers = []string{"roads", "labels"}
		c.Styles = []string{"", "bold"}
		c.Transparent = true
		c.Format = "image/png; mode=8bit"
		c.Params = map[string]string{"BGCOLOR": "0xFFFFFF", "time": "2025-01-01"}
		c.MetatileCols, c.MetatileRows = 1, 1
	})
	_, err := s.Tile(t.Context(), testTile)
	if !errors.Is(err, source.ErrNoData) {
		t.Fatalf("Tile(%v) = %v, want ErrNoData for a 204", testTile, err)
	}
	want := "/ows?BBOX=-135,45,-112.5,67.5&BGCOLOR=0xFFFFFF&FORMAT=image/png%3B+mode%3D8bit&HEIGHT=256&LAYERS=roads,labels&REQUEST=GetMap&SERVICE=WMS&SRS=EPSG:4326&STYLES=,bold&TRANSPARENT=TRUE&VERSION=1.1.1&WIDTH=256&time=2025-01-01&token=abc"
	if diff := cmp.Diff([]string{want}, srv.requestURIs()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestWMSTransparencyAndNoData: in one metatile, tiles without data are
// ErrNoData, the others images; a tile half transparent is not opaque.
func TestWMSTransparencyAndNoData(t *testing.T) {
	t.Parallel()
	white := color.NRGBA{R: 255, G: 255, B: 255, A: 255}
	srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
		// 2 × 2 tiles: white (no data), transparent, data, half data.
		m := image.NewNRGBA(image.Rect(0, 0, 512, 512))
		draw.Draw(m, image.Rect(0, 0, 256, 256), image.NewUniform(white), image.Point{}, draw.Src)
		draw.Draw(m, image.Rect(0, 256, 256, 512), image.NewUniform(color.NRGBA{R: 9, A: 255}), image.Point{}, draw.Src)
		draw.Draw(m, image.Rect(256, 256, 384, 512), image.NewUniform(color.NRGBA{G: 9, A: 128}), image.Point{}, draw.Src)
		var buf bytes.Buffer
		_ = png.Encode(&buf, m)
		_, _ = w.Write(buf.Bytes())
	})
	s := newWMS(t, srv, func(c *source.WMSConfig) {
		c.MetatileCols, c.MetatileRows = 2, 2
		c.Transparent = true
		c.HTTP.NoData = &source.NoData{R: 255, G: 255, B: 255}
	})
	tests := []struct {
		tile       grid.Tile
		wantNoData string
		wantOpaque bool
	}{
		{tile: grid.Tile{Zoom: 3, Col: 2, Row: 2}, wantNoData: "is all #ffffff"},
		{tile: grid.Tile{Zoom: 3, Col: 3, Row: 2}, wantNoData: "is transparent"},
		{tile: grid.Tile{Zoom: 3, Col: 2, Row: 3}, wantOpaque: true},
		{tile: grid.Tile{Zoom: 3, Col: 3, Row: 3}},
	}
	for _, tc := range tests {
		got, err := s.Tile(t.Context(), tc.tile)
		if tc.wantNoData != "" {
			if !errors.Is(err, source.ErrNoData) || !strings.Contains(err.Error(), tc.wantNoData) {
				t.Errorf("Tile(%v) = %v, want ErrNoData saying %q", tc.tile, err, tc.wantNoData)
			}
			continue
		}
		if err != nil {
			t.Errorf("Tile(%v): %v", tc.tile, err)
			continue
		}
		if got.Opaque != tc.wantOpaque || got.Image == nil {
			t.Errorf("Tile(%v) opaque = %v, want %v", tc.tile, got.Opaque, tc.wantOpaque)
		}
	}
	srv.checkRequests(t, 1)
}

func TestWMSWrongSize(t *testing.T) {
	t.Parallel()
	blue := color.NRGBA{B: 200, A: 255}
	srv := newTileServer(t, servePNG(t, sized(300, 200, blue)))
	t.Run("reject", func(t *testing.T) {
		t.Parallel()
		s := newWMS(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		if !errors.Is(err, source.ErrInvalidData) || !strings.Contains(err.Error(), "300 × 200 pixels, want 1024 × 1024") ||
			!strings.Contains(err.Error(), `wms "test-wms": tile 3/2/1 (metatile of 4 × 4 from 3/0/0)`) {
			t.Errorf("Tile(%v) = %v, want ErrInvalidData naming the sizes, the source and the tile", testTile, err)
		}
	})
	t.Run("resample", func(t *testing.T) {
		t.Parallel()
		s := newWMS(t, srv, func(c *source.WMSConfig) { c.HTTP.Resample = true })
		got := mustTile(t, s, testTile)
		if c := color.NRGBAModel.Convert(got.Image.At(100, 100)); c != blue {
			t.Errorf("resampled pixel = %v, want %v", c, blue)
		}
	})
}

// TestWMSErrorsAreNotCached: a failed metatile is fetched again by the
// next caller, and no data is cached like an image.
func TestWMSErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	good := fakeWMS(t, "1.3.0")
	srv := newTileServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "overloaded", http.StatusBadGateway)
		case 2:
			w.WriteHeader(http.StatusNoContent)
		default:
			good(w, r)
		}
	})
	s := newWMS(t, srv, func(c *source.WMSConfig) { c.HTTP.MaxAttempts, c.MetatileCols, c.MetatileRows = 1, 2, 2 })
	if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 3}); err == nil || errors.Is(err, source.ErrNoData) || !strings.Contains(err.Error(), "http 502") {
		t.Fatalf("first Tile = %v, want the 502", err)
	}
	for i := range 2 {
		if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: int64(i), Row: 0}); !errors.Is(err, source.ErrNoData) {
			t.Fatalf("Tile after 204 = %v, want ErrNoData", err)
		}
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("server got %d requests, want 2: the error is retried, no data is cached", got)
	}
	// Another metatile.
	if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: 4, Row: 0}); err != nil {
		t.Fatalf("Tile: %v", err)
	}
}

// TestWMSCacheExpiry moves the clock past the cache TTL.
func TestWMSCacheExpiry(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, fakeWMS(t, "1.3.0"))
	var now atomic.Int64
	s := newWMS(t, srv, func(c *source.WMSConfig) { c.CacheTTL, c.MetatileCols, c.MetatileRows = time.Minute, 2, 2 })
	source.SetRetryClock(s, nil, func() time.Time { return time.Unix(now.Load(), 0) })
	for _, step := range []struct {
		advance      int64
		wantRequests int64
	}{{0, 1}, {59, 1}, {1, 2}, {30, 2}} {
		now.Add(step.advance)
		if _, err := s.Tile(t.Context(), testTile); err != nil {
			t.Fatal(err)
		}
		if got := srv.requests.Load(); got != step.wantRequests {
			t.Errorf("at %ds: server got %d requests, want %d", now.Load(), got, step.wantRequests)
		}
	}
}

// TestWMSCacheSize fills the cache past its size: the least recently used
// metatile goes.
func TestWMSCacheSize(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, fakeWMS(t, "1.3.0"))
	s := newWMS(t, srv, func(c *source.WMSConfig) { c.CacheSize, c.MetatileCols, c.MetatileRows = 2, 2, 2 })
	for i, col := range []int64{0, 4, 0, 8, 0, 4} {
		if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: col, Row: 0}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// 0 miss, 4 miss, 0 hit, 8 miss (evicts 4), 0 hit, 4 miss.
	srv.checkRequests(t, 4)
	if cached, _, _ := source.MetatileCache(s); cached != 2 {
		t.Errorf("cache holds %d metatiles, want 2", cached)
	}
}

// TestWMSMetatileCancel: when one of two callers waiting for a metatile
// gives up, the other still gets its tile; when all give up, the request
// is cancelled and nothing is left running.
func TestWMSMetatileCancel(t *testing.T) {
	t.Parallel()
	// hangingWMS answers once release is closed, and reports a request
	// its client gave up on.
	hangingWMS := func(t *testing.T) (srv *tileServer, arrived, release, cancelled chan struct{}) {
		arrived, release, cancelled = make(chan struct{}, 1), make(chan struct{}), make(chan struct{}, 1)
		good := fakeWMS(t, "1.3.0")
		srv = newTileServer(t, func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			select {
			case <-release:
				good(w, r)
			case <-r.Context().Done():
				cancelled <- struct{}{}
			}
		})
		return srv, arrived, release, cancelled
	}

	t.Run("one of two gives up", func(t *testing.T) {
		t.Parallel()
		srv, arrived, release, _ := hangingWMS(t)
		s := newWMS(t, srv, nil)
		quitter, quit := context.WithCancel(t.Context())
		first := make(chan error, 1)
		go func() {
			_, err := s.Tile(quitter, grid.Tile{Zoom: 3, Col: 0, Row: 0})
			first <- err
		}()
		<-arrived
		second := make(chan error, 1)
		go func() {
			_, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: 1, Row: 1})
			second <- err
		}()
		waitForWaiters(t, s, 2)
		quit()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Tile = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-second; err != nil {
			t.Errorf("other Tile = %v, want its tile", err)
		}
		srv.checkRequests(t, 1)
	})

	t.Run("all give up", func(t *testing.T) {
		t.Parallel()
		srv, arrived, _, cancelled := hangingWMS(t)
		s := newWMS(t, srv, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 2)
		for _, tile := range []grid.Tile{{Zoom: 5, Col: 0, Row: 0}, {Zoom: 5, Col: 3, Row: 3}} {
			go func() {
				_, err := s.Tile(ctx, tile)
				done <- err
			}()
		}
		<-arrived
		waitForWaiters(t, s, 2)
		cancel()
		for range 2 {
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Tile = %v, want context.Canceled", err)
			}
		}
		if _, inFlight, _ := source.MetatileCache(s); inFlight != 0 {
			t.Errorf("%d fetches in flight after every caller left, want 0", inFlight)
		}
		select {
		case <-cancelled:
		case <-time.After(10 * time.Second):
			t.Fatal("the metatile request was not cancelled when its last caller left")
		}
		srv.checkRequests(t, 1)
	})
}

// waitForWaiters waits until n callers wait for metatiles of s.
func waitForWaiters(tb testing.TB, s *source.WMS, n int) {
	tb.Helper()
	for {
		if _, _, w := source.MetatileCache(s); w >= n {
			return
		}
		select {
		case <-time.After(time.Millisecond):
		case <-tb.Context().Done():
			tb.Fatalf("fewer than %d callers joined the fetch", n)
		}
	}
}

func TestWMSConfigValidate(t *testing.T) {
	t.Parallel()
	ok := source.WMSConfig{URL: "https://maps.example/wms", Layers: []string{"a"}}
	tests := []struct {
		name    string
		mod     func(*source.WMSConfig)
		wantErr []string
	}{
		{name: "minimal", mod: func(*source.WMSConfig) {}},
		{name: "everything", mod: func(c *source.WMSConfig) {
			c.Version, c.Styles, c.Format, c.Transparent = source.WMS111, []string{"s"}, "image/png8", true
			c.Params, c.MetatileCols, c.MetatileRows, c.Footprint = map[string]string{"TIME": "now"}, 16, 1, grid.BBox{MaxX: 1, MaxY: 1}
		}},
		{name: "no url", mod: func(c *source.WMSConfig) { c.URL = "" }, wantErr: []string{"wms url is required"}},
		{name: "relative url", mod: func(c *source.WMSConfig) { c.URL = "/wms" }, wantErr: []string{"absolute http or https"}},
		{name: "ftp", mod: func(c *source.WMSConfig) { c.URL = "ftp://x/wms" }, wantErr: []string{"absolute http or https"}},
		{name: "template", mod: func(c *source.WMSConfig) { c.URL = "https://x/{z}" }, wantErr: []string{"not a template"}},
		{
			name: "every problem",
			mod: func(c *source.WMSConfig) {
				c.Version, c.Layers, c.Styles, c.Format = "1.0", []string{"a,b", ""}, []string{"x"}, "image/gif"
				c.Params = map[string]string{"bbox": "1"}
				c.MetatileCols, c.MetatileRows, c.CacheTTL = 17, -1, -time.Second
				c.Footprint = grid.BBox{MinX: 2, MaxX: 1, MaxY: 1}
				c.HTTP.Concurrency = -1
			},
			wantErr: []string{`version "1.0"`, `layer "a,b"`, `layer ""`, "1 styles for 2 layers", `format "image/gif"`,
				`parameter "bbox" is set by the source`, "metatile side 17", "metatile side -1", "cache ttl", "footprint", "concurrency -1"},
		},
		{name: "transparent jpeg", mod: func(c *source.WMSConfig) { c.Format, c.Transparent = "image/jpeg", true }, wantErr: []string{"image/jpeg cannot be transparent"}},
		{name: "no layers", mod: func(c *source.WMSConfig) { c.Layers = nil }, wantErr: []string{"at least one layer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.mod(&cfg)
			checkValidate(t, cfg.Validate(), tc.wantErr)
			if s, err := source.NewWMS(cfg); (err == nil) != (len(tc.wantErr) == 0) {
				t.Errorf("NewWMS error = %v, want it to agree with Validate", err)
			} else if err == nil {
				s.Close()
			}
		})
	}
}

func TestTilesByBlock(t *testing.T) {
	t.Parallel()
	r := grid.TileRange{Zoom: 5, MinCol: 3, MinRow: 1, MaxCol: 9, MaxRow: 4}
	var got []string
	for tile := range source.TilesByBlock(r, 4, 2) {
		got = append(got, fmt.Sprintf("%d/%d", tile.Col, tile.Row))
	}
	want := []string{
		"3/1",                      // block cols 0..3, rows 0..1
		"4/1", "5/1", "6/1", "7/1", // block cols 4..7, rows 0..1
		"8/1",        // cols 8..11
		"3/2", "3/3", // cols 0..3, rows 2..3
		"4/2", "5/2", "6/2", "7/2", "4/3", "5/3", "6/3", "7/3",
		"8/2", "8/3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TilesByBlock order (-want +got):\n%s", diff)
	}
	if int64(len(got)) != r.Count() {
		t.Errorf("TilesByBlock yielded %d tiles, want %d", len(got), r.Count())
	}
	n := 0
	for range source.TilesByBlock(r, 4, 2) {
		n++
		if n == 3 {
			break
		}
	}
}

// BenchmarkWMSMetatile decodes a 1024 × 1024 PNG answer and cuts it into
// 16 tiles, the work of one GetMap request of a 4 × 4 metatile.
func BenchmarkWMSMetatile(b *testing.B) {
	r := grid.TileRange{Zoom: 4, MinCol: 8, MinRow: 4, MaxCol: 12, MaxRow: 8}
	img, err := renderGetMap(url.Values{
		"SERVICE": {"WMS"}, "REQUEST": {"GetMap"}, "VERSION": {"1.3.0"}, "CRS": {"EPSG:4326"}, "FORMAT": {"image/png"},
		"BBOX": {"0,-90,45,-45"}, "WIDTH": {"1024"}, "HEIGHT": {"1024"},
	}, "1.3.0")
	if err != nil {
		b.Fatal(err)
	}
	// Some noise makes the PNG about as costly to decode as imagery.
	m := img.(*image.NRGBA)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.Pix {
		if i%4 != 3 {
			m.Pix[i] += byte(rng.IntN(16))
		}
	}
	data := encodePNG(b, m)
	b.Run("decode and cut", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			tiles, err := source.CutMetatile(data, 4, 4)
			if err != nil || len(tiles) != int(r.Count()) {
				b.Fatalf("CutMetatile = %d tiles, %v", len(tiles), err)
			}
		}
	})
	b.Run("through the source", func(b *testing.B) {
		srv := newTileServer(b, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data) })
		s := newWMS(b, srv, func(c *source.WMSConfig) { c.CacheSize = -1 })
		b.ReportAllocs()
		for b.Loop() {
			var wg sync.WaitGroup
			for tile := range r.Tiles {
				wg.Go(func() {
					if _, err := s.Tile(b.Context(), tile); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(srv.requests.Load())/float64(b.N), "requests/op")
	})
}

// TestWMSJPEGMetatilesAreCutLosslessly checks that a JPEG answer of the
// metatile's size is cut into JPEG tiles without decoding: each tile is
// passed through as opaque JPEG data holding exactly the pixels of its
// part of the answer, uniform no-data tiles are still dropped, and an
// answer of another size (resampled) or a CMYK one is decoded instead.
func TestWMSJPEGMetatilesAreCutLosslessly(t *testing.T) {
	t.Parallel()
	white := color.RGBA{R: 255, G: 255, B: 255, A: 255}
	meta := noisyImage(512, 512)
	draw.Draw(meta, image.Rect(256, 0, 512, 256), image.NewUniform(white), image.Point{}, draw.Src)
	answer := encodeJPEG(t, meta)
	whole, err := jpeg.Decode(bytes.NewReader(answer))
	if err != nil {
		t.Fatal(err)
	}
	srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(answer) })
	s := newWMS(t, srv, func(c *source.WMSConfig) {
		c.MetatileCols, c.MetatileRows = 2, 2
		c.HTTP.NoData = &source.NoData{R: 255, G: 255, B: 255}
	})
	for _, tile := range []grid.Tile{{Zoom: 3, Col: 2, Row: 2}, {Zoom: 3, Col: 2, Row: 3}, {Zoom: 3, Col: 3, Row: 3}} {
		got := mustTile(t, s, tile)
		if got.Image != nil || got.Format != source.JPEG || !got.Opaque {
			t.Fatalf("Tile(%v) = image %T, format %s, opaque %v; want opaque JPEG data", tile, got.Image, got.Format, got.Opaque)
		}
		img, err := jpeg.Decode(bytes.NewReader(got.Data))
		if err != nil || img.Bounds() != image.Rect(0, 0, 256, 256) {
			t.Fatalf("Tile(%v) data: %v, %v", tile, img, err)
		}
		x0, y0 := int(tile.Col-2)*256, int(tile.Row-2)*256
		part := image.NewRGBA(image.Rect(0, 0, 256, 256))
		draw.Draw(part, part.Rect, whole, image.Pt(x0, y0), draw.Src)
		if d := maxDiff(img, part); d != 0 {
			t.Errorf("Tile(%v) differs from its part of the answer by up to %d levels: not a lossless cut", tile, d)
		}
	}
	if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: 3, Row: 2}); !errors.Is(err, source.ErrNoData) {
		t.Errorf("white tile = %v, want ErrNoData", err)
	}
	srv.checkRequests(t, 1)

	cmyk, err := os.ReadFile("testdata/cmyk.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"resampled": encodeJPEG(t, noisyImage(512, 256)), "cmyk": cmyk} {
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
		s := newWMS(t, srv, func(c *source.WMSConfig) {
			c.MetatileCols, c.MetatileRows = 1, 1
			c.HTTP.Resample = name == "resampled"
		})
		got, err := s.Tile(t.Context(), testTile)
		if err != nil || got.Image == nil || got.Data != nil {
			t.Errorf("%s: Tile = image %T, %d bytes of data, %v; want a decoded image", name, got.Image, len(got.Data), err)
		}
	}
}
