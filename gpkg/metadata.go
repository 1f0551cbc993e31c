package gpkg

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MetadataStandardURI is gpkg_metadata.md_standard_uri of the record
// WriteMetadata writes. It names this project's JSON document (the export
// request, layer, zoom levels, tile count and content digest, as the caller
// assembles it), not an ISO or OGC metadata standard; readers select the
// record by it.
const MetadataStandardURI = "https://github.com/geoexport/exporter/metadata"

// MetadataMIMEType is gpkg_metadata.mime_type of the record WriteMetadata
// writes.
const MetadataMIMEType = "application/json"

// MaxMetadataSize is the largest document WriteMetadata writes and
// Reader.Metadata returns, in bytes.
const MaxMetadataSize = 1 << 20

// Limits on what Reader.Metadata reads from an untrusted file: records and
// the bytes of all their text columns together.
const (
	maxMetadataRecords = 64
	maxMetadataBytes   = 8 << 20
)

// Metadata is the document WriteMetadata stores.
type Metadata struct {
	// Document is the JSON document stored in gpkg_metadata.metadata, as
	// given. Required: valid JSON of at most MaxMetadataSize bytes.
	Document []byte
	// Now returns the time stored in gpkg_metadata_reference.timestamp.
	// Nil means time.Now.
	Now func() time.Time
}

// validate checks md. Errors wrap ErrInvalidMetadata.
func (md Metadata) validate() error {
	switch {
	case len(md.Document) > MaxMetadataSize:
		return fmt.Errorf("%w: document is %d bytes, at most %d allowed", ErrInvalidMetadata, len(md.Document), MaxMetadataSize)
	case !json.Valid(md.Document):
		return fmt.Errorf("%w: document is not JSON", ErrInvalidMetadata)
	}
	return nil
}

// MetadataRecord is a row of gpkg_metadata joined with a row of
// gpkg_metadata_reference that refers to it.
type MetadataRecord struct {
	// ID is gpkg_metadata.id.
	ID int64
	// Scope is md_scope, such as "dataset".
	Scope string
	// StandardURI is md_standard_uri: MetadataStandardURI for the record
	// WriteMetadata writes.
	StandardURI string
	// MIMEType is mime_type.
	MIMEType string
	// Document is the metadata column; the caller owns it.
	Document []byte
	// ReferenceScope is the reference_scope of the gpkg_metadata_reference
	// row ("geopackage", "table", "column", "row" or "row/col"), or "" for
	// a gpkg_metadata row nothing refers to.
	ReferenceScope string
	// Table is the reference's table_name; "" for the geopackage scope.
	Table string
	// Timestamp is the reference's timestamp; zero without a reference.
	Timestamp time.Time
}

// WriteMetadata adds md to the finished GeoPackage at path, per the
// GeoPackage Metadata extension: it creates gpkg_metadata and
// gpkg_metadata_reference and registers the extension in gpkg_extensions
// (if not yet done), and stores md.Document with md_scope "dataset",
// md_standard_uri MetadataStandardURI and mime_type MetadataMIMEType,
// referenced with reference_scope "geopackage" (it describes the whole
// package) and timestamp md.Now().
//
// The package keeps one such record: writing again replaces its document
// and timestamp, so WriteMetadata is idempotent. It writes in one
// transaction with SQLite's default rollback journal (a -journal file
// exists beside path while it runs) and synchronous commit, so on failure
// the package is unchanged. It leaves gpkg_contents.last_change alone:
// metadata is not tile content.
//
// Errors wrap ErrInvalidMetadata for a bad document, the errors of Open's
// header and table checks (ErrNotGeoPackage, ErrNotTiles, ErrCorrupt,
// fs.ErrNotExist, …), ctx.Err(), or classified SQLite errors.
func WriteMetadata(ctx context.Context, path string, md Metadata) error {
	if err := writeMetadata(ctx, path, md); err != nil {
		return fmt.Errorf("write metadata to %s: %w", path, err)
	}
	return nil
}

func writeMetadata(ctx context.Context, path string, md Metadata) (err error) {
	if err := md.validate(); err != nil {
		return err
	}
	now := md.Now
	if now == nil {
		now = time.Now
	}
	if _, err := readHeader(path); err != nil {
		return err
	}
	db, err := openDB(path, "", 1, writeHook)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = translate(ctx, cerr)
		}
	}()
	return putMetadata(ctx, db, md, now)
}

// txBeginner is a *sql.DB or *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// putMetadata writes md as the package's metadata record, stamped with
// now(), in one transaction on db.
func putMetadata(ctx context.Context, db txBeginner, md Metadata, now func() time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return translate(ctx, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := checkSchema(ctx, tx, "main"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, metadataSchema); err != nil {
		return translate(ctx, err)
	}
	stamp := formatTime(now())
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT m.id FROM gpkg_metadata m JOIN gpkg_metadata_reference r ON r.md_file_id = m.id
		WHERE m.md_standard_uri = ? AND r.reference_scope = 'geopackage' ORDER BY m.id LIMIT 1`, MetadataStandardURI).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.ExecContext(ctx, `INSERT INTO gpkg_metadata (md_scope, md_standard_uri, mime_type, metadata) VALUES ('dataset', ?, ?, ?)`,
			MetadataStandardURI, MetadataMIMEType, string(md.Document))
		if err != nil {
			return translate(ctx, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return translate(ctx, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gpkg_metadata_reference (reference_scope, table_name, column_name, row_id_value, timestamp, md_file_id, md_parent_id)
			VALUES ('geopackage', NULL, NULL, NULL, ?, ?, NULL)`, stamp, id); err != nil {
			return translate(ctx, err)
		}
	case err != nil:
		return translate(ctx, err)
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE gpkg_metadata SET md_scope = 'dataset', mime_type = ?, metadata = ? WHERE id = ?`,
			MetadataMIMEType, string(md.Document), id); err != nil {
			return translate(ctx, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE gpkg_metadata_reference SET timestamp = ? WHERE md_file_id = ? AND reference_scope = 'geopackage'`,
			stamp, id); err != nil {
			return translate(ctx, err)
		}
	}
	return translate(ctx, tx.Commit())
}

