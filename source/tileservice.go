package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/geoexport/exporter/internal/grid"
)

// The tile services read here must be in the project grid: a WMTS
// TileMatrixSet equivalent to InspireCRS84Quad (EPSG:4326, top-left corner
// -180, 90, 256 × 256 tiles, 2 × 1 at the level that has 0.703125 degrees
// per pixel, halving from there), or XYZ/TMS tiles cut the same way. A
// service whose level numbers are shifted (MapProxy's TMS endpoint, for
// instance, numbers the 4 × 2 level 0) is read with a zoom offset: the
// service level is the grid zoom plus ZoomOffset.

// DefaultTileMatrixFormat makes WMTS tile matrix identifiers of bare level
// numbers.
const DefaultTileMatrixFormat = "%d"

// WMTSConfig configures a WMTS source.
type WMTSConfig struct {
	// HTTP holds the client settings. Its NotFound defaults to
	// NotFoundNoData.
	HTTP HTTPConfig
	// URL is the KVP endpoint (GetTile requests are built on it, keeping
	// any query it has), or the REST ResourceURL template of the layer,
	// recognised by its {TileMatrix} placeholder. A template must hold
	// {TileMatrix}, {TileRow} and {TileCol}, and may hold {TileMatrixSet},
	// {Layer} and {Style}. Required.
	URL string
	// Layer is the layer identifier; required for KVP and for a template
	// with {Layer}.
	Layer string
	// Style is the style identifier. Empty means "default".
	Style string
	// TileMatrixSet is the identifier of the tile matrix set; required for
	// KVP and for a template with {TileMatrixSet}.
	TileMatrixSet string
	// TileMatrixFormat turns a level number into the tile matrix
	// identifier: a fmt format with one integer verb, such as "%d"
	// (0, 1, …), "%02d" (00, 01, … as MapProxy lists them) or
	// "EPSG:4326:%d" (GeoServer). Empty means DefaultTileMatrixFormat.
	TileMatrixFormat string
	// Format is the tile format asked for in KVP requests. Empty means
	// image/png.
	Format string
	// Params are further KVP parameters, such as dimensions (TIME=…).
	Params map[string]string
	// ZoomOffset is added to a grid zoom to get the service's level.
	// Zooms whose level would be negative have no data.
	ZoomOffset int
}

// isREST reports whether c.URL is a REST template.
func (c WMTSConfig) isREST() bool { return strings.Contains(c.URL, "{TileMatrix}") }

