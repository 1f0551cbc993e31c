package gpkg_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/google/go-cmp/cmp"
)

// openAssembly opens the assembly at path with mergeOptions and fails the
// test on error.
func openAssembly(t *testing.T, path string) *gpkg.Assembly {
	t.Helper()
	a, err := gpkg.OpenAssembly(t.Context(), path, mergeOptions())
	if err != nil {
		t.Fatalf("OpenAssembly(%q) = %v", path, err)
	}
	return a
}

// TestAssembly merges parts one at a time, closing and reopening between
// them, one part twice and one that replaces tiles, and checks the
// finished package against Merge of the same parts: the same tiles, and
// the digest and sizes kept while merging are those read from the package.
func TestAssembly(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	other := buildPart(t, all[4:10], gpkgtest.WithFormat(gpkg.JPEG)) // replaced by the part after it
	parts := []string{buildPart(t, all[16:]), other, buildPart(t, all[:12]), buildPart(t, all[12:16])}
	path := filepath.Join(t.TempDir(), "assembled.gpkg")
	for i, part := range parts {
		a := openAssembly(t, path)
		if got, want := a.Parts(), i; got != want {
			t.Errorf("Parts() after reopening = %d, want %d", got, want)
		}
		for range 2 { // a part merged twice counts once
			if _, err := a.MergePart(t.Context(), int64(i), part); err != nil {
				t.Fatalf("MergePart(%d) = %v", i, err)
			}
			if !a.Merged(int64(i)) {
				t.Errorf("Merged(%d) = false after MergePart", i)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	a := openAssembly(t, path)
	if merged, err := a.MergePart(t.Context(), 0, parts[0]); err != nil || merged {
		t.Errorf("MergePart of a merged part after reopening = %v, %v; want false, nil", merged, err)
	}
	res, err := a.Finish(t.Context(), nil)
	if err != nil {
		t.Fatalf("Finish() = %v", err)
	}
	want := digest(t, buildPart(t, all))
	if res.ContentDigest != want {
		t.Errorf("Finish().ContentDigest = %s, want %s (the tiles written directly)", res.ContentDigest, want)
	}
	if got := digest(t, path); got != want {
		t.Errorf("ContentDigest(assembled) = %s, want %s", got, want)
	}
	if diff := cmp.Diff(mergeByZoom, res.ByZoom); diff != "" || res.Tiles != int64(len(all)) || res.Parts != len(parts) {
		t.Errorf("Finish() = %d tiles of %d parts, want %d of %d; by zoom (-want +got):\n%s", res.Tiles, res.Parts, len(all), len(parts), diff)
	}
	checkSizes(t, path, res)
	checkMerged(t, path, all)
}

// checkSizes compares the tiles and bytes per zoom that Finish kept while
// merging with those read from the finished package at path.
func checkSizes(t *testing.T, path string, res gpkg.AssemblyResult) {
	t.Helper()
	r, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want, err := r.SizeByZoom(t.Context(), mergeOptions().Table)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.Sizes); diff != "" {
		t.Errorf("Finish().Sizes differ from the package's SizeByZoom (-package +kept):\n%s", diff)
	}
}

// TestAssemblyRecordedParts merges parts that carry their record
// (Options.Record), as workers write them: the digest, counts and tiles
// are those of the tiles written directly, also when the part's Writer
// replaced tiles (the record takes the old data out) and when the package
// already held some of the part's tiles. A record that does not match its
// table (tiles per zoom) is not used: the part's data is read instead.
func TestAssemblyRecordedParts(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	// A part whose Writer put tiles 0-3 as JPEG first, then as PNG.
	replaced := filepath.Join(t.TempDir(), "replaced.gpkg")
	opt := mergeOptions()
	opt.Record = true
	w, err := gpkg.Create(t.Context(), replaced, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []gpkg.Format{gpkg.JPEG, gpkg.PNG} {
		for _, tile := range all[:4] {
			if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The Writer's record is the digest of what it holds.
	set, err := hex.DecodeString(gpkg.QueryString(t, replaced, `SELECT hex(tile_set) FROM exporter_part`))
	if sum := sha256.Sum256(set); err != nil || hex.EncodeToString(sum[:]) != digest(t, replaced) {
		t.Errorf("the record's tile set hashes to %x, want the part's content digest %s", sum, digest(t, replaced))
	}
	var zooms []string
	for _, tile := range all[:4] { // one tile at each of zooms 0-3
		zooms = append(zooms, fmt.Sprintf(`"%d":{"tiles":1,"bytes":%d}`, tile.Zoom, len(gpkgtest.Image(t, tile, gpkg.PNG))))
	}
	if got, want := gpkg.QueryString(t, replaced, `SELECT by_zoom FROM exporter_part`), "{"+strings.Join(zooms, ",")+"}"; got != want {
		t.Errorf("the record's by_zoom = %s, want %s", got, want)
	}
	mismatched := buildPart(t, all[4:9], gpkgtest.WithRecord())
	gpkg.Exec(t, mismatched, `UPDATE exporter_part SET by_zoom = '{}'`)
	parts := []string{
		replaced,
		mismatched,
		buildPart(t, all[9:], gpkgtest.WithRecord()),
		buildPart(t, all[6:12], gpkgtest.WithRecord()), // tiles 6-11 again: replaces what the package holds
	}
	path := filepath.Join(t.TempDir(), "assembled.gpkg")
	a := openAssembly(t, path)
	for i, part := range parts {
		if _, err := a.MergePart(t.Context(), int64(i), part); err != nil {
			t.Fatalf("MergePart(%d) = %v", i, err)
		}
	}
	res, err := a.Finish(t.Context(), nil)
	if err != nil {
		t.Fatalf("Finish() = %v", err)
	}
	want := digest(t, buildPart(t, all))
	if res.ContentDigest != want {
		t.Errorf("Finish().ContentDigest = %s, want %s (the tiles written directly)", res.ContentDigest, want)
	}
	if got := digest(t, path); got != want {
		t.Errorf("ContentDigest(assembled) = %s, want %s", got, want)
	}
	if diff := cmp.Diff(mergeByZoom, res.ByZoom); diff != "" || res.Tiles != int64(len(all)) {
		t.Errorf("Finish() = %d tiles, want %d; by zoom (-want +got):\n%s", res.Tiles, len(all), diff)
	}
	checkSizes(t, path, res)
	checkMerged(t, path, all)
	if n := gpkg.QueryString(t, path, `SELECT count(*) FROM sqlite_master WHERE name = 'exporter_part'`); n != "0" {
		t.Errorf("the finished package has %s record tables, want none: records are the parts'", n)
	}
}

// TestAssemblyRedoesUnusableFile: a file that is not an assembly (a crash
// while one was created, say) is replaced, and its parts merged again.
func TestAssemblyRedoesUnusableFile(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	path := filepath.Join(t.TempDir(), "assembled.gpkg")
	if err := os.WriteFile(path, []byte("half a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := openAssembly(t, path)
	if a.Parts() != 0 {
		t.Errorf("Parts() of a replaced file = %d, want 0", a.Parts())
	}
	if _, err := a.MergePart(t.Context(), 7, buildPart(t, all)); err != nil {
		t.Fatal(err)
	}
	res, err := a.Finish(t.Context(), nil)
	if err != nil || res.Tiles != int64(len(all)) {
		t.Fatalf("Finish() = %d tiles, %v; want %d", res.Tiles, err, len(all))
	}
	// A finished package is no assembly: opening it again starts over.
	b := openAssembly(t, path)
	defer b.Abort() //nolint:errcheck // test cleanup
	if _, err := b.Finish(t.Context(), nil); !errors.Is(err, gpkg.ErrNoParts) {
		t.Errorf("Finish() of an assembly without parts = %v, want ErrNoParts", err)
	}
}

// TestAssemblyBadPart: a bad part fails MergePart and leaves the package
// as it was.
func TestAssemblyBadPart(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	path := filepath.Join(t.TempDir(), "assembled.gpkg")
	a := openAssembly(t, path)
	defer a.Abort() //nolint:errcheck // test cleanup
	bad := filepath.Join(t.TempDir(), "bad.gpkg")
	if err := os.WriteFile(bad, []byte("not a database at all, but long enough to have a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.MergePart(t.Context(), 1, bad); !errors.Is(err, gpkg.ErrNotGeoPackage) {
		t.Errorf("MergePart(not a GeoPackage) = %v, want ErrNotGeoPackage", err)
	}
	if a.Merged(1) || a.Parts() != 0 {
		t.Errorf("a failed part was recorded: Merged(1) = %v, Parts() = %d", a.Merged(1), a.Parts())
	}
	if _, err := a.MergePart(t.Context(), 1, buildPart(t, all)); err != nil {
		t.Errorf("MergePart after a failed one = %v", err)
	}
}

// BenchmarkTileSetAdd adds one tile of a typical size (16 KiB of JPEG) to
// a content digest: the per-tile cost of keeping the digest while merging.
func BenchmarkTileSetAdd(b *testing.B) {
	data := make([]byte, 16<<10)
	var set gpkg.TileSet
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		set.AddTile(14, 9000, 3000, data)
	}
}

// BenchmarkAssemblyMergePart merges 20 parts of 1,000 tiles of about
// 19 KB each (an orthophoto JPEG's size) into an Assembly, one MergePart
// per part as a worker merges a batch's part once it is stored: the
// per-tile cost of the merge that overlaps rendering. "recorded" parts
// were written with Options.Record, as a worker writes them; "read" parts
// without, so the merge reads every tile's data for the digest. Building
// the parts is outside the timing; the assembly's file is created and
// removed inside.
func BenchmarkAssemblyMergePart(b *testing.B) {
	const parts, perPart = 20, 1000
	jpeg := gpkgtest.Image(b, grid.Tile{}, gpkg.JPEG)
	rng := rand.New(rand.NewPCG(1, 2))
	tiles := make([][]byte, parts*perPart)
	for i := range tiles {
		// A real JPEG followed by noise: tiles differ and weigh what an
		// orthophoto tile does; Put reads only the header.
		data := make([]byte, 19<<10)
		copy(data, jpeg)
		for j := len(jpeg); j+8 <= len(data); j += 8 {
			binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
		}
		tiles[i] = data
	}
	build := func(record bool) []string {
		dir := b.TempDir()
		opt := mergeOptions()
		opt.Record = record
		var paths []string
		for i := range parts {
			path := filepath.Join(dir, fmt.Sprintf("part%02d.gpkg", i))
			w, err := gpkg.Create(b.Context(), path, opt)
			if err != nil {
				b.Fatal(err)
			}
			for col := range perPart {
				if err := w.Put(b.Context(), grid.Tile{Zoom: 15, Col: int64(col), Row: int64(i)}, tiles[i*perPart+col]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			paths = append(paths, path)
		}
		return paths
	}
	for _, bc := range []struct {
		name   string
		record bool
	}{{"recorded", true}, {"read", false}} {
		paths := build(bc.record)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var merged int64
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "assembled.gpkg")
				a, err := gpkg.OpenAssembly(b.Context(), path, mergeOptions())
				if err != nil {
					b.Fatal(err)
				}
				for i, p := range paths {
					if _, err := a.MergePart(b.Context(), int64(i), p); err != nil {
						b.Fatal(err)
					}
				}
				if err := a.Abort(); err != nil {
					b.Fatal(err)
				}
				merged += parts * perPart
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(merged), "µs/tile")
		})
	}
}