// Metadata returns the metadata records of the package, ordered by
// gpkg_metadata.id: one per gpkg_metadata_reference row, and one for each
// gpkg_metadata row nothing refers to. A package without gpkg_metadata has
// none (nil, nil).
//
// The file is untrusted: errors wrap ErrTooLarge for more than 64 records,
// a document over MaxMetadataSize or more than 8 MiB in all,
// ErrNotGeoPackage if a metadata table is a view or virtual table,
// ErrCorrupt for a timestamp that is not RFC 3339, and otherwise ErrClosed,
// ctx.Err() or classified SQLite errors.
func (r *Reader) Metadata(ctx context.Context) ([]MetadataRecord, error) {
	recs, err := r.metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	return recs, nil
}

func (r *Reader) metadata(ctx context.Context) ([]MetadataRecord, error) {
	if err := r.usable(); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT lower(coalesce(name, '')), coalesce(type, ''), coalesce(sql, '') FROM sqlite_master
		WHERE lower(name) IN ('gpkg_metadata', 'gpkg_metadata_reference')`)
	if err != nil {
		return nil, translate(ctx, err)
	}
	found := map[string]bool{}
	for rows.Next() {
		var name, typ, ddl string
		if err := rows.Scan(&name, &typ, &ddl); err != nil {
			_ = rows.Close()
			return nil, translate(ctx, err)
		}
		if typ != "table" || isVirtual(ddl) {
			_ = rows.Close()
			return nil, fmt.Errorf("%w: %s is a %s, not a table", ErrNotGeoPackage, name, typ)
		}
		found[name] = true
	}
	if err := closeRows(ctx, rows); err != nil {
		return nil, err
	}
	if !found["gpkg_metadata"] {
		return nil, nil
	}
	// Every column goes through CAST and coalesce, so Scan never meets a
	// type it cannot convert.
	from := `gpkg_metadata m LEFT JOIN gpkg_metadata_reference r ON r.md_file_id = m.id`
	ref := `coalesce(CAST(r.reference_scope AS TEXT), ''), coalesce(CAST(r.table_name AS TEXT), ''), coalesce(CAST(r.timestamp AS TEXT), '')`
	order := `m.id, r.rowid`
	if !found["gpkg_metadata_reference"] {
		from, ref, order = `gpkg_metadata m`, `'', '', ''`, `m.id`
	}
	size := func(cols ...string) string {
		var sum string
		for _, c := range cols {
			sum += ` + coalesce(octet_length(` + c + `), 0)`
		}
		return "0" + sum
	}
	all := size("m.md_scope", "m.md_standard_uri", "m.mime_type", "m.metadata")
	if found["gpkg_metadata_reference"] {
		all = size("m.md_scope", "m.md_standard_uri", "m.mime_type", "m.metadata", "r.reference_scope", "r.table_name", "r.timestamp")
	}
	var n, total, largest int64
	if err := r.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(`+all+`), 0), coalesce(max(`+size("m.metadata")+`), 0)
		FROM `+from).Scan(&n, &total, &largest); err != nil {
		return nil, translate(ctx, err)
	}
	switch {
	case n > maxMetadataRecords:
		return nil, fmt.Errorf("%w: %d metadata records, at most %d read", ErrTooLarge, n, maxMetadataRecords)
	case largest > MaxMetadataSize:
		return nil, fmt.Errorf("%w: metadata document of %d bytes, at most %d read", ErrTooLarge, largest, MaxMetadataSize)
	case total > maxMetadataBytes:
		return nil, fmt.Errorf("%w: %d bytes of metadata, at most %d read", ErrTooLarge, total, maxMetadataBytes)
	}
	rows, err = r.db.QueryContext(ctx, `SELECT coalesce(CAST(m.id AS INTEGER), 0), coalesce(CAST(m.md_scope AS TEXT), ''),
		coalesce(CAST(m.md_standard_uri AS TEXT), ''), coalesce(CAST(m.mime_type AS TEXT), ''), coalesce(CAST(m.metadata AS BLOB), x''),
		`+ref+` FROM `+from+` ORDER BY `+order+` LIMIT ?`, maxMetadataRecords)
	if err != nil {
		return nil, translate(ctx, err)
	}
	var recs []MetadataRecord
	for rows.Next() {
		var (
			rec   MetadataRecord
			stamp string
		)
		if err := rows.Scan(&rec.ID, &rec.Scope, &rec.StandardURI, &rec.MIMEType, &rec.Document, &rec.ReferenceScope, &rec.Table, &stamp); err != nil {
			_ = rows.Close()
			return nil, translate(ctx, err)
		}
		if stamp != "" {
			if rec.Timestamp, err = time.Parse(time.RFC3339Nano, stamp); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("%w: metadata %d: timestamp %q is not RFC 3339", ErrCorrupt, rec.ID, stamp[:min(len(stamp), 40)])
			}
		}
		recs = append(recs, rec)
	}
	if err := closeRows(ctx, rows); err != nil {
		return nil, err
	}
	return recs, nil
}
