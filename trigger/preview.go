package trigger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// Preview tiles: GET /layers/{id}/tiles/{z}/{x}/{y} answers one tile of a
// layer's imagery in the project grid (EPSG:4326, 2 × 1 tiles at zoom 0,
// rows from the north), read from the layer's own source as an export
// reads it, so that people can see what they are about to export. The
// trigger renders nothing for exports: a preview tile is one source tile
// passed through (or, for sources that draw, such as the demo, encoded
// once), never a package.
const (
	// DefaultPreviewTimeout is the preview timeout of a zero Config.
	DefaultPreviewTimeout = 10 * time.Second
	// DefaultPreviewConcurrency is the preview concurrency of a zero
	// Config.
	DefaultPreviewConcurrency = 4
	// previewMaxAge is how long a browser may reuse a preview tile before
	// it revalidates it with its ETag.
	previewMaxAge = 10 * time.Minute
)

// previews holds the sources preview tiles are read from (a pool that
// keeps each layer's source open while it is in use and for a while after)
// and the slots that cap how many tiles are read at once.
type previews struct {
	sources *source.Pool
	slots   chan struct{}
	// wait is the longest a request waits for a free slot.
	wait time.Duration
}

func newPreviews(cfg Config, deps source.LayerDeps) *previews {
	return &previews{
		sources: source.NewPool(deps, source.DefaultPoolIdle),
		slots:   make(chan struct{}, cfg.PreviewConcurrency),
		wait:    cfg.PreviewTimeout / 4,
	}
}

// acquire takes a slot, waiting at most p.wait, and returns its release;
// false when every slot stayed busy or ctx ended first.
func (p *previews) acquire(ctx context.Context) (release func(), ok bool) {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// Close closes the preview sources; later requests fail.
func (p *previews) Close() error { return p.sources.Close() }

// previewError is a layer source's failure to give a preview tile: 504 when
// it did not answer within the preview timeout, 502 otherwise. The cause
// goes to the log; the answer says only which of the two happened.
type previewError struct {
	layer   string
	tile    grid.Tile
	timeout time.Duration // non-zero: the source did not answer in time
	err     error
}

func (e *previewError) Error() string {
	return fmt.Sprintf("preview tile %s of layer %s: %v", e.tile, e.layer, e.err)
}

func (e *previewError) Unwrap() error { return e.err }

// status and message are the answer to the client.
func (e *previewError) status() (int, string) {
	if e.timeout > 0 {
		return fiber.StatusGatewayTimeout, fmt.Sprintf("the source of layer %s did not give tile %s within %s; try again later", e.layer, e.tile, e.timeout)
	}
	return fiber.StatusBadGateway, fmt.Sprintf("the source of layer %s failed to give tile %s", e.layer, e.tile)
}

// emptyTile is the answer for a tile of the footprint where the source
// has no data: fully transparent, so a map shows what lies beneath.
var emptyTile = func() []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))); err != nil {
		panic("trigger: encode the empty preview tile: " + err.Error())
	}
	return b.Bytes()
}()

// previewRoutes serves GET /layers/{id}/tiles/{z}/{x}/{y} to clients. The
// route is not counted against the per-subject rate limit: a map asks for
// dozens of tiles at a time, and they must not use up the budget of the
// caller's API calls. The slots cap what previews cost this replica instead.
func (s *Server) previewRoutes() {
	s.app.Get("/layers/:id/tiles/:z/:x/:y", s.deps.Auth.Require(s.deps.Auth.ClientRole()), s.previewTile)
}

