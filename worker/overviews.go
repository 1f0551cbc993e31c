package worker

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/source"
)

// overviews is how one render task of a layer that builds its overviews
// (catalog.OverviewsDownsample) makes the batch's tiles: the source is
// asked only for the tiles job.FromSource names, finest zoom first, and
// every job.Built tile is built from its children as soon as the last of
// them has come; job.Deferred tiles are left to the finalize
// (buildDeferred).
type overviews struct {
	resampling source.Resampling
	noData     *source.NoData
	// built holds the batch's Built tiles and how many children each is
	// built from; deferred its Deferred tiles. Read-only once made, so
	// the planner and the fetchers share them.
	built    map[grid.Tile]int
	deferred map[grid.Tile]bool
}

// newOverviews works out how the tiles of batch b of spec are made; nil
// when the layer asks its source for every zoom.
func newOverviews(spec job.Spec, b job.Batch, ranges []grid.TileRange) (*overviews, error) {
	o := spec.Overviews()
	if o == nil {
		return nil, nil
	}
	r, err := source.ParseResampling(spec.Layer.OverviewResampling)
	if err != nil {
		return nil, err
	}
	ov := &overviews{resampling: r, noData: layerNoData(spec), built: map[grid.Tile]int{}, deferred: map[grid.Tile]bool{}}
	if len(ranges) == 0 {
		return ov, nil
	}
	bo := o.Batch(spec, b)
	var kids []grid.Tile
	for _, rg := range ranges {
		for t := range rg.Tiles {
			switch bo.Making(t) {
			case job.Built:
				ov.built[t] = len(o.Children(kids[:0], t))
			case job.Deferred:
				ov.deferred[t] = true
			}
		}
	}
	return ov, nil
}

// layerNoData is the layer's no-data colour, if it has one.
func layerNoData(spec job.Spec) *source.NoData {
	c := spec.Layer.Source.NoData
	if c == nil {
		return nil
	}
	return &source.NoData{R: c.R, G: c.G, B: c.B, Tolerance: uint8(spec.Layer.Source.NoDataTolerance)}
}

// fromSource reports whether the source is asked for t.
func (ov *overviews) fromSource(t grid.Tile) bool {
	_, built := ov.built[t]
	return !built && !ov.deferred[t]
}

// feeds reports whether t's parent is built by this batch from t.
func (ov *overviews) feeds(t grid.Tile) bool {
	if t.Zoom == 0 {
		return false
	}
	_, ok := ov.built[parent(t)]
	return ok
}

// order is ranges, finest zoom first, so that children come before their
// parents and a parent is built, and its memory freed, as soon as they
// have.
func (ov *overviews) order(ranges []grid.TileRange) []grid.TileRange {
	out := slices.Clone(ranges)
	slices.SortStableFunc(out, func(a, b grid.TileRange) int { return int(b.Zoom) - int(a.Zoom) })
	return out
}

func parent(t grid.Tile) grid.Tile {
	return grid.Tile{Zoom: t.Zoom - 1, Col: t.Col / 2, Row: t.Row / 2}
}

// pixels is the image of a fetched tile, decoded if the source gave bytes.
func pixels(st source.Tile) (image.Image, error) {
	if st.Image != nil || st.Data == nil {
		return st.Image, nil
	}
	return source.DecodeTile(st.Data)
}

// pending is a parent being built: its image so far, how many of its
// children have come, and whether any had data.
type pending struct {
	img  *image.NRGBA
	n    int
	data bool
}

