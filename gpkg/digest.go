package gpkg

import (
	"context"
	"database/sql"
	"fmt"
)

// ContentDigest returns the content digest of the tile table table in the
// package at path, as 64 lowercase hex digits: the SHA-256 of a multiset
// hash (TileSet) of its tiles, each tile encoded as
//
//	zoom_level, tile_column, tile_row, len(tile_data)  as 8-byte big-endian integers
//	tile_data                                          as stored
//
// The length prefix makes the encoding unambiguous. The digest depends on
// the tiles only, not on the file's page layout, row ids, metadata or the
// order tiles were written in: two packages with the same tiles have the
// same digest, which the file's own SHA-256 does not promise. Because the
// multiset hash is a sum, a package assembled from parts (Assembly) gets
// its digest from the parts' digests as they are merged, without reading
// the package again; ContentDigest reads it to check one. A table without
// tiles has the digest of the empty set,
// EmptyContentDigest. Tile data is hashed as stored; it is not decoded.
//
// The file is opened as Open does and treated as untrusted. Errors are
// those of Open, ErrTableNotFound or ErrNotTiles for table, ErrCorrupt for
// a row whose address is not integers or whose data is not a BLOB,
// ErrTooLarge for data over MaxTileSize, ctx.Err(), or classified SQLite
// errors.
func ContentDigest(ctx context.Context, path, table string) (string, error) {
	r, err := Open(ctx, path)
	if err != nil {
		return "", fmt.Errorf("content digest: %w", err)
	}
	defer r.Close() //nolint:errcheck // read-only
	sum, err := r.contentDigest(ctx, table)
	if err != nil {
		return "", fmt.Errorf("content digest of %q in %s: %w", table, path, err)
	}
	return sum, nil
}

func (r *Reader) contentDigest(ctx context.Context, tableName string) (string, error) {
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return "", err
	}
	// The order does not matter to the digest; the UNIQUE (zoom_level,
	// tile_column, tile_row) index reads the table in its page order. Values
	// of the wrong type are reported rather than hashed as whatever Scan
	// would make of them.
	rows, err := r.db.QueryContext(ctx, `SELECT typeof(zoom_level) = 'integer' AND typeof(tile_column) = 'integer'
			AND typeof(tile_row) = 'integer' AND typeof(tile_data) = 'blob',
		coalesce(CAST(zoom_level AS INTEGER), 0), coalesce(CAST(tile_column AS INTEGER), 0), coalesce(CAST(tile_row AS INTEGER), 0), tile_data
		FROM `+tbl.quoted+` ORDER BY zoom_level, tile_column, tile_row`)
	if err != nil {
		return "", translate(ctx, err)
	}
	var set TileSet
	for rows.Next() {
		var (
			ok      bool
			z, x, y int64
			data    sql.RawBytes // valid until Next: hashed, not kept
		)
		if err := rows.Scan(&ok, &z, &x, &y, &data); err != nil {
			_ = rows.Close()
			return "", translate(ctx, err)
		}
		if !ok {
			_ = rows.Close()
			return "", fmt.Errorf("%w: tile %d/%d/%d: address or data of the wrong type", ErrCorrupt, z, x, y)
		}
		set.AddTile(z, x, y, data)
	}
	if err := closeRows(ctx, rows); err != nil {
		return "", err
	}
	return set.Digest(), nil
}