var wmtsReserved = []string{"SERVICE", "REQUEST", "VERSION", "LAYER", "STYLE", "FORMAT", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL"}

// Validate reports every problem with c at once.
func (c WMTSConfig) Validate() error {
	errs := []error{c.HTTP.Validate()}
	if err := checkURL("wmts", c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.isREST() {
		for _, p := range []string{"{TileRow}", "{TileCol}"} {
			if !strings.Contains(c.URL, p) {
				errs = append(errs, fmt.Errorf("source: wmts template %q lacks %s", redact(c.URL), p))
			}
		}
		if strings.Contains(c.URL, "{Layer}") && c.Layer == "" {
			errs = append(errs, errors.New("source: wmts template has {Layer} but no layer is set"))
		}
		if strings.Contains(c.URL, "{TileMatrixSet}") && c.TileMatrixSet == "" {
			errs = append(errs, errors.New("source: wmts template has {TileMatrixSet} but no tile matrix set is set"))
		}
		if len(c.Params) > 0 {
			errs = append(errs, errors.New("source: wmts parameters apply to kvp requests, not to a rest template"))
		}
	} else {
		if strings.ContainsAny(c.URL, "{}") {
			errs = append(errs, fmt.Errorf("source: wmts url %q: a template needs {TileMatrix}, {TileRow} and {TileCol}", redact(c.URL)))
		}
		if c.Layer == "" || c.TileMatrixSet == "" {
			errs = append(errs, errors.New("source: wmts kvp needs a layer and a tile matrix set"))
		}
		for k := range c.Params {
			for _, r := range wmtsReserved {
				if strings.EqualFold(k, r) {
					errs = append(errs, fmt.Errorf("source: wmts parameter %q is set by the source", k))
				}
			}
		}
	}
	if c.TileMatrixFormat != "" {
		if err := checkLevelFormat(c.TileMatrixFormat); err != nil {
			errs = append(errs, err)
		}
	}
	if f := strings.ToLower(c.Format); f != "" && !strings.HasPrefix(f, "image/png") && f != "image/jpeg" {
		errs = append(errs, fmt.Errorf("source: wmts format %q: want image/png or image/jpeg", c.Format))
	}
	if c.ZoomOffset < -int(grid.MaxZoom) || c.ZoomOffset > 64 {
		errs = append(errs, fmt.Errorf("source: wmts zoom offset %d is out of range", c.ZoomOffset))
	}
	return errors.Join(errs...)
}

// checkLevelFormat reports whether f is a fmt format with exactly one
// integer verb.
func checkLevelFormat(f string) error {
	verbs := strings.Count(strings.ReplaceAll(f, "%%", ""), "%")
	if s := fmt.Sprintf(f, 7); verbs != 1 || strings.Contains(s, "%!") || !strings.Contains(s, "7") {
		return fmt.Errorf("source: wmts tile matrix format %q: want one integer verb, such as %%d or EPSG:4326:%%d", f)
	}
	return nil
}

// XYZConfig configures an XYZ (or TMS) tile source.
type XYZConfig struct {
	// HTTP holds the client settings. Its NotFound defaults to
	// NotFoundNoData.
	HTTP HTTPConfig
	// URL is the tile URL template: {z} is the level, {x} the column,
	// {y} the row and {-y} the row counted from the south (TMS).
	// Required, with {z}, {x} and one of {y} and {-y}.
	URL string
	// RowOrigin is the edge {y} counts rows from; RowOriginBottom makes
	// {y} a TMS row. Empty means RowOriginTop. It may not be bottom when
	// the template uses {-y}.
	RowOrigin RowOrigin
	// ZoomOffset is added to a grid zoom to get the service's level.
	// Zooms whose level would be negative have no data.
	ZoomOffset int
}

// Validate reports every problem with c at once.
func (c XYZConfig) Validate() error {
	errs := []error{c.HTTP.Validate()}
	if err := checkURL("xyz", c.URL); err != nil {
		errs = append(errs, err)
	}
	y, flipped := strings.Contains(c.URL, "{y}"), strings.Contains(c.URL, "{-y}")
	if !strings.Contains(c.URL, "{z}") || !strings.Contains(c.URL, "{x}") || y == flipped {
		errs = append(errs, fmt.Errorf("source: xyz template %q: want {z}, {x} and one of {y} and {-y}", redact(c.URL)))
	}
	switch c.RowOrigin {
	case "", RowOriginTop:
	case RowOriginBottom:
		if flipped {
			errs = append(errs, errors.New("source: xyz template with {-y} and row origin bottom would flip rows twice"))
		}
	default:
		errs = append(errs, fmt.Errorf("source: unknown row origin %q: want top or bottom", string(c.RowOrigin)))
	}
	if c.ZoomOffset < -int(grid.MaxZoom) || c.ZoomOffset > 64 {
		errs = append(errs, fmt.Errorf("source: xyz zoom offset %d is out of range", c.ZoomOffset))
	}
	return errors.Join(errs...)
}

// tileService is the part that WMTS and XYZ share: one request per tile,
// at an address derived from the grid tile.
type tileService struct {
	kind   string
	name   string
	http   HTTPConfig
	fetch  *fetcher
	offset int
	// url returns the request for level and the grid tile's column and
	// row (from the north).
	url func(level int, t grid.Tile) string
}

// WMTS is a Source over a WMTS layer in the project grid, through KVP
// GetTile requests or a REST template. Tiles of 256 × 256 pixels are
// passed through as the service sent them (Tile.Data); tiles of another
// size are resampled into Tile.Image when HTTP.Resample is set. It is safe
// for concurrent use; Close it when done.
type WMTS struct{ tileService }

// XYZ is a Source over XYZ or TMS tiles in the project grid, fetched from
// a URL template. Like WMTS, it passes tiles through as they were sent.
// It is safe for concurrent use; Close it when done.
type XYZ struct{ tileService }

var (
	_ Source = (*WMTS)(nil)
	_ Source = (*XYZ)(nil)
)

// NewWMTS returns a WMTS source, or an error if cfg is invalid.
func NewWMTS(cfg WMTSConfig) (*WMTS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.HTTP = cfg.HTTP.withDefaults(NotFoundNoData)
	if cfg.Style == "" {
		cfg.Style = "default"
	}
	if cfg.TileMatrixFormat == "" {
		cfg.TileMatrixFormat = DefaultTileMatrixFormat
	}
	if cfg.Format == "" {
		cfg.Format = "image/png"
	}
	s := &WMTS{tileService{kind: "wmts", name: sourceName(cfg.HTTP.Name, cfg.URL), http: cfg.HTTP, fetch: newFetcher(cfg.HTTP), offset: cfg.ZoomOffset}}
	if cfg.isREST() {
		s.url = func(level int, t grid.Tile) string {
			return strings.NewReplacer(
				"{TileMatrixSet}", url.PathEscape(cfg.TileMatrixSet),
				"{TileMatrix}", url.PathEscape(fmt.Sprintf(cfg.TileMatrixFormat, level)),
				"{TileRow}", strconv.FormatInt(t.Row, 10),
				"{TileCol}", strconv.FormatInt(t.Col, 10),
				"{Layer}", url.PathEscape(cfg.Layer),
				"{Style}", url.PathEscape(cfg.Style),
			).Replace(cfg.URL)
		}
		return s, nil
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("source: wmts url: %w", err)
	}
	baseQuery := base.Query()
	s.url = func(level int, t grid.Tile) string {
		q := url.Values{}
		for k, v := range baseQuery {
			q[k] = v
		}
		for k, v := range cfg.Params {
			q.Set(k, v)
		}
		q.Set("SERVICE", "WMTS")
		q.Set("REQUEST", "GetTile")
		q.Set("VERSION", "1.0.0")
		q.Set("LAYER", cfg.Layer)
		q.Set("STYLE", cfg.Style)
		q.Set("FORMAT", cfg.Format)
		q.Set("TILEMATRIXSET", cfg.TileMatrixSet)
		q.Set("TILEMATRIX", fmt.Sprintf(cfg.TileMatrixFormat, level))
		q.Set("TILEROW", strconv.FormatInt(t.Row, 10))
		q.Set("TILECOL", strconv.FormatInt(t.Col, 10))
		u := *base
		u.RawQuery = readableQuery(q)
		return u.String()
	}
	return s, nil
}

// NewXYZ returns an XYZ source, or an error if cfg is invalid.
func NewXYZ(cfg XYZConfig) (*XYZ, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.HTTP = cfg.HTTP.withDefaults(NotFoundNoData)
	bottom := cfg.RowOrigin == RowOriginBottom
	s := &XYZ{tileService{kind: "xyz", name: sourceName(cfg.HTTP.Name, cfg.URL), http: cfg.HTTP, fetch: newFetcher(cfg.HTTP), offset: cfg.ZoomOffset}}
	s.url = func(level int, t grid.Tile) string {
		row := t.Row
		if bottom {
			row = t.Zoom.FlipRow(row)
		}
		return strings.NewReplacer(
			"{z}", strconv.Itoa(level),
			"{x}", strconv.FormatInt(t.Col, 10),
			"{y}", strconv.FormatInt(row, 10),
			"{-y}", strconv.FormatInt(t.Zoom.FlipRow(t.Row), 10),
		).Replace(cfg.URL)
	}
	return s, nil
}

// Close releases idle connections. Tile must not be called after Close.
func (s *tileService) Close() error {
	s.fetch.close()
	return nil
}

// Tile returns the tile at t. A 256 × 256 PNG or JPEG is returned as
// sent (Tile.Data); one of another size is resampled into Tile.Image, or
// fails with ErrInvalidData naming its size, by HTTP.Resample. Errors name
// the source and the tile, and wrap ErrNoData (the service answered 204 or
// 404, unless NotFound is NotFoundError; the tile is fully transparent or
// all no-data colour; or its level is below the service's first),
// ErrInvalidTile, ErrInvalidData, a *ResponseError (an error status after
// retries, a service exception, or an answer that is not an image), a
// network error after retries, or ctx.Err().
func (s *tileService) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	if err := checkRequest(ctx, t); err != nil {
		return Tile{}, err
	}
	level := int(t.Zoom) + s.offset
	if level < 0 {
		return Tile{}, fmt.Errorf("%s %q: tile %s: level %d is below the service's first: %w", s.kind, s.name, t, level, ErrNoData)
	}
	body, err := s.fetch.get(ctx, s.url(level, t))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Tile{}, ctxErr
		}
		return Tile{}, fmt.Errorf("%s %q: tile %s: %w", s.kind, s.name, t, err)
	}
	tile, err := storedTile(body, s.http.Resample, s.http.NoData)
	if err != nil {
		return Tile{}, fmt.Errorf("%s %q: tile %s from %s: %w", s.kind, s.name, t, redact(s.url(level, t)), err)
	}
	return tile, nil
}

