package source

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"time"

	"github.com/geoexport/exporter/internal/grid"
)

// NewPlainDemo returns a demo source that draws land, water and shading
// only, without lines, so that tests can compare zooms.
func NewPlainDemo(cfg DemoConfig) (*Demo, error) {
	return NewDemoLines(cfg, false, false, false)
}

// NewDemoLines returns a demo source that draws the graticule, the
// coastlines and the borders only where asked.
func NewDemoLines(cfg DemoConfig, graticule, coast, borders bool) (*Demo, error) {
	d, err := NewDemo(cfg)
	if err != nil {
		return nil, err
	}
	d.lines = 0
	for _, l := range []struct {
		on   bool
		line demoLines
	}{{graticule, drawGraticule}, {coast, drawCoast}, {borders, drawBorders}} {
		if l.on {
			d.lines |= l.line
		}
	}
	return d, nil
}

// DemoWaterColour is the colour of the demo's open water.
func DemoWaterColour() color.RGBA {
	return color.RGBA{clampByte(waterColour.r), clampByte(waterColour.g), clampByte(waterColour.b), 0xff}
}

// SetRetryClock replaces the sleep between retries and the clock of an
// HTTP source (a *WMS, *WMTS or *XYZ), so tests see the waits without
// waiting. It must be called before the first Tile.
func SetRetryClock(src Source, sleep func(context.Context, time.Duration) error, now func() time.Time) {
	var f *fetcher
	switch s := src.(type) {
	case *WMS:
		f = s.fetch
	case *WMTS:
		f = s.fetch
	case *XYZ:
		f = s.fetch
	default:
		panic(fmt.Sprintf("SetRetryClock: %T is not an HTTP source", src))
	}
	if sleep != nil {
		f.sleep = sleep
	}
	if now != nil {
		f.now = now
	}
}

// MetatileCache returns how many metatiles s keeps, how many fetches are
// in flight and how many callers wait for them.
func MetatileCache(s *WMS) (cached, inFlight, waiters int) { return s.cache.len() }

// CutMetatile decodes a cols × rows metatile image and cuts it into tiles,
// row by row: the work a WMS source does for each GetMap answer.
func CutMetatile(data []byte, cols, rows int) ([]image.Image, error) {
	m, err := decodeImage(data, cols*grid.TileSize, rows*grid.TileSize, false)
	if err != nil {
		return nil, err
	}
	tiles := make([]image.Image, 0, cols*rows)
	for y := range rows {
		for x := range cols {
			tiles = append(tiles, cutTile(m, x*grid.TileSize, y*grid.TileSize))
		}
	}
	return tiles, nil
}

// CropMetatile cuts a cols × rows JPEG metatile into JPEG tiles without
// decoding it: the work a WMS source does for a JPEG GetMap answer.
func CropMetatile(data []byte, cols, rows int) ([][]byte, error) { return turboCrop(data, cols, rows) }
