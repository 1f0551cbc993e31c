package area

import (
	"fmt"

	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/internal/grid"
)

// PixelZoom is how many zooms below a tile its pixels lie: a tile's
// 256 × 256 pixels are the tiles of zoom z+8 within it.
const PixelZoom = 8

// Cutter finds the pixels of a tile that lie in an area, for cutlines:
// the pixels of an edge tile outside the area are made transparent.
type Cutter struct {
	fp    Footprint
	parts []cutPart
}

// cutPart is one feature's rings within the footprint and its zooms.
type cutPart struct {
	rings            []grid.Ring
	minZoom, maxZoom grid.Zoom
}

// NewCutter prepares the features of an area, each clipped to the
// footprint once, so that Mask costs a scanline per feature of a tile.
func NewCutter(features []Feature, fp Footprint) (*Cutter, error) {
	c := &Cutter{fp: fp}
	for i, f := range features {
		g := f.Geometry
		if fp.polygon {
			var err error
			if g, err = geom.Intersection(g, fp.geometry); err != nil {
				return nil, fmt.Errorf("area: clip feature %d to the footprint: %w", i, err)
			}
		}
		c.parts = append(c.parts, cutPart{rings: Rings(g), minZoom: f.MinZoom, maxZoom: f.MaxZoom})
	}
	return c, nil
}

// Mask returns the pixels of tile t that meet the area (the features that
// ask for t's zoom, within the footprint) with a non-zero area, as a Level
// at zoom t.Zoom+PixelZoom whose rows and columns count pixels from the
// grid's north-west corner; whole is true when that is every pixel of t.
func (c *Cutter) Mask(t grid.Tile) (mask grid.Level, whole bool) {
	pz := t.Zoom + PixelZoom
	mask = grid.Level{Zoom: pz}
	clip, err := t.Zoom.TileBounds(t.Col, t.Row).Intersect(c.fp.bbox)
	if err != nil {
		return mask, false
	}
	for _, p := range c.parts {
		if t.Zoom < p.minZoom || t.Zoom > p.maxZoom {
			continue
		}
		mask = mask.Union(pz.CoverRings(p.rings, clip))
	}
	return mask, mask.Count() == grid.TileSize*grid.TileSize
}
