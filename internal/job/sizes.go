package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
)

// ZoomBytes is what one zoom of a finished package holds: its tiles and
// the bytes of their tile data.
type ZoomBytes struct {
	Zoom  int
	Tiles int64
	Bytes int64
}

// LearnedSizes are the tile sizes of a layer's finished packages, summed
// over every package completed with them: tiles and tile bytes per zoom,
// and the packages' file bytes against their tile bytes (what SQLite and
// the GeoPackage tables add). The zero value has learned nothing.
type LearnedSizes struct {
	Zooms map[int]ZoomBytes
	// FileBytes and TileBytes are the sums of the packages' sizes and of
	// their tiles' bytes.
	FileBytes, TileBytes int64
}

// minLearnedTiles is the fewest tiles a learned mean is taken from: below
// it one odd tile (an empty sea, a detailed city) would set the estimate.
const minLearnedTiles = 16

// perTile is the expected bytes of one tile at z: the mean learned at z
// when enough tiles were, else the mean over every learned zoom, else
// fallback, the configured average.
func (l LearnedSizes) perTile(z int, fallback int64) float64 {
	if zb := l.Zooms[z]; zb.Tiles >= minLearnedTiles {
		return float64(zb.Bytes) / float64(zb.Tiles)
	}
	var tiles, bytes int64
	for _, zb := range l.Zooms {
		tiles += zb.Tiles
		bytes += zb.Bytes
	}
	if tiles >= minLearnedTiles {
		return float64(bytes) / float64(tiles)
	}
	return float64(fallback)
}

// overhead is the learned ratio of package bytes to tile bytes, within
// [1, 2]; 1 before anything is learned, since the configured averages are
// per tile of a whole package.
func (l LearnedSizes) overhead() float64 {
	if l.TileBytes <= 0 || l.FileBytes <= 0 {
		return 1
	}
	return min(2, max(1, float64(l.FileBytes)/float64(l.TileBytes)))
}

// Sizes estimates package sizes: from what a layer's earlier packages
// held, where that is known, else from the configured average tile of the
// layer's format.
type Sizes struct {
	Avg     TileSizes
	Learned LearnedSizes
}

// Estimate is the expected size in bytes of a package holding tiles.
func (z Sizes) Estimate(layer catalog.Layer, tiles []ZoomTiles) int64 {
	fallback := z.Avg.For(layer)
	var sum float64
	for _, zt := range tiles {
		sum += float64(zt.Tiles) * z.Learned.perTile(zt.Zoom, fallback)
	}
	return int64(sum*z.Learned.overhead() + 0.5)
}

// TilesByZoom is the tile count of each zoom of c that holds tiles.
func TilesByZoom(c grid.Coverage) []ZoomTiles {
	var out []ZoomTiles
	for z := range c.Levels {
		if n := c.Level(grid.Zoom(z)).Count(); n > 0 {
			out = append(out, ZoomTiles{Zoom: z, Tiles: n})
		}
	}
	return out
}

// sizesKey is the hash of what layer's packages held: fields t:<zoom>
// and b:<zoom> (tiles and tile bytes), file and tiles (the packages'
// bytes and their tile bytes). A new version of a layer learns anew.
func (s *Store) sizesKey(layer catalog.Layer) string {
	return s.prefix + "sizes:" + layer.ID + "@" + layer.Version
}

// learnArgs are the HINCRBY field and increment pairs the complete script
// adds to the layer's sizes hash for a package of r.
func learnArgs(r Result) []any {
	if len(r.Zooms) == 0 {
		return nil
	}
	var args []any
	var tileBytes int64
	for _, zb := range r.Zooms {
		args = append(args, "t:"+strconv.Itoa(zb.Zoom), zb.Tiles, "b:"+strconv.Itoa(zb.Zoom), zb.Bytes)
		tileBytes += zb.Bytes
	}
	return append(args, "file", r.FileSize, "tiles", tileBytes)
}

// LearnedSizes reads what layer's completed packages held.
func (s *Store) LearnedSizes(ctx context.Context, layer catalog.Layer) (LearnedSizes, error) {
	h, err := s.rdb.HGetAll(ctx, s.sizesKey(layer)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return LearnedSizes{}, fmt.Errorf("read learned tile sizes of %s: %w", layer.ID, Unavailable(err))
	}
	l := LearnedSizes{Zooms: map[int]ZoomBytes{}}
	for field, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return LearnedSizes{}, fmt.Errorf("learned tile sizes of %s: field %s: %w", layer.ID, field, err)
		}
		kind, zoom, ok := strings.Cut(field, ":")
		switch {
		case !ok && kind == "file":
			l.FileBytes = n
		case !ok && kind == "tiles":
			l.TileBytes = n
		case ok:
			z, err := strconv.Atoi(zoom)
			if err != nil {
				return LearnedSizes{}, fmt.Errorf("learned tile sizes of %s: field %s: %w", layer.ID, field, err)
			}
			zb := l.Zooms[z]
			zb.Zoom = z
			if kind == "t" {
				zb.Tiles = n
			} else {
				zb.Bytes = n
			}
			l.Zooms[z] = zb
		}
	}
	return l, nil
}
