package gpkg_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
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
// the digest kept while merging is the one ContentDigest reads.
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
	checkMerged(t, path, all)
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
