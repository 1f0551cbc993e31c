package gpkg_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/google/go-cmp/cmp"
)

// exportDocument is a metadata document shaped like the one finalize
// writes.
const exportDocument = `{"request":{"bbox":[22.5,22.5,45,45],"min_zoom":0,"max_zoom":4},"layer":"orthophoto",` +
	`"zooms":[0,1,2,3,4],"tiles":8,"content_digest":"sha256:0123"}`

// fixedClock returns a Now func that always returns t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// writeMetadata writes doc into path at time now and fails the test on
// error.
func writeMetadata(t *testing.T, path, doc string, now time.Time) {
	t.Helper()
	if err := gpkg.WriteMetadata(t.Context(), path, gpkg.Metadata{Document: []byte(doc), Now: fixedClock(now)}); err != nil {
		t.Fatalf("WriteMetadata(%q) = %v", path, err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	path := gpkgtest.Build(t)
	if recs, err := open(t, path).Metadata(t.Context()); err != nil || recs != nil {
		t.Fatalf("Metadata() of a package without metadata = %v, %v, want nil, nil", recs, err)
	}
	before := digest(t, path)
	first := time.Date(2025, 7, 1, 12, 0, 0, 250_000_000, time.UTC)
	writeMetadata(t, path, exportDocument, first)
	want := []gpkg.MetadataRecord{{
		ID: 1, Scope: "dataset", StandardURI: gpkg.MetadataStandardURI, MIMEType: "application/json",
		Document: []byte(exportDocument), ReferenceScope: "geopackage", Timestamp: first,
	}}
	if diff := cmp.Diff(want, readMetadata(t, path)); diff != "" {
		t.Errorf("Metadata() after WriteMetadata (-want +got):\n%s", diff)
	}

	// Writing again replaces the document and timestamp: still one record.
	second := first.Add(time.Hour)
	doc := `{"tiles":9}`
	writeMetadata(t, path, doc, second)
	want[0].Document, want[0].Timestamp = []byte(doc), second
	if diff := cmp.Diff(want, readMetadata(t, path)); diff != "" {
		t.Errorf("Metadata() after a second WriteMetadata (-want +got):\n%s", diff)
	}
	if got, want := gpkg.QueryString(t, path, `SELECT group_concat(table_name || ' ' || coalesce(column_name, 'NULL') || ' ' || extension_name || ' ' || definition || ' ' || scope, '; ') FROM gpkg_extensions`),
		"gpkg_metadata NULL gpkg_metadata http://www.geopackage.org/spec/#extension_metadata read-write; "+
			"gpkg_metadata_reference NULL gpkg_metadata http://www.geopackage.org/spec/#extension_metadata read-write"; got != want {
		t.Errorf("gpkg_extensions = %q, want %q", got, want)
	}
	if got, want := gpkg.QueryString(t, path, `SELECT typeof(metadata) || ' ' || typeof(timestamp) || ' ' || timestamp FROM gpkg_metadata JOIN gpkg_metadata_reference ON md_file_id = id`),
		"text text 2025-07-01T13:00:00.250Z"; got != want {
		t.Errorf("stored metadata types = %q, want %q", got, want)
	}
	if after := digest(t, path); after != before {
		t.Errorf("ContentDigest = %s after WriteMetadata, %s before: metadata is not content", after, before)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("ReadDir(%s) = %v, %v, want only the package (no journal left)", filepath.Dir(path), entries, err)
	}
}

// readMetadata opens path and returns its metadata records.
func readMetadata(t *testing.T, path string) []gpkg.MetadataRecord {
	t.Helper()
	r, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	defer r.Close() //nolint:errcheck // read-only
	recs, err := r.Metadata(t.Context())
	if err != nil {
		t.Fatalf("Metadata() = %v", err)
	}
	return recs
}

func TestWriteMetadataErrors(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		path func(t *testing.T) string
		doc  []byte
		want error
	}{
		{name: "not JSON", doc: []byte(`{"tiles":`), want: gpkg.ErrInvalidMetadata},
		{name: "empty document", doc: nil, want: gpkg.ErrInvalidMetadata},
		{name: "document too large", doc: []byte(`"` + strings.Repeat("x", gpkg.MaxMetadataSize) + `"`), want: gpkg.ErrInvalidMetadata},
		{
			name: "missing file",
			path: func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing.gpkg") },
			want: fs.ErrNotExist,
		},
		{
			name: "not a GeoPackage",
			path: func(t *testing.T) string { return writeFile(t, randomBytes(8192, 3)) },
			want: gpkg.ErrNotGeoPackage,
		},
		{
			name: "no tile tables",
			path: func(t *testing.T) string {
				path := gpkgtest.Build(t)
				gpkg.Exec(t, path, "DROP TABLE gpkg_tile_matrix_set")
				return path
			},
			want: gpkg.ErrNotTiles,
		},
		{name: "canceled context", ctx: canceled, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := gpkgtest.Build(t)
			if tc.path != nil {
				path = tc.path(t)
			}
			before, _ := os.ReadFile(path)
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			doc := tc.doc
			if doc == nil && tc.name != "empty document" {
				doc = []byte(exportDocument)
			}
			err := gpkg.WriteMetadata(ctx, path, gpkg.Metadata{Document: doc})
			if !errors.Is(err, tc.want) {
				t.Fatalf("WriteMetadata(%s) = %v, want %v", tc.name, err, tc.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("WriteMetadata(%s) failed but changed the file", tc.name)
			}
		})
	}
}

func TestReaderMetadataOfForeignFiles(t *testing.T) {
	t.Parallel()
	withMetadata := func(t *testing.T, stmts ...string) string {
		t.Helper()
		path := gpkgtest.Build(t)
		writeMetadata(t, path, exportDocument, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		gpkg.Exec(t, path, stmts...)
		return path
	}
	many := []string{}
	for i := range 64 {
		many = append(many, fmt.Sprintf(`INSERT INTO gpkg_metadata (md_standard_uri, metadata) VALUES ('urn:x', '<x n="%d"/>')`, i))
	}
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		want    error
		records int
	}{
		{
			name: "ISO metadata without a reference",
			path: func(t *testing.T) string {
				return withMetadata(t, `INSERT INTO gpkg_metadata (md_standard_uri, metadata) VALUES ('http://www.isotc211.org/2005/gmd', '<gmd:MD_Metadata/>')`)
			},
			records: 2,
		},
		{
			name: "two references to one record",
			path: func(t *testing.T) string {
				return withMetadata(t, `INSERT INTO gpkg_metadata_reference (reference_scope, table_name, timestamp, md_file_id)
					VALUES ('table', 'tiles', '2025-02-03T04:05:06Z', 1)`)
			},
			records: 2,
		},
		{
			name:    "no reference table",
			path:    func(t *testing.T) string { return withMetadata(t, "DROP TABLE gpkg_metadata_reference") },
			records: 1,
		},
		{
			name: "metadata table is a view",
			path: func(t *testing.T) string {
				return withMetadata(t, "ALTER TABLE gpkg_metadata RENAME TO md", "CREATE VIEW gpkg_metadata AS SELECT * FROM md")
			},
			want: gpkg.ErrNotGeoPackage,
		},
		{
			name: "too many records",
			path: func(t *testing.T) string { return withMetadata(t, many...) },
			want: gpkg.ErrTooLarge,
		},
		{
			name: "document too large",
			path: func(t *testing.T) string {
				return withMetadata(t, fmt.Sprintf(`UPDATE gpkg_metadata SET metadata = CAST(zeroblob(%d) AS TEXT)`, gpkg.MaxMetadataSize+1))
			},
			want: gpkg.ErrTooLarge,
		},
		{
			name: "timestamp not RFC 3339",
			path: func(t *testing.T) string {
				return withMetadata(t, `UPDATE gpkg_metadata_reference SET timestamp = 'yesterday'`)
			},
			want: gpkg.ErrCorrupt,
		},
		{
			name: "values of other types",
			path: func(t *testing.T) string {
				return withMetadata(t, `UPDATE gpkg_metadata SET md_scope = 7, metadata = x'7b7d'`,
					`UPDATE gpkg_metadata_reference SET table_name = NULL, reference_scope = 1.5`)
			},
			records: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs, err := open(t, tc.path(t)).Metadata(t.Context())
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Metadata() = %v, want %v", err, tc.want)
			}
			if len(recs) != tc.records {
				t.Errorf("Metadata() = %d records, want %d: %+v", len(recs), tc.records, recs)
			}
		})
	}
}
