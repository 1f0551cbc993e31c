// Package gpkg is the GeoPackage tiles format of the exporter: it creates a
// tiles GeoPackage, batch-writes encoded tiles into it and reads tiles and
// tile matrix metadata back from packages it did not necessarily write.
//
// It is the only package of the project that talks to SQLite. Everything it
// returns is in terms of the tile grid of [grid] (EPSG:4326,
// InspireCRS84Quad); SQLite errors are classified into this package's
// sentinel errors before they leave it, so callers never see driver types.
//
// # What a package holds
//
// A file written by [Create] follows OGC GeoPackage 1.3 (application_id
// "GPKG", user_version 10300) and passes GDAL's validate_gpkg.py:
//
//   - gpkg_spatial_ref_sys with the three required rows (-1, 0, 4326);
//   - gpkg_contents with one row of data_type "tiles" for the tile table,
//     whose bounds are the export's extent;
//   - gpkg_tile_matrix_set covering the whole grid, [-180, -90, 180, 90];
//   - gpkg_tile_matrix with one row per zoom level that holds a tile;
//   - the tile pyramid user table itself.
//
// Feature tables are never created: a tiles package needs none. Metadata
// is optional: [WriteMetadata] adds the tables of the GeoPackage Metadata
// extension (gpkg_metadata, gpkg_metadata_reference, registered in
// gpkg_extensions) with one JSON record of this project
// ([MetadataStandardURI]), and the file still passes the validator.
//
// Rows count from the north (tile_row 0 is the top row), as GeoPackage
// does and as [grid.Tile] does; sources that count from the south flip
// rows with [grid.Zoom.FlipRow] before they call [Writer.Put].
//
// # Untrusted files
//
// [Open] treats its file as untrusted: it checks the SQLite header, the page
// size and page count against the file size and the application_id before
// SQLite parses anything, opens the file read-only with a cap on the size of
// any value SQLite materialises, refuses views and virtual tables in place of
// the GeoPackage tables, and [Reader.ReadTile] returns only PNG or JPEG data
// of [grid.TileSize] × [grid.TileSize] pixels, at most [MaxTileSize] bytes.
//
// # Merging parts
//
// An export is written in batches, each into a part package; [Merge]
// creates the final package like [Create] and copies every part into it
// with one INSERT … SELECT per part, so tiles never pass through Go. Parts
// are untrusted like [Open]'s files: the same header checks run before a
// part is attached (read-only, one at a time), and its schema, grid and
// tile rows are checked before anything is copied. An [Assembly] merges
// parts one at a time, as an export's batches store them, recording in
// the package which parts it holds (in each part's own transaction) and
// keeping the content digest as it goes. [ContentDigest] is a multiset
// hash of the tiles ([TileSet]), so the merged package and one written
// directly with the same tiles have the same digest whatever their order
// and page layout, and an Assembly sums it part by part without reading
// the package again; the finalize step records it in the package's
// metadata.
//
// # Dependencies
//
// gpkg imports no project package other than internal/grid, and no
// project package other than this one imports the SQLite driver.
package gpkg
