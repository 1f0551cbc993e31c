package gpkg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"

	"github.com/geoexport/exporter/internal/grid"
)

// partRecordTable is the table in which a Writer with Options.Record
// leaves, at Close, the TileSet of the tiles it holds and their number and
// bytes per zoom: one row (tile_set BLOB, by_zoom TEXT, a JSON object of
// zoom to {"tiles", "bytes"}). An Assembly merging the part takes its
// digest from there instead of reading every tile's data again, which
// was about half the work of a merge (docs/performance.md). The record is
// written by the process that encoded the tiles, from the bytes it
// inserted; the merge checks it against the table's counts and bytes per
// zoom, which SQLite reads from record headers, and reads the tiles'
// contents as before when it is missing or does not match.
const partRecordTable = "exporter_part"

// partRecord is a part's record: what Put inserted, kept as it goes.
type partRecord struct {
	set    TileSet
	byZoom map[grid.Zoom]ZoomSize
	// tiles holds each tile's sum and size, so that a Put replacing a tile
	// takes the old one out; nil in a record read back from a part.
	tiles map[grid.Tile]recordedTile
}

type recordedTile struct {
	sum  [sha256.Size]byte
	size int64
}

func newPartRecord() *partRecord {
	return &partRecord{byZoom: map[grid.Zoom]ZoomSize{}, tiles: map[grid.Tile]recordedTile{}}
}

// put records tile t of size bytes whose tileSum is sum and whose
// expansion is lanes, in place of what t held before.
func (r *partRecord) put(t grid.Tile, sum [sha256.Size]byte, lanes *[TileSetSize]byte, size int64) {
	if old, ok := r.tiles[t]; ok {
		if old.sum == sum {
			return
		}
		r.set.subSum(old.sum)
		r.count(t.Zoom, -1, -old.size)
	}
	r.set.addLanes(lanes, 1)
	r.count(t.Zoom, 1, size)
	r.tiles[t] = recordedTile{sum: sum, size: size}
}

func (r *partRecord) count(z grid.Zoom, tiles, bytes int64) {
	n := r.byZoom[z]
	n.Tiles += tiles
	n.Bytes += bytes
	if n.Tiles == 0 {
		delete(r.byZoom, z)
		return
	}
	r.byZoom[z] = n
}

// zoomRecord is the JSON form of one zoom's entry in by_zoom.
type zoomRecord struct {
	Tiles int64 `json:"tiles"`
	Bytes int64 `json:"bytes"`
}

// marshalSizes is the JSON text of tiles and bytes per zoom, as records
// of parts and of an assembly's merged parts hold them.
func marshalSizes(byZoom map[grid.Zoom]ZoomSize) (string, error) {
	doc := make(map[grid.Zoom]zoomRecord, len(byZoom))
	for z, n := range byZoom {
		doc[z] = zoomRecord(n)
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

// unmarshalSizes reads the JSON text marshalSizes writes.
func unmarshalSizes(text string) (map[grid.Zoom]ZoomSize, error) {
	var doc map[grid.Zoom]zoomRecord
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	byZoom := make(map[grid.Zoom]ZoomSize, len(doc))
	for z, v := range doc {
		byZoom[z] = ZoomSize(v)
	}
	return byZoom, nil
}

// write creates partRecordTable in tx and writes r into it.
func (r *partRecord) write(ctx context.Context, tx *sql.Tx) error {
	byZoom, err := marshalSizes(r.byZoom)
	if err != nil {
		return err
	}
	set, _ := r.set.MarshalBinary()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE `+partRecordTable+` (tile_set BLOB NOT NULL, by_zoom TEXT NOT NULL)`); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO `+partRecordTable+` (tile_set, by_zoom) VALUES (?, ?)`, set, byZoom)
	return err
}

// readPartRecord reads the record of the part attached as partSchema whose
// tiles are in table (checked by checkPart): nil when it has none, or one
// that is not well formed, or whose tiles and bytes per zoom are not the
// table's.
func readPartRecord(ctx context.Context, q queryer, table string) (*partRecord, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+partSchema+`.sqlite_master WHERE type = 'table' AND name = ?`, partRecordTable).Scan(&n)
	if err != nil || n == 0 {
		return nil, translate(ctx, err)
	}
	var (
		set    []byte
		byZoom string
		rowsN  int
	)
	t := partSchema + `.` + partRecordTable
	err = q.QueryRowContext(ctx, `SELECT tile_set, by_zoom, (SELECT count(*) FROM `+t+`) FROM `+t+` LIMIT 1`).Scan(&set, &byZoom, &rowsN)
	if errors.Is(err, sql.ErrNoRows) || err == nil && rowsN != 1 {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, translate(ctx, err)
		}
		return nil, nil // a record of the wrong types: the tiles are read instead
	}
	rec := &partRecord{}
	if rec.byZoom, err = unmarshalSizes(byZoom); err != nil || rec.set.UnmarshalBinary(set) != nil {
		return nil, nil
	}
	// SQLite reads a blob's length from its record header: no tile data.
	rows, err := q.QueryContext(ctx, `SELECT zoom_level, count(*), sum(length(tile_data)) FROM `+partSchema+`.`+quoteIdent(table)+` GROUP BY zoom_level`)
	if err != nil {
		return nil, translate(ctx, err)
	}
	held := map[grid.Zoom]ZoomSize{}
	for rows.Next() {
		var (
			z int64
			n ZoomSize
		)
		if err := rows.Scan(&z, &n.Tiles, &n.Bytes); err != nil {
			_ = rows.Close()
			return nil, translate(ctx, err)
		}
		held[grid.Zoom(z)] = n // checkPartTiles let only zooms of the grid in
	}
	if err := closeRows(ctx, rows); err != nil {
		return nil, err
	}
	if !maps.Equal(held, rec.byZoom) {
		return nil, nil
	}
	return rec, nil
}
