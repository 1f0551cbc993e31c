package source_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// poolLayer is a GeoPackage layer: its source says in its errors whether
// it has been closed, without a file to read.
func poolLayer(id, path string) catalog.Layer {
	return catalog.Layer{ID: id, Version: "1", Source: catalog.Source{Kind: catalog.SourceGeoPackage, Path: path}}
}

func poolDeps() source.LayerDeps { return source.LayerDeps{} }

// isClosed reports whether src answers as a closed source.
func isClosed(t *testing.T, src source.Source) bool {
	t.Helper()
	_, err := src.Tile(t.Context(), grid.Tile{Zoom: 1, Col: 1, Row: 0})
	if err == nil {
		t.Fatal("Tile succeeded on a source with no file")
	}
	return strings.Contains(err.Error(), "closed")
}

func TestPoolSharesAndExpires(t *testing.T) {
	t.Parallel()
	p := source.NewPool(poolDeps(), 50*time.Millisecond)
	defer p.Close()

	a, releaseA, err := p.Acquire(poolLayer("a", "/data/a.gpkg"))
	if err != nil {
		t.Fatal(err)
	}
	again, releaseAgain, err := p.Acquire(poolLayer("a", "/data/a.gpkg"))
	if err != nil || again != a {
		t.Fatalf("second Acquire of the same layer = %p, %v; want the same source %p", again, err, a)
	}
	edited, releaseEdited, err := p.Acquire(poolLayer("a", "/data/other.gpkg"))
	if err != nil || edited == a {
		t.Fatalf("Acquire of the layer edited in place = %p, %v; want a new source", edited, err)
	}
	releaseEdited()
	if p.Len() != 2 {
		t.Errorf("pool keeps %d sources, want 2", p.Len())
	}

	// In use, a source outlives the idle time; released, it is closed
	// after it.
	releaseA()
	releaseA() // a second call of the same release changes nothing
	time.Sleep(150 * time.Millisecond)
	if isClosed(t, a) {
		t.Fatal("a source still in use was closed")
	}
	if p.Len() != 1 {
		t.Errorf("after the idle time the pool keeps %d sources, want the one in use", p.Len())
	}
	if !isClosed(t, edited) {
		t.Error("an unused source was not closed after the idle time")
	}
	releaseAgain()
	deadline := time.Now().Add(5 * time.Second)
	for !isClosed(t, a) {
		if time.Now().After(deadline) {
			t.Fatal("the source was not closed after its last user released it and the idle time passed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.Len() != 0 {
		t.Errorf("pool keeps %d sources, want none", p.Len())
	}

	// A source used again before the idle time ends stays open.
	b, releaseB, err := p.Acquire(poolLayer("b", "/data/b.gpkg"))
	if err != nil {
		t.Fatal(err)
	}
	releaseB()
	b2, releaseB2, err := p.Acquire(poolLayer("b", "/data/b.gpkg"))
	if err != nil || b2 != b {
		t.Fatalf("Acquire within the idle time = %p, %v; want the kept source", b2, err)
	}
	time.Sleep(150 * time.Millisecond)
	if isClosed(t, b) {
		t.Error("a source acquired again was closed by the earlier release's timer")
	}
	releaseB2()
}

func TestPoolClose(t *testing.T) {
	t.Parallel()
	p := source.NewPool(poolDeps(), time.Hour)
	idle, release, err := p.Acquire(poolLayer("idle", "/data/idle.gpkg"))
	if err != nil {
		t.Fatal(err)
	}
	release()
	busy, releaseBusy, err := p.Acquire(poolLayer("busy", "/data/busy.gpkg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if !isClosed(t, idle) {
		t.Error("Close left an unused source open")
	}
	if isClosed(t, busy) {
		t.Error("Close closed a source in use")
	}
	releaseBusy()
	if !isClosed(t, busy) {
		t.Error("a source in use at Close was not closed when released")
	}
	if _, _, err := p.Acquire(poolLayer("idle", "/data/idle.gpkg")); !errors.Is(err, source.ErrPoolClosed) {
		t.Errorf("Acquire after Close = %v, want ErrPoolClosed", err)
	}
}

func TestPoolOpenFailureIsNotKept(t *testing.T) {
	t.Parallel()
	p := source.NewPool(source.LayerDeps{}, time.Hour) // no S3 storage configured
	defer p.Close()
	layer := catalog.Layer{ID: "g", Version: "1", Source: catalog.Source{Kind: catalog.SourceGeoPackage, S3Key: "g.gpkg"}}
	for range 2 {
		if _, _, err := p.Acquire(layer); err == nil || !strings.Contains(err.Error(), "no S3 storage is configured") {
			t.Errorf("Acquire = %v, want the open error each time", err)
		}
	}
	if p.Len() != 0 {
		t.Errorf("pool keeps %d sources after failed opens, want none", p.Len())
	}
}
