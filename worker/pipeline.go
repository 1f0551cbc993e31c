package worker

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// progressEvery is how many tiles pass between progress updates, at most;
// an update is also made at least every second.
const progressEvery = 256

// fetched is a tile as its source gave it.
type fetched struct {
	tile grid.Tile
	src  source.Tile
	// img is the tile's pixels for building its parent (overviews); nil
	// when the tile has no data or no parent is built from it.
	img image.Image
}

// encoded is a tile ready for the writer.
type encoded struct {
	tile   grid.Tile
	data   []byte
	format source.Format
}

// pipeline renders the tiles of ranges into gw. Its stages are goroutines
// that own their state and meet only on bounded channels, so memory stays
// flat whatever the export's size and the slowest stage sets the pace:
//
//	planner ─tiles→ Fetchers × fetch ─fetched→ Encoders × encode ─encoded→ one writer
//
// A layer that builds its overviews has one more stage, after the
// fetchers: the builder (overviews.build), which passes the fetched tiles
// on and adds the tiles it builds from them.
//
// Any error, a cancelled ctx, or the job leaving In-Progress (checked with
// each progress update) stops every stage; pipeline returns once all have
// exited. It returns how many tiles were written.
type pipeline struct {
	fetchers int // tiles fetched at once
	encoders int // tiles encoded at once
	metrics  *metrics
	layer    string // product id, the metrics' layer label
	src      source.Source
	metatile [2]int // cols and rows a source fetches at once; zero when it fetches tiles
	policy   source.FormatPolicy
	quality  int
	ranges   []grid.TileRange
	// cut, when set, makes the pixels of edge tiles outside the area
	// transparent (a cutline); those tiles are PNG.
	cut      *area.Cutter
	gw       *gpkg.Writer
	progress func(ctx context.Context, done int64) error
	// ov, when set, builds the batch's overviews: only the tiles it names
	// are asked of the source.
	ov *overviews
}

func (p *pipeline) run(ctx context.Context) (int64, error) {
	g, ctx := errgroup.WithContext(ctx)
	tiles := make(chan grid.Tile, 2*p.fetchers)
	raw := make(chan fetched, 2*p.encoders)
	out := make(chan encoded, 2*p.encoders)

	// A metatiled source is asked block by block, so each of its requests
	// serves all the tiles it covers however wide the export is.
	order := func(r grid.TileRange) func(func(grid.Tile) bool) { return r.Tiles }
	if cols, rows := p.metatile[0], p.metatile[1]; cols > 1 || rows > 1 {
		order = func(r grid.TileRange) func(func(grid.Tile) bool) { return source.TilesByBlock(r, cols, rows) }
	}
	ranges := p.ranges
	if p.ov != nil {
		ranges = p.ov.order(ranges)
	}
	g.Go(func() error {
		defer close(tiles)
		for _, r := range ranges {
			for t := range order(r) {
				if p.ov != nil && !p.ov.fromSource(t) {
					continue
				}
				select {
				case tiles <- t:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	stage(g, p.fetchers, raw, func() error {
		for t := range tiles {
			st, err := p.src.Tile(ctx, t)
			feeds := p.ov != nil && p.ov.feeds(t)
			if errors.Is(err, source.ErrNoData) {
				if !feeds {
					continue
				}
				st, err = source.Tile{}, nil
			}
			if err != nil {
				if errors.Is(err, source.ErrInvalidData) || errors.Is(err, source.ErrInvalidTile) {
					err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
				}
				return fmt.Errorf("tile %s: %w", t, err)
			}
			var img image.Image
			if feeds {
				if img, err = pixels(st); err != nil {
					return fmt.Errorf("tile %s: %w: %w", t, err, asynq.SkipRetry)
				}
			}
			select {
			case raw <- fetched{tile: t, src: st, img: img}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	toEncode := raw
	if p.ov != nil {
		toEncode = make(chan fetched, 2*p.encoders)
		stage(g, 1, toEncode, func() error { return p.ov.build(ctx, raw, toEncode) })
	}
	stage(g, p.encoders, out, func() error {
		for f := range toEncode {
			e, ok, err := p.encode(f)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	var written int64
	g.Go(func() error {
		last := time.Now()
		for e := range out {
			if err := p.gw.Put(ctx, e.tile, e.data); err != nil {
				return fmt.Errorf("write tile %s: %w", e.tile, err)
			}
			written++
			p.metrics.tiles.WithLabelValues(p.layer, string(e.format)).Inc()
			p.metrics.tileBytes.WithLabelValues(p.layer, string(e.format)).Add(float64(len(e.data)))
			if written%progressEvery == 0 || time.Since(last) > time.Second {
				last = time.Now()
				if err := p.progress(ctx, written); err != nil {
					return err
				}
			}
		}
		return nil
	})
	// Every stage selects on ctx when it sends and ends when its input is
	// closed, so Wait returns only once all have exited.
	err := g.Wait()
	return written, err
}

// stage runs n copies of work and closes out once all have returned.
func stage[T any](g *errgroup.Group, n int, out chan T, work func() error) {
	var workers errgroup.Group
	for range n {
		workers.Go(work)
	}
	g.Go(func() error {
		defer close(out)
		return workers.Wait()
	})
}

// encode turns a fetched tile into stored bytes by the layer's policy.
// Stored tiles pass as they are when the policy allows their format, and
// are decoded and encoded by it otherwise (a png layer over a JPEG tile
// store, say); rendered ones are encoded; empty ones are dropped (ok
// false).
func (p *pipeline) encode(f fetched) (encoded, bool, error) {
	policy := p.policy
	if p.cut != nil {
		img, edge, err := cutEdge(p.cut, f.tile, f.src)
		switch {
		case err != nil:
			return encoded{}, false, err
		case edge && img == nil:
			return encoded{}, false, nil
		case edge:
			f.src, policy = source.Tile{Image: img}, pngPolicy
		}
	}
	if f.src.Image == nil {
		if policy.Allows(f.src.Format) {
			return encoded{tile: f.tile, data: f.src.Data, format: f.src.Format}, true, nil
		}
		img, err := source.DecodeTile(f.src.Data)
		if err != nil {
			return encoded{}, false, fmt.Errorf("decode tile %s to encode it as the layer's %s: %w", f.tile, policy, err)
		}
		f.src = source.Tile{Image: img}
	}
	if source.IsEmpty(f.src.Image) {
		return encoded{}, false, nil
	}
	start := time.Now()
	data, format, err := source.Encode(f.src.Image, policy, p.quality)
	if err != nil {
		return encoded{}, false, fmt.Errorf("encode tile %s: %w", f.tile, err)
	}
	p.metrics.encode.WithLabelValues(string(format)).Observe(time.Since(start).Seconds())
	return encoded{tile: f.tile, data: data, format: format}, true, nil
}
