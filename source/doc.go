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
//   - [Demo], a map of the whole world (Natural Earth land, water,
//     coastlines and country borders, embedded by the world subpackage,
//     with a relief-like shading and a graticule) that needs no data files
//     and no network: the source of the built-in demo layer;
//   - [TileStore], pre-cut {z}/{x}/{y}.{ext} tiles in a directory or under
//     an object-store prefix, passed through without re-encoding;
//   - [WMS], GetMap requests (1.1.1 or 1.3.0) in EPSG:4326, fetched as
//     metatiles that are cut into tiles, with concurrent requests for one
//     metatile shared;
//   - [WMTS] (KVP or REST) and [XYZ] (URL templates), one request per tile
//     in the same grid, tiles passed through as sent;
//   - [GeoPackage], the tiles of a GeoPackage file, local or downloaded
//     from an object store, read through the small [TileReader] interface;
//   - [FilterNoData] and [IsNoData], which drop tiles entirely of a
//     layer's no-data colour;
//   - [Encode], [IsEmpty] and [IsOpaque], which turn a rendered image into
//     PNG or JPEG bytes under a [FormatPolicy].
//
// [ForLayer] opens the source a catalog layer's record describes; the
// worker renders exports from it and the trigger serves preview tiles from
// it, so both read a layer the same way.
//
// Every HTTP source has its own client with connect, header and request
// timeouts, a limit on requests in flight, and retries with exponential
// backoff and jitter for network errors, timeouts, 408, 429 (after
// Retry-After) and 5xx ([HTTPConfig]). An answer that is an OGC exception
// report, an HTML page or anything else but a PNG or JPEG is a
// [*ResponseError] quoting the service's text; a 204, or a 404 where
// configured, is [ErrNoData]. Errors name the source and the tile; URLs in
// errors lose their query, which may hold keys.
//
// It imports gpkg (to read GeoPackage sources), internal/grid,
// internal/catalog (the layer records ForLayer reads) and internal/storage
// (the object store of layers kept in S3, [StorageDeps]); it must not
// import worker, trigger or scheduler, which both use it: the worker to
// render exports, the trigger to serve preview tiles. Tile stores in an
// object store are read through the small [ObjectReader] and
// [ObjectOpener] interfaces, and GeoPackage files through [TileReader],
// so that tests can stand in for a failing store or file. The sourcetest
// package holds test helpers (a real MapProxy server) and is imported by
// tests only.
package source
