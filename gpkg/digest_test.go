package gpkg_test

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"lukechampine.com/blake3"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
)

// wantDigest computes the content digest of tiles as ContentDigest
// documents it (LtHash16 over SHA-256 and BLAKE3's XOF), independently of
// the package (through blake3's OutputReader, which the package does not
// use) and in another order than any package reads them.
func wantDigest(tiles map[grid.Tile][]byte) string {
	keys := make([]grid.Tile, 0, len(tiles))
	for k := range tiles {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b grid.Tile) int {
		return -cmp.Or(cmp.Compare(a.Zoom, b.Zoom), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Row, b.Row))
	})
	var lanes [1024]uint16
	for _, k := range keys {
		var b []byte
		b = binary.BigEndian.AppendUint64(b, uint64(k.Zoom))
		b = binary.BigEndian.AppendUint64(b, uint64(k.Col))
		b = binary.BigEndian.AppendUint64(b, uint64(k.Row))
		b = binary.BigEndian.AppendUint64(b, uint64(len(tiles[k])))
		element := sha256.Sum256(append(b, tiles[k]...))
		expanded := make([]byte, 2*len(lanes))
		xof := blake3.New(32, nil)
		_, _ = xof.Write(element[:])
		if _, err := xof.XOF().Read(expanded); err != nil {
			panic(err)
		}
		for i := range lanes {
			lanes[i] += binary.LittleEndian.Uint16(expanded[2*i:])
		}
	}
	var state []byte
	for _, v := range lanes {
		state = binary.LittleEndian.AppendUint16(state, v)
	}
	sum := sha256.Sum256(state)
	return hex.EncodeToString(sum[:])
}

func TestContentDigest(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t, gpkgtest.WithMaxZoom(5), gpkgtest.WithFormat(gpkg.PNG))
	got := digest(t, p.Path)
	if want := wantDigest(p.Tiles); got != want {
		t.Errorf("ContentDigest() = %s, want %s", got, want)
	}

	// The same tiles written in another order, in other transactions: other
	// row ids and pages, the same digest.
	reversed := slices.Clone(p.Order)
	slices.Reverse(reversed)
	q := gpkgtest.BuildPackage(t, gpkgtest.WithMaxZoom(5), gpkgtest.WithFormat(gpkg.PNG), gpkgtest.WithTiles(reversed...), gpkgtest.WithBatchSize(3))
	if again := digest(t, q.Path); again != got {
		t.Errorf("ContentDigest(same tiles, reverse order) = %s, want %s", again, got)
	}

	// One tile less, or one tile with other data: another digest.
	fewer := gpkgtest.Build(t, gpkgtest.WithMaxZoom(5), gpkgtest.WithFormat(gpkg.PNG), gpkgtest.WithTiles(p.Order[1:]...))
	other := gpkgtest.Build(t, gpkgtest.WithMaxZoom(5), gpkgtest.WithFormat(gpkg.JPEG))
	for name, path := range map[string]string{"one tile less": fewer, "other data": other} {
		if d := digest(t, path); d == got {
			t.Errorf("ContentDigest(%s) = %s, the digest of the original", name, d)
		}
	}

	empty := gpkgtest.Build(t, gpkgtest.WithTiles())
	if d, want := digest(t, empty), gpkg.EmptyContentDigest; d != want {
		t.Errorf("ContentDigest(no tiles) = %s, want %s", d, want)
	}
	if want := wantDigest(nil); gpkg.EmptyContentDigest != want {
		t.Errorf("EmptyContentDigest = %s, want %s", gpkg.EmptyContentDigest, want)
	}
}

func TestContentDigestErrors(t *testing.T) {
	t.Parallel()
	damaged := func(stmts ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			path := gpkgtest.Build(t)
			gpkg.Exec(t, path, stmts...)
			return path
		}
	}
	tests := []struct {
		name  string
		path  func(t *testing.T) string
		table string
		want  error
	}{
		{name: "no such table", path: func(t *testing.T) string { return gpkgtest.Build(t) }, table: "other", want: gpkg.ErrTableNotFound},
		{name: "not a GeoPackage", path: func(t *testing.T) string { return writeFile(t, randomBytes(4096, 9)) }, table: "tiles", want: gpkg.ErrNotGeoPackage},
		{name: "text tile data", path: damaged("UPDATE tiles SET tile_data = 'x' WHERE id = 3"), table: "tiles", want: gpkg.ErrCorrupt},
		{name: "text tile row", path: damaged("UPDATE tiles SET tile_row = 'x' WHERE id = 3"), table: "tiles", want: gpkg.ErrCorrupt},
		{
			name: "tile data over MaxTileSize", path: damaged("UPDATE tiles SET tile_data = zeroblob(2097153) WHERE id = 3"),
			table: "tiles", want: gpkg.ErrTooLarge,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := gpkg.ContentDigest(t.Context(), tc.path(t), tc.table)
			if !errors.Is(err, tc.want) {
				t.Errorf("ContentDigest(%s) = %q, %v, want %v", tc.name, d, err, tc.want)
			}
		})
	}
}
