// Package grid is the tile grid every export is cut in: EPSG:4326 in GDAL's
// InspireCRS84Quad layout, where zoom 0 is 2 × 1 tiles of 256 × 256 pixels
// covering [-180, -90, 180, 90] and each zoom halves the pixel size.
//
// Conventions, stated once for the whole project:
//
//   - Columns count from the west (-180°), rows from the north (90°), as
//     GeoPackage stores them. Sources that count rows from the south flip
//     them at their own boundary with [Zoom.FlipRow].
//   - A [TileRange] is half-open: it holds columns MinCol ≤ col < MaxCol and
//     rows MinRow ≤ row < MaxRow, so its width is MaxCol-MinCol and an empty
//     range has MinCol == MaxCol or MinRow == MaxRow.
//   - A [Coverage] is a set of tiles per zoom held as row runs: each row's
//     half-open column runs ([Span]) sorted, disjoint and never touching, rows
//     ascending, so equal sets of tiles are equal values. [Zoom.CoverRings]
//     computes the tiles an area meets with a non-zero area by a
//     scanline; coarser zooms derive from finer ones ([Level.Parent]).
//
// The package imports no other project package.
package grid
