package source_test

import (
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
	"github.com/geoexport/exporter/source/sourcetest"
)

// TestMapProxy runs every HTTP source against a real MapProxy that serves
// pattern tiles: each tile must come back as the one that was put there,
// north up, through WMS 1.1.1 and 1.3.0 (PNG and JPEG), WMTS KVP and REST,
// XYZ and TMS. Tiles MapProxy does not have come back transparent, which
// is no data.
func TestMapProxy(t *testing.T) {
	t.Parallel()
	// Few tiles: the race detector makes every decode slow.
	const maxZoom = 2
	tiles := map[grid.Tile]image.Image{}
	var want []grid.Tile
	for z := grid.Zoom(0); z < maxZoom; z++ {
		for tile := range z.Range(grid.World).Tiles {
			tiles[tile] = sourcetest.PatternTile(tile)
			want = append(want, tile)
		}
	}
	// At the finest zoom, only a block in the north-east.
	for tile := range (grid.TileRange{Zoom: maxZoom, MinCol: 5, MinRow: 1, MaxCol: 8, MaxRow: 3}).Tiles {
		tiles[tile] = sourcetest.PatternTile(tile)
		want = append(want, tile)
	}
	// The last is in a metatile with tiles that exist.
	missing := []grid.Tile{{Zoom: maxZoom, Col: 0, Row: 0}, {Zoom: maxZoom, Col: 7, Row: 3}, {Zoom: maxZoom, Col: 4, Row: 1}}
	mp := sourcetest.ServeTiles(t, maxZoom, tiles)

	tests := []struct {
		name      string
		open      func() (source.Source, error)
		tolerance uint8
		noZoom0   bool // the service does not have zoom 0
	}{
		{name: "wms 1.1.1", open: func() (source.Source, error) {
			return source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Version: source.WMS111, Layers: []string{sourcetest.Layer}, Transparent: true})
		}},
		{name: "wms 1.3.0", open: func() (source.Source, error) {
			return source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Version: source.WMS130, Layers: []string{sourcetest.Layer}, Transparent: true})
		}},
		{name: "wms 1.3.0 tile by tile", open: func() (source.Source, error) {
			return source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Layers: []string{sourcetest.Layer}, Transparent: true, MetatileCols: 1, MetatileRows: 1})
		}},
		{name: "wms 1.3.0 jpeg", tolerance: 8, open: func() (source.Source, error) {
			// Without transparency MapProxy paints missing areas white.
			return source.NewWMS(source.WMSConfig{
				URL: mp.WMSURL(), Layers: []string{sourcetest.Layer}, Format: "image/jpeg", MetatileCols: 2, MetatileRows: 3,
				HTTP: source.HTTPConfig{NoData: &source.NoData{R: 255, G: 255, B: 255, Tolerance: 8}},
			})
		}},
		{name: "wmts kvp", open: func() (source.Source, error) {
			return source.NewWMTS(source.WMTSConfig{URL: mp.WMTSKVPURL(), Layer: sourcetest.Layer, TileMatrixSet: sourcetest.GridName, TileMatrixFormat: "%02d"})
		}},
		{name: "wmts rest", open: func() (source.Source, error) {
			return source.NewWMTS(source.WMTSConfig{URL: mp.WMTSRESTTemplate(), Layer: sourcetest.Layer, TileMatrixSet: sourcetest.GridName})
		}},
		{name: "xyz", open: func() (source.Source, error) {
			return source.NewXYZ(source.XYZConfig{URL: mp.XYZTemplate(sourcetest.Layer)})
		}},
		{name: "tms with row origin bottom", noZoom0: true, open: func() (source.Source, error) {
			return source.NewXYZ(source.XYZConfig{URL: mp.TMSTemplate(sourcetest.Layer), RowOrigin: source.RowOriginBottom, ZoomOffset: sourcetest.TMSZoomOffset})
		}},
		{name: "tms with -y", noZoom0: true, open: func() (source.Source, error) {
			return source.NewXYZ(source.XYZConfig{URL: strings.Replace(mp.TMSTemplate(sourcetest.Layer), "{y}", "{-y}", 1), ZoomOffset: sourcetest.TMSZoomOffset})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			defer src.(interface{ Close() error }).Close()
			for _, tile := range want {
				got, err := src.Tile(t.Context(), tile)
				if tc.noZoom0 && tile.Zoom == 0 {
					if !errors.Is(err, source.ErrNoData) {
						t.Errorf("Tile(%v) = %v, want ErrNoData: the service has no zoom 0", tile, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("Tile(%v): %v", tile, err)
					continue
				}
				img := got.Image
				if img == nil {
					if img, err = decodeTile(got); err != nil {
						t.Errorf("Tile(%v): %v", tile, err)
						continue
					}
				}
				if err := sourcetest.CheckPattern(img, tile, tc.tolerance); err != nil {
					t.Error(err)
				}
				if !got.Opaque {
					t.Errorf("Tile(%v) is not marked opaque", tile)
				}
			}
			for _, tile := range missing {
				if _, err := src.Tile(t.Context(), tile); !errors.Is(err, source.ErrNoData) {
					t.Errorf("Tile(%v) = %v, want ErrNoData for a tile MapProxy lacks", tile, err)
				}
			}
		})
	}

	t.Run("unknown wms layer", func(t *testing.T) {
		t.Parallel()
		for _, v := range []source.WMSVersion{source.WMS111, source.WMS130} {
			s, err := source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Version: v, Layers: []string{"roads"}, HTTP: source.HTTPConfig{Name: "roads"}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.Tile(t.Context(), testTile)
			var re *source.ResponseError
			if !errors.As(err, &re) || re.Code != "LayerNotDefined" || !strings.Contains(err.Error(), `wms "roads": tile 3/2/1`) ||
				!strings.Contains(err.Error(), "unknown layer: roads") {
				t.Errorf("WMS %s Tile(%v) = %v, want the LayerNotDefined exception naming the source and tile", v, testTile, err)
			}
		}
	})

	t.Run("unknown wmts layer", func(t *testing.T) {
		t.Parallel()
		s, err := source.NewWMTS(source.WMTSConfig{URL: mp.WMTSKVPURL(), Layer: "roads", TileMatrixSet: sourcetest.GridName})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Tile(t.Context(), testTile)
		var re *source.ResponseError
		if !errors.As(err, &re) || !re.Exception || !strings.Contains(err.Error(), "unknown layer: roads") {
			t.Errorf("Tile(%v) = %v, want the exception report quoted", testTile, err)
		}
	})

	t.Run("debug layer", func(t *testing.T) {
		t.Parallel()
		s, err := source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Layers: []string{sourcetest.DebugLayer}, Transparent: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tile := grid.Tile{Zoom: 10, Col: 1200, Row: 300}
		if got, err := s.Tile(t.Context(), tile); err != nil || got.Image == nil {
			t.Errorf("Tile(%v) = %v, want a drawn debug tile", tile, err)
		}
	})
}

func decodeTile(t source.Tile) (image.Image, error) {
	if t.Format == source.JPEG {
		return decodeJPEG(t.Data)
	}
	return decodePNG(t.Data)
}