// build runs between the fetchers and the encoders: it passes every
// fetched tile on, reduces those whose parent the batch builds into it,
// and passes each parent on once its last child has come, feeding it to
// its own parent in turn. A child without data (img nil) counts, and
// leaves its quadrant transparent.
func (ov *overviews) build(ctx context.Context, in <-chan fetched, out chan<- fetched) error {
	parents := map[grid.Tile]*pending{}
	send := func(f fetched) error {
		select {
		case out <- f:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var add func(t grid.Tile, img image.Image) error
	add = func(t grid.Tile, img image.Image) error {
		pt := parent(t)
		p := parents[pt]
		if p == nil {
			p = &pending{img: source.NewOverview()}
			parents[pt] = p
		}
		if img != nil {
			if err := source.Reduce(p.img, source.Quadrant(t), img, ov.resampling, ov.noData); err != nil {
				return fmt.Errorf("tile %s: %w", t, err)
			}
			p.data = true
		}
		if p.n++; p.n < ov.built[pt] {
			return nil
		}
		delete(parents, pt)
		var built image.Image
		if p.data && !source.IsEmpty(p.img) {
			built = p.img
			if err := send(fetched{tile: pt, src: source.Tile{Image: p.img}}); err != nil {
				return err
			}
		}
		if ov.feeds(pt) {
			return add(pt, built)
		}
		return nil
	}
	for f := range in {
		if f.src.Image != nil || f.src.Data != nil {
			if err := send(fetched{tile: f.tile, src: f.src}); err != nil {
				return err
			}
		}
		if ov.feeds(f.tile) {
			if err := add(f.tile, f.img); err != nil {
				return err
			}
		}
	}
	if len(parents) > 0 {
		return fmt.Errorf("overviews: %d tiles lack children after the batch", len(parents))
	}
	return nil
}

// overviewPart is the id, in the package's record of parts, of the tiles
// the finalize builds: after every batch's.
func overviewPart(j job.Job) int64 { return int64(len(j.Spec.Plan())) }

// buildDeferred builds the job's Deferred tiles (the zooms above the
// planner's pivot, all of whose children are in the package by now) into
// a part of their own in dir and merges it into a: finest zoom first, each
// tile from its children, read from the package or built just before. It
// reads the pivot zoom and coarser only. Like a batch's part it is merged
// once: a finalize run again finds it recorded, or, killed before,
// builds the same tiles again.
func buildDeferred(ctx context.Context, a *assembly, j job.Job, dir string, enc *pipeline) error {
	levels := j.Spec.Deferred()
	id := overviewPart(j)
	if len(levels) == 0 || a.Merged(id) {
		return nil
	}
	// Only the layer's resampling and no-data colour: no batch's tiles.
	ov, err := newOverviews(j.Spec, job.Batch{}, nil)
	if err != nil {
		return err
	}
	o := j.Spec.Overviews()
	path := filepath.Join(dir, "overviews.gpkg")
	opt := packageOptions(j.Spec)
	opt.Record = true // merged as a part
	gw, err := gpkg.Create(ctx, path, opt)
	if err != nil {
		return fmt.Errorf("create overviews part: %w", err)
	}
	defer func() { _ = gw.Abort() }()
	enc.gw = gw
	var prev map[grid.Tile]image.Image
	var kids []grid.Tile
	for _, level := range levels {
		cur := make(map[grid.Tile]image.Image, len(level))
		for _, t := range level {
			img, data := source.NewOverview(), false
			for _, c := range o.Children(kids[:0], t) {
				child, ok := prev[c]
				if !ok {
					if child, err = readChild(ctx, a, c); err != nil {
						return err
					}
				}
				if child == nil {
					continue
				}
				if err := source.Reduce(img, source.Quadrant(c), child, ov.resampling, ov.noData); err != nil {
					return fmt.Errorf("tile %s: %w", c, err)
				}
				data = true
			}
			if !data || source.IsEmpty(img) {
				cur[t] = nil
				continue
			}
			cur[t] = img
			e, ok, err := enc.encode(fetched{tile: t, src: source.Tile{Image: img}})
			if err != nil {
				return err
			}
			if ok {
				if err := gw.Put(ctx, t, e.data); err != nil {
					return fmt.Errorf("write tile %s: %w", t, err)
				}
			}
		}
		prev = cur
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("finish overviews part: %w", err)
	}
	defer os.Remove(path)
	if _, err := a.MergePart(ctx, id, path); err != nil {
		return fmt.Errorf("merge overviews: %w", err)
	}
	return nil
}

// readChild is a tile of the package, decoded; nil when it has none.
func readChild(ctx context.Context, a *assembly, t grid.Tile) (image.Image, error) {
	data, err := a.ReadTile(ctx, t)
	if errors.Is(err, gpkg.ErrTileNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tile %s for overviews: %w", t, err)
	}
	img, err := source.DecodeTile(data)
	if err != nil {
		return nil, fmt.Errorf("decode tile %s for overviews: %w", t, err)
	}
	return img, nil
}