// storedTile turns the bytes of one tile into a Tile: passed through when
// they are a 256 × 256 PNG or JPEG, resampled into an image when they are
// another size and resample is set. Tiles that are fully transparent, or
// all nd's colour, are ErrNoData; so that opaque tiles cost no decoding
// when there is no nd, only PNG tiles that may be transparent are decoded.
func storedTile(data []byte, resample bool, nd *NoData) (Tile, error) {
	f, opaque, err := checkStored(data)
	if err != nil {
		if !resample || !errors.Is(err, errWrongSize) {
			return Tile{}, err
		}
		img, derr := decodeImage(data, grid.TileSize, grid.TileSize, true)
		if derr != nil {
			return Tile{}, derr
		}
		if why := blank(img, nd); why != "" {
			return Tile{}, fmt.Errorf("tile is %s: %w", why, ErrNoData)
		}
		return Tile{Image: img, Opaque: IsOpaque(img)}, nil
	}
	if !opaque || nd != nil {
		img, err := decodeData(data, f)
		if err != nil {
			return Tile{}, fmt.Errorf("%w: %w", ErrInvalidData, err)
		}
		if why := blank(img, nd); why != "" {
			return Tile{}, fmt.Errorf("tile is %s: %w", why, ErrNoData)
		}
		opaque = opaque || IsOpaque(img)
	}
	return Tile{Data: data, Format: f, Opaque: opaque}, nil
}
