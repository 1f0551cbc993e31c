package gpkg

import "github.com/geoexport/exporter/internal/grid"

// TileMatrix is one row of gpkg_tile_matrix: the shape of one zoom level of
// a tile table.
type TileMatrix struct {
	Zoom                      grid.Zoom
	MatrixWidth, MatrixHeight int64   // in tiles
	TileWidth, TileHeight     int64   // in pixels
	PixelXSize, PixelYSize    float64 // in degrees per pixel
}

// matrixFor is the tile matrix of zoom z of the grid.
func matrixFor(z grid.Zoom) TileMatrix {
	return TileMatrix{
		Zoom:         z,
		MatrixWidth:  z.MatrixWidth(),
		MatrixHeight: z.MatrixHeight(),
		TileWidth:    grid.TileSize,
		TileHeight:   grid.TileSize,
		PixelXSize:   z.Resolution(),
		PixelYSize:   z.Resolution(),
	}
}

// InGrid reports whether m is exactly zoom m.Zoom of the grid, so that tiles
// read at that zoom can be addressed with grid.Tile.
func (m TileMatrix) InGrid() bool {
	return m.Zoom.Valid() && m == matrixFor(m.Zoom)
}
