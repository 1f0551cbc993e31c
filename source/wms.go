package source

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// WMSVersion is a version of the WMS GetMap protocol.
type WMSVersion string

// WMS versions a source speaks. They differ in EPSG:4326 axis order: 1.1.1
// sends SRS=EPSG:4326 and BBOX=minx,miny,maxx,maxy (longitude first);
// 1.3.0 sends CRS=EPSG:4326 and BBOX=miny,minx,maxy,maxx (latitude first,
// as the EPSG database defines the CRS).
const (
	WMS111 WMSVersion = "1.1.1"
	WMS130 WMSVersion = "1.3.0"
)

// Defaults of WMSConfig.
const (
	DefaultMetatile      = 4
	DefaultMetatileCache = 16
	DefaultMetatileTTL   = time.Minute
	// MaxMetatile is the largest metatile side, in tiles: 4096 pixels,
	// the usual limit of WMS servers (MapServer's MAXSIZE).
	MaxMetatile = 16
)

// wmsReserved are the GetMap parameters the source sets itself; extra
// parameters may not repeat them.
var wmsReserved = []string{"SERVICE", "VERSION", "REQUEST", "LAYERS", "STYLES", "SRS", "CRS", "BBOX", "WIDTH", "HEIGHT", "FORMAT", "TRANSPARENT"}

// WMSConfig configures a WMS source.
type WMSConfig struct {
	// HTTP holds the client settings. Its NotFound defaults to
	// NotFoundError: a WMS answers 404 for a wrong URL, not for a place
	// without data.
	HTTP HTTPConfig
	// URL is the service endpoint; a query it has (such as MapServer's
	// map=) is kept. Required.
	URL string
	// Version is WMS111 or WMS130. Empty means WMS130.
	Version WMSVersion
	// Layers are the WMS layer names, drawn bottom to top. Required.
	Layers []string
	// Styles are the styles of Layers, one each; empty means the default
	// style of every layer.
	Styles []string
	// Format is the image format asked for: image/png (with any
	// parameters, such as "image/png; mode=8bit") or image/jpeg. Empty
	// means image/png.
	Format string
	// Transparent asks for TRANSPARENT=TRUE, so that areas without data
	// come back transparent; PNG only. Otherwise the request has no
	// TRANSPARENT parameter, which the WMS standard reads as FALSE.
	Transparent bool
	// Params are further GetMap parameters, such as BGCOLOR, TIME or a
	// vendor parameter. They may not repeat the ones the source sets.
	Params map[string]string
	// MetatileCols and MetatileRows are the size of one GetMap request in
	// tiles: tiles are fetched in blocks aligned to multiples of it,
	// clipped to the grid and to Footprint, and cut into 256 × 256 tiles.
	// Zero means DefaultMetatile; at most MaxMetatile. 1 × 1 fetches tile
	// by tile.
	MetatileCols, MetatileRows int
	// Footprint clips metatiles, so that no pixels are asked for far
	// outside the layer. The zero value means grid.World.
	Footprint grid.BBox
	// CacheSize is how many metatiles are kept after they are fetched, for
	// the tiles that are asked for later; a 4 × 4 metatile takes 4 MiB.
	// Zero means DefaultMetatileCache; negative keeps none (fetches in
	// flight are still shared).
	CacheSize int
	// CacheTTL is how long a kept metatile is used. Zero means
	// DefaultMetatileTTL.
	CacheTTL time.Duration
}

