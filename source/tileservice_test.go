package source_test

import (
	"errors"
	"image/color"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// TestTileServiceURLs checks the request each configuration makes for one
// tile, 3/2/1 (rows from the north; 6 from the south).
func TestTileServiceURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		wmts  *source.WMTSConfig // with URL relative to the server
		xyz   *source.XYZConfig
		tile  *grid.Tile // nil: testTile
		want  string
		noReq bool // ErrNoData without a request
	}{
		{
			name: "wmts kvp",
			wmts: &source.WMTSConfig{URL: "/service?map=x", Layer: "ortho", TileMatrixSet: "InspireCRS84Quad"},
			want: "/service?FORMAT=image/png&LAYER=ortho&REQUEST=GetTile&SERVICE=WMTS&STYLE=default&TILECOL=2&TILEMATRIX=3&TILEMATRIXSET=InspireCRS84Quad&TILEROW=1&VERSION=1.0.0&map=x",
		},
		{
			name: "wmts kvp with everything",
			wmts: &source.WMTSConfig{
				URL: "/wmts", Layer: "ortho", Style: "dark", TileMatrixSet: "EPSG:4326", TileMatrixFormat: "EPSG:4326:%02d",
				Format: "image/jpeg", Params: map[string]string{"TIME": "2025"}, ZoomOffset: 1,
			},
			want: "/wmts?FORMAT=image/jpeg&LAYER=ortho&REQUEST=GetTile&SERVICE=WMTS&STYLE=dark&TILECOL=2&TILEMATRIX=EPSG:4326:04&TILEMATRIXSET=EPSG:4326&TILEROW=1&TIME=2025&VERSION=1.0.0",
		},
		{
			name: "wmts rest",
			wmts: &source.WMTSConfig{URL: "/wmts/{Layer}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png", Layer: "my layer", TileMatrixSet: "grid"},
			want: "/wmts/my%20layer/default/grid/3/1/2.png",
		},
		{
			name: "wmts rest with offset",
			wmts: &source.WMTSConfig{URL: "/wmts/{TileMatrix}/{TileCol}/{TileRow}.png", TileMatrixFormat: "%02d", ZoomOffset: -2},
			want: "/wmts/01/2/1.png",
		},
		{
			name:  "wmts level below the first",
			wmts:  &source.WMTSConfig{URL: "/wmts/{TileMatrix}/{TileCol}/{TileRow}.png", ZoomOffset: -4},
			noReq: true,
		},
		{name: "xyz", xyz: &source.XYZConfig{URL: "/t/{z}/{x}/{y}.png"}, want: "/t/3/2/1.png"},
		{name: "xyz tms with -y", xyz: &source.XYZConfig{URL: "/t/{z}/{x}/{-y}.png"}, want: "/t/3/2/6.png"},
		{name: "xyz tms with row origin", xyz: &source.XYZConfig{URL: "/t/{z}/{x}/{y}.png", RowOrigin: source.RowOriginBottom}, want: "/t/3/2/6.png"},
		{name: "xyz with offset", xyz: &source.XYZConfig{URL: "/t/{z}/{x}/{y}.png?v=2", ZoomOffset: -1}, want: "/t/2/2/1.png?v=2"},
		{name: "xyz zoom 0 below the first", xyz: &source.XYZConfig{URL: "/t/{z}/{x}/{y}.png", ZoomOffset: -1}, tile: &grid.Tile{}, noReq: true},
	}
	tile := encodeJPEG(t, solid(color.NRGBA{R: 1, G: 2, B: 3, A: 255}))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tile) })
			var src source.Source
			if tc.wmts != nil {
				cfg := *tc.wmts
				cfg.URL = srv.URL + cfg.URL
				src = mustOpen(t, "NewWMTS", source.NewWMTS, cfg)
			} else {
				cfg := *tc.xyz
				cfg.URL = srv.URL + cfg.URL
				src = mustOpen(t, "NewXYZ", source.NewXYZ, cfg)
			}
			at := testTile
			if tc.tile != nil {
				at = *tc.tile
			}
			got, err := src.Tile(t.Context(), at)
			if tc.noReq {
				if !errors.Is(err, source.ErrNoData) || !strings.Contains(err.Error(), "below the service's first") {
					t.Errorf("Tile(%v) = %v, want ErrNoData for a level the service lacks", at, err)
				}
				if n := srv.requests.Load(); n != 0 {
					t.Errorf("server got %d requests, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tile(%v): %v", at, err)
			}
			if diff := cmp.Diff(source.Tile{Data: tile, Format: source.JPEG, Opaque: true}, got); diff != "" {
				t.Errorf("Tile(%v) (-want +got):\n%s", at, diff)
			}
			if diff := cmp.Diff([]string{tc.want}, srv.requestURIs()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTileServiceStoredTiles: tiles pass through untouched; PNG tiles that
// may be transparent are checked.
func TestTileServiceStoredTiles(t *testing.T) {
	t.Parallel()
	half := solid(color.NRGBA{R: 50, A: 255})
	for y := range 256 {
		for x := 128; x < 256; x++ {
			half.SetNRGBA(x, y, color.NRGBA{})
		}
	}
	// An NRGBA PNG that happens to be fully opaque: not marked opaque by
	// its header, found opaque by decoding.
	opaqueAlpha := encodePNG(t, solid(color.NRGBA{G: 50, A: 255}))
	tests := []struct {
		name       string
		body       []byte
		wantOpaque bool
		wantFormat source.Format
	}{
		{name: "half transparent png", body: encodePNG(t, half), wantFormat: source.PNG},
		{name: "opaque png with alpha channel", body: opaqueAlpha, wantFormat: source.PNG, wantOpaque: true},
		{name: "jpeg", body: encodeJPEG(t, half), wantFormat: source.JPEG, wantOpaque: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tc.body) })
			s, _ := newXYZ(t, srv, nil)
			got := mustTile(t, s, testTile)
			if diff := cmp.Diff(source.Tile{Data: tc.body, Format: tc.wantFormat, Opaque: tc.wantOpaque}, got); diff != "" {
				t.Errorf("Tile(%v) (-want +got):\n%s", testTile, diff)
			}
		})
	}
}

