// Package source provides the tile sources a render worker reads from, and
// the encoding of rendered tiles into the bytes a GeoPackage stores.
//
// A [Source] answers one question: what is the tile at this grid address?
// Tiles are addressed in the project grid ([grid.Tile]: EPSG:4326
// InspireCRS84Quad, rows counted from the north). A source whose own
// storage counts rows from the south flips them at its boundary, once, and
// nowhere else.
//
// The package holds:
//
//   - [Demo], a synthetic world that needs no data files: the source of the
//     built-in demo layer;
//   - [TileStore], pre-cut {z}/{x}/{y}.{ext} tiles in a directory or under
//     an object-store prefix, passed through without re-encoding;
//   - [Encode], [IsEmpty] and [IsOpaque], which turn a rendered image into
//     PNG or JPEG bytes under a [FormatPolicy].
//
// It imports only internal/grid from the project; it must not import
// worker, internal/storage or any other project package. Object stores are
// reached through the small [ObjectReader] interface declared here, which
// the project's S3/MinIO adapter satisfies.
package source