// Validate reports every problem with c at once.
func (c WMSConfig) Validate() error {
	errs := []error{c.HTTP.Validate()}
	if err := checkURL("wms", c.URL); err != nil {
		errs = append(errs, err)
	} else if strings.ContainsAny(c.URL, "{}") {
		errs = append(errs, fmt.Errorf("source: wms url %q: a wms url is not a template", redact(c.URL)))
	}
	switch c.Version {
	case "", WMS111, WMS130:
	default:
		errs = append(errs, fmt.Errorf("source: wms version %q: want %s or %s", string(c.Version), WMS111, WMS130))
	}
	if len(c.Layers) == 0 {
		errs = append(errs, errors.New("source: wms needs at least one layer"))
	}
	for _, l := range c.Layers {
		if l == "" || strings.Contains(l, ",") {
			errs = append(errs, fmt.Errorf("source: wms layer %q: want a name without commas", l))
		}
	}
	if len(c.Styles) != 0 && len(c.Styles) != len(c.Layers) {
		errs = append(errs, fmt.Errorf("source: wms has %d styles for %d layers: want one per layer, or none", len(c.Styles), len(c.Layers)))
	}
	switch f := wmsFormat(c.Format); {
	case strings.HasPrefix(f, "image/png"):
	case f == "image/jpeg":
		if c.Transparent {
			errs = append(errs, errors.New("source: wms format image/jpeg cannot be transparent"))
		}
	default:
		errs = append(errs, fmt.Errorf("source: wms format %q: want image/png or image/jpeg", c.Format))
	}
	for k := range c.Params {
		for _, r := range wmsReserved {
			if strings.EqualFold(k, r) {
				errs = append(errs, fmt.Errorf("source: wms parameter %q is set by the source", k))
			}
		}
		if k == "" {
			errs = append(errs, errors.New("source: wms parameter with an empty name"))
		}
	}
	for _, n := range []int{c.MetatileCols, c.MetatileRows} {
		if n < 0 || n > MaxMetatile {
			errs = append(errs, fmt.Errorf("source: wms metatile side %d: want 1..%d, or 0 for %d", n, MaxMetatile, DefaultMetatile))
		}
	}
	if c.Footprint != (grid.BBox{}) {
		if err := c.Footprint.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("source: wms footprint: %w", err))
		}
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("source: wms cache ttl %v: want a positive duration, or 0 for %v", c.CacheTTL, DefaultMetatileTTL))
	}
	return errors.Join(errs...)
}

func wmsFormat(f string) string {
	if f == "" {
		return "image/png"
	}
	return strings.ToLower(strings.TrimSpace(f))
}

// WMS is a Source that renders tiles with WMS GetMap requests in
// EPSG:4326. It asks for metatiles, blocks of tiles in one image, and cuts
// them into tiles: tiles of one metatile share one request, whether they
// are asked for at the same time (they wait for the request in flight) or
// a little later (a few metatiles are kept in a cache).
//
// Tiles come back as images (Tile.Image), for the caller to encode by the
// layer's format policy. A tile that is fully transparent, or entirely the
// configured no-data colour, is ErrNoData.
//
// WMS is safe for concurrent use. Close it when done, to release its
// connections and cache.
type WMS struct {
	kind      string
	name      string
	cfg       WMSConfig
	base      *url.URL
	baseQuery url.Values
	fetch     *fetcher
	cache     *metaCache
	cols      int64
	rows      int64
	footprint grid.BBox
}

var _ Source = (*WMS)(nil)

// NewWMS returns a WMS source, or an error if cfg is invalid.
func NewWMS(cfg WMSConfig) (*WMS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("source: wms url: %w", err)
	}
	cfg.HTTP = cfg.HTTP.withDefaults(NotFoundError)
	cfg.Version = cmp.Or(cfg.Version, WMS130)
	cfg.Format = wmsFormat(cfg.Format)
	cfg.MetatileCols = cmp.Or(cfg.MetatileCols, DefaultMetatile)
	cfg.MetatileRows = cmp.Or(cfg.MetatileRows, DefaultMetatile)
	cfg.CacheSize = cmp.Or(cfg.CacheSize, DefaultMetatileCache)
	cfg.CacheTTL = cmp.Or(cfg.CacheTTL, DefaultMetatileTTL)
	fp := cfg.Footprint
	if fp == (grid.BBox{}) {
		fp = grid.World
	}
	f := newFetcher(cfg.HTTP)
	s := &WMS{
		kind:      "wms",
		name:      sourceName(cfg.HTTP.Name, cfg.URL),
		cfg:       cfg,
		base:      base,
		baseQuery: base.Query(),
		fetch:     f,
		cols:      int64(cfg.MetatileCols),
		rows:      int64(cfg.MetatileRows),
		footprint: fp,
	}
	s.cache = newMetaCache(cfg.CacheSize, cfg.CacheTTL, func() time.Time { return s.fetch.now() })
	return s, nil
}

// Metatile returns the size of the blocks the source fetches, in tiles.
// Blocks are aligned to multiples of it in the grid: a caller that asks
// for tiles block by block (see TilesByBlock) lets every block be fetched
// once.
func (s *WMS) Metatile() (cols, rows int) { return int(s.cols), int(s.rows) }