func TestTileServiceInvalidTile(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, func(http.ResponseWriter, *http.Request) {})
	s, _ := newXYZ(t, srv, nil)
	for _, tile := range []grid.Tile{{Zoom: 3, Col: 16, Row: 0}, {Zoom: 3, Col: 0, Row: 8}, {Zoom: 23}, {Zoom: -1}} {
		if _, err := s.Tile(t.Context(), tile); !errors.Is(err, source.ErrInvalidTile) {
			t.Errorf("Tile(%v) = %v, want ErrInvalidTile", tile, err)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestWMTSConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     source.WMTSConfig
		wantErr []string
	}{
		{name: "kvp", cfg: source.WMTSConfig{URL: "https://x/wmts", Layer: "l", TileMatrixSet: "s"}},
		{name: "rest", cfg: source.WMTSConfig{URL: "https://x/{TileMatrix}/{TileRow}/{TileCol}.png", TileMatrixFormat: "%02d"}},
		{name: "kvp without layer", cfg: source.WMTSConfig{URL: "https://x/wmts"}, wantErr: []string{"needs a layer and a tile matrix set"}},
		{name: "rest without row", cfg: source.WMTSConfig{URL: "https://x/{TileMatrix}/{TileCol}.png"}, wantErr: []string{"lacks {TileRow}"}},
		{name: "rest without layer", cfg: source.WMTSConfig{URL: "https://x/{Layer}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}"}, wantErr: []string{"{Layer} but no layer", "{TileMatrixSet} but no tile matrix set"}},
		{name: "rest with params", cfg: source.WMTSConfig{URL: "https://x/{TileMatrix}/{TileRow}/{TileCol}", Params: map[string]string{"a": "b"}}, wantErr: []string{"not to a rest template"}},
		{name: "broken template", cfg: source.WMTSConfig{URL: "https://x/{z}/{x}/{y}", Layer: "l", TileMatrixSet: "s"}, wantErr: []string{"a template needs {TileMatrix}"}},
		{name: "reserved param", cfg: source.WMTSConfig{URL: "https://x/wmts", Layer: "l", TileMatrixSet: "s", Params: map[string]string{"TileRow": "1"}}, wantErr: []string{`parameter "TileRow"`}},
		{
			name:    "bad matrix formats",
			cfg:     source.WMTSConfig{URL: "https://x/wmts", Layer: "l", TileMatrixSet: "s", TileMatrixFormat: "%d-%d", Format: "image/gif", ZoomOffset: -30},
			wantErr: []string{`tile matrix format "%d-%d"`, `format "image/gif"`, "zoom offset -30"},
		},
		{name: "no verb", cfg: source.WMTSConfig{URL: "https://x/wmts", Layer: "l", TileMatrixSet: "s", TileMatrixFormat: "zero"}, wantErr: []string{`tile matrix format "zero"`}},
		{name: "string verb", cfg: source.WMTSConfig{URL: "https://x/wmts", Layer: "l", TileMatrixSet: "s", TileMatrixFormat: "%s"}, wantErr: []string{`tile matrix format "%s"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidate(t, tc.cfg.Validate(), tc.wantErr)
		})
	}
}

func TestXYZConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     source.XYZConfig
		wantErr []string
	}{
		{name: "xyz", cfg: source.XYZConfig{URL: "https://x/{z}/{x}/{y}.png"}},
		{name: "tms", cfg: source.XYZConfig{URL: "https://x/{z}/{x}/{-y}.png", ZoomOffset: -1}},
		{name: "no y", cfg: source.XYZConfig{URL: "https://x/{z}/{x}.png"}, wantErr: []string{"want {z}, {x} and one of {y} and {-y}"}},
		{name: "both y", cfg: source.XYZConfig{URL: "https://x/{z}/{x}/{y}/{-y}.png"}, wantErr: []string{"one of {y} and {-y}"}},
		{name: "double flip", cfg: source.XYZConfig{URL: "https://x/{z}/{x}/{-y}.png", RowOrigin: source.RowOriginBottom}, wantErr: []string{"flip rows twice"}},
		{name: "bad origin", cfg: source.XYZConfig{URL: "https://x/{z}/{x}/{y}.png", RowOrigin: "left"}, wantErr: []string{`row origin "left"`}},
		{name: "no url", cfg: source.XYZConfig{}, wantErr: []string{"xyz url is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidate(t, tc.cfg.Validate(), tc.wantErr)
		})
	}
}
