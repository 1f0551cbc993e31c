package worker

import (
	"fmt"
	"image"
	"image/draw"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// pngPolicy encodes the edge tiles of a cutline, whose transparency a
// JPEG could not keep.
var pngPolicy, _ = source.ParseFormatPolicy("png")

// cutEdge makes the pixels of tile t that lie outside the area of cut
// transparent. ok is false for a tile wholly inside the area (left as it
// is); img is nil for an edge tile with nothing left.
func cutEdge(cut *area.Cutter, t grid.Tile, src source.Tile) (img *image.NRGBA, ok bool, err error) {
	mask, whole := cut.Mask(t)
	if whole {
		return nil, false, nil
	}
	in := src.Image
	if in == nil {
		if in, err = source.DecodeTile(src.Data); err != nil {
			return nil, false, fmt.Errorf("cutline of tile %s: %w", t, err)
		}
	}
	out := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	x0, y0 := t.Col*grid.TileSize, t.Row*grid.TileSize
	for _, r := range mask.Rows {
		y := int(r.Row - y0)
		for _, s := range r.Spans {
			rect := image.Rect(int(s.Min-x0), y, int(s.Max-x0), y+1)
			draw.Draw(out, rect, in, in.Bounds().Min.Add(rect.Min), draw.Src)
		}
	}
	if source.IsEmpty(out) {
		return nil, true, nil
	}
	return out, true, nil
}