// Close releases idle connections and the cached metatiles. Tile must not
// be called after Close.
func (s *WMS) Close() error {
	s.fetch.close()
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	for el := s.cache.lru.Front(); el != nil; el = s.cache.lru.Front() {
		s.cache.remove(el)
	}
	return nil
}

// Tile returns the tile at t, cut from its metatile. Errors name the
// source and the tile, and wrap ErrNoData (the tile is transparent or all
// no-data colour, or the service answered 204, or 404 when so
// configured), ErrInvalidTile, ErrInvalidData (the image is not a PNG or
// JPEG, or has the wrong size and Resample is off), a *ResponseError (an
// error status after retries, a service exception, or an answer that is
// not an image), a network error after retries, or ctx.Err().
func (s *WMS) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	if err := checkRequest(ctx, t); err != nil {
		return Tile{}, err
	}
	block := s.block(t)
	res := s.cache.get(ctx, block, func(ctx context.Context) metaResult {
		return s.getMap(ctx, block)
	})
	if res.err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Tile{}, ctxErr
		}
		return Tile{}, s.errorf(t, block, res.err)
	}
	if res.jpegs != nil {
		return s.jpegTile(t, res.jpegs[(t.Row-block.MinRow)*block.Width()+t.Col-block.MinCol])
	}
	img := cutTile(res.img, int(t.Col-block.MinCol)*grid.TileSize, int(t.Row-block.MinRow)*grid.TileSize)
	if why := blank(img, s.cfg.HTTP.NoData); why != "" {
		return Tile{}, fmt.Errorf("%s %q: tile %s is %s: %w", s.kind, s.name, t, why, ErrNoData)
	}
	return Tile{Image: img, Opaque: IsOpaque(img)}, nil
}

func (s *WMS) errorf(t grid.Tile, block grid.TileRange, err error) error {
	if block.Count() == 1 {
		return fmt.Errorf("%s %q: tile %s: %w", s.kind, s.name, t, err)
	}
	return fmt.Errorf("%s %q: tile %s (metatile of %d × %d from %d/%d/%d): %w",
		s.kind, s.name, t, block.Width(), block.Height(), block.Zoom, block.MinCol, block.MinRow, err)
}

// block returns the metatile that holds t: the aligned block of
// MetatileCols × MetatileRows tiles, clipped to the grid and to the tiles
// that cover the footprint. A tile outside the footprint's tiles is
// fetched in a block clipped to the grid only.
func (s *WMS) block(t grid.Tile) grid.TileRange {
	b := grid.TileRange{
		Zoom:   t.Zoom,
		MinCol: t.Col / s.cols * s.cols, MaxCol: min((t.Col/s.cols+1)*s.cols, t.Zoom.MatrixWidth()),
		MinRow: t.Row / s.rows * s.rows, MaxRow: min((t.Row/s.rows+1)*s.rows, t.Zoom.MatrixHeight()),
	}
	fp := t.Zoom.Range(s.footprint)
	if fp.Contains(t.Col, t.Row) {
		b.MinCol, b.MaxCol = max(b.MinCol, fp.MinCol), min(b.MaxCol, fp.MaxCol)
		b.MinRow, b.MaxRow = max(b.MinRow, fp.MinRow), min(b.MaxRow, fp.MaxRow)
	}
	return b
}

// jpegTile is a tile cut losslessly from a JPEG metatile: passed through
// as JPEG (always opaque), after the no-data check when one is set, which
// decodes it.
func (s *WMS) jpegTile(t grid.Tile, data []byte) (Tile, error) {
	if nd := s.cfg.HTTP.NoData; nd != nil {
		img, err := decodeData(data, JPEG)
		if err != nil {
			return Tile{}, fmt.Errorf("%s %q: tile %s: %w: %w", s.kind, s.name, t, ErrInvalidData, err)
		}
		if IsNoData(img, *nd) {
			return Tile{}, fmt.Errorf("%s %q: tile %s is all %s: %w", s.kind, s.name, t, nd, ErrNoData)
		}
	}
	return Tile{Data: bytes.Clone(data), Format: JPEG, Opaque: true}, nil
}