// previewTile answers one preview tile: 400 for a tile address that is not
// one of the grid (naming the field), 404 for an unknown layer or a tile
// beyond the layer's zooms or outside its footprint, 503 when every slot
// stays busy, 502 or 504 when the source fails or is too slow, and 304
// when If-None-Match names the tile's ETag.
func (s *Server) previewTile(c *fiber.Ctx) error {
	id := c.Params("id")
	var errs []FieldError
	if _, err := uuid.Parse(id); err != nil {
		errs = append(errs, FieldError{Field: "id", Reason: fmt.Sprintf("%q is not a uuid", id)})
	}
	t, terrs := tileAddress(c)
	if errs = append(errs, terrs...); len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	layer, err := s.deps.Catalog.Lookup(id)
	if errors.Is(err, catalog.ErrNotFound) {
		return errorf(fiber.StatusNotFound, "no layer with id %s", id)
	}
	if err != nil {
		return err
	}
	if maxZoom := layer.MaxZoom(); t.Zoom > maxZoom {
		return errorf(fiber.StatusNotFound, "layer %s has zooms 0 to %d, not %d", layer.ID, maxZoom, t.Zoom)
	}
	if !t.Zoom.Range(layer.Footprint).Contains(t.Col, t.Row) {
		return errorf(fiber.StatusNotFound, "tile %s lies outside the footprint %s of layer %s", t, layer.Footprint, layer.ID)
	}

	timeout := s.cfg.PreviewTimeout
	ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
	defer cancel()
	release, ok := s.previews.acquire(ctx)
	if !ok {
		c.Set(fiber.HeaderRetryAfter, "1")
		return errorf(fiber.StatusServiceUnavailable, "too many preview tiles are being read; retry in a moment")
	}
	defer release()
	src, done, err := s.previews.sources.Acquire(layer)
	if err != nil {
		return fmt.Errorf("open preview source of layer %s: %w", layer.ID, err)
	}
	defer done()
	data, format, err := previewBytes(ctx, src, layer, t)
	if err != nil {
		perr := &previewError{layer: layer.ID, tile: t, err: err}
		if ctx.Err() != nil {
			perr.timeout = timeout
		}
		return perr
	}

	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "private, max-age="+strconv.Itoa(int(previewMaxAge.Seconds())))
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "image/"+format.String())
	return c.Send(data)
}

// previewBytes reads tile t of layer from src as encoded bytes: stored
// tiles as they are, drawn tiles encoded by the layer's format policy, and
// a transparent PNG where the source has no data.
func previewBytes(ctx context.Context, src source.Source, layer catalog.Layer, t grid.Tile) ([]byte, source.Format, error) {
	tile, err := src.Tile(ctx, t)
	switch {
	case errors.Is(err, source.ErrNoData):
		return emptyTile, source.PNG, nil
	case err != nil:
		return nil, "", err
	case tile.Data != nil:
		return tile.Data, tile.Format, nil
	case tile.Image == nil || source.IsEmpty(tile.Image):
		return emptyTile, source.PNG, nil
	}
	policy, err := source.ParseFormatPolicy(layer.TileFormat)
	if err != nil {
		return nil, "", err
	}
	return source.Encode(tile.Image, policy, layer.JPEGQuality)
}

// tileAddress reads z, x and y of a tile route: whole numbers naming a
// tile of the grid. It reports every field at fault.
func tileAddress(c *fiber.Ctx) (grid.Tile, []FieldError) {
	var errs []FieldError
	num := func(name string) int64 {
		raw := c.Params(name)
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, FieldError{Field: name, Reason: fmt.Sprintf("%q is not a whole number, 0 or more", raw)})
			return -1
		}
		return n
	}
	z, x, y := num("z"), num("x"), num("y")
	if z > int64(grid.MaxZoom) {
		errs = append(errs, FieldError{Field: "z", Reason: fmt.Sprintf("%d is beyond the grid's zooms 0 to %d", z, grid.MaxZoom)})
	}
	if z >= 0 && z <= int64(grid.MaxZoom) {
		zoom := grid.Zoom(z)
		if w := zoom.MatrixWidth(); x >= w {
			errs = append(errs, FieldError{Field: "x", Reason: fmt.Sprintf("%d is beyond the %d columns of zoom %d", x, w, z)})
		}
		if h := zoom.MatrixHeight(); y >= h {
			errs = append(errs, FieldError{Field: "y", Reason: fmt.Sprintf("%d is beyond the %d rows of zoom %d (rows count from the north)", y, h, z)})
		}
	}
	return grid.Tile{Zoom: grid.Zoom(z), Col: x, Row: y}, errs
}