// getMap fetches block as one image of its size in pixels. A JPEG answer
// of that size is cut into tiles without decoding it (turboCrop); any
// other answer is decoded. The whole block answering 204 (or 404 as no
// data) is ErrNoData.
func (s *WMS) getMap(ctx context.Context, block grid.TileRange) metaResult {
	w, h := int(block.Width())*grid.TileSize, int(block.Height())*grid.TileSize
	body, err := s.fetch.get(ctx, s.mapURL(block.Bounds(), w, h))
	if err != nil {
		return metaResult{err: err}
	}
	if f, ok := gpkg.DetectFormat(body); ok && f == JPEG {
		if tiles, err := turboCrop(body, int(block.Width()), int(block.Height())); err == nil {
			return metaResult{jpegs: tiles}
		}
	}
	m, err := decodeImage(body, w, h, s.cfg.HTTP.Resample)
	if err != nil {
		return metaResult{err: fmt.Errorf("getmap %s: %w", redact(s.base.String()), err)}
	}
	return metaResult{img: m}
}

// mapURL is the GetMap request for bbox at w × h pixels.
func (s *WMS) mapURL(b grid.BBox, w, h int) string {
	q := url.Values{}
	for k, v := range s.baseQuery {
		q[k] = v
	}
	for k, v := range s.cfg.Params {
		q.Set(k, v)
	}
	q.Set("SERVICE", "WMS")
	q.Set("VERSION", string(s.cfg.Version))
	q.Set("REQUEST", "GetMap")
	q.Set("LAYERS", strings.Join(s.cfg.Layers, ","))
	styles := s.cfg.Styles
	if len(styles) == 0 {
		styles = make([]string, len(s.cfg.Layers))
	}
	q.Set("STYLES", strings.Join(styles, ","))
	coords := []float64{b.MinX, b.MinY, b.MaxX, b.MaxY}
	if s.cfg.Version == WMS130 {
		q.Set("CRS", "EPSG:4326")
		coords = []float64{b.MinY, b.MinX, b.MaxY, b.MaxX}
	} else {
		q.Set("SRS", "EPSG:4326")
	}
	parts := make([]string, len(coords))
	for i, v := range coords {
		parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	q.Set("BBOX", strings.Join(parts, ","))
	q.Set("WIDTH", strconv.Itoa(w))
	q.Set("HEIGHT", strconv.Itoa(h))
	q.Set("FORMAT", s.cfg.Format)
	// TRANSPARENT is optional and FALSE when absent (WMS 1.1.1 §7.2.3.6,
	// 1.3.0 §7.3.3.9), so an opaque request leaves it out and is the same
	// request, as short as mapproxy-seed's (docs/performance.md, "The
	// GetMap parameters"). STYLES stays, empty: both versions require it.
	if s.cfg.Transparent {
		q.Set("TRANSPARENT", "TRUE")
	}
	u := *s.base
	u.RawQuery = readableQuery(q)
	return u.String()
}

// readableQuery encodes q (sorted by key) and leaves the characters that
// are safe in a query as they are: commas in BBOX, colons in CRS, slashes
// in FORMAT. Servers decode either form; logs stay readable.
func readableQuery(q url.Values) string {
	return strings.NewReplacer("%2C", ",", "%3A", ":", "%2F", "/").Replace(q.Encode())
}

// TilesByBlock calls yield for every tile of r, block by block: blocks of
// cols × rows tiles aligned to multiples of that size in the grid, from the
// north-west, row by row within a block, until yield returns false. Asking
// a metatiled source (see WMS.Metatile) for tiles in this order lets it
// fetch every block once, however wide r is.
func TilesByBlock(r grid.TileRange, cols, rows int) func(yield func(grid.Tile) bool) {
	bc, br := int64(max(cols, 1)), int64(max(rows, 1))
	return func(yield func(grid.Tile) bool) {
		for r0 := r.MinRow / br * br; r0 < r.MaxRow; r0 += br {
			for c0 := r.MinCol / bc * bc; c0 < r.MaxCol; c0 += bc {
				for row := max(r0, r.MinRow); row < min(r0+br, r.MaxRow); row++ {
					for col := max(c0, r.MinCol); col < min(c0+bc, r.MaxCol); col++ {
						if !yield(grid.Tile{Zoom: r.Zoom, Col: col, Row: row}) {
							return
						}
					}
				}
			}
		}
	}
}
