package trigger

import (
	"github.com/gofiber/fiber/v2"

	"github.com/geoexport/exporter/internal/grid"
)

// zoomTiles is the tile count of one zoom of an estimate.
type zoomTiles struct {
	Zoom  int   `json:"zoom"`
	Tiles int64 `json:"tiles"`
}

// estimateResponse is what an export would be, without making it.
type estimateResponse struct {
	DBID             string      `json:"dbId"`
	CRS              string      `json:"crs"`
	BBox             []float64   `json:"bbox"`
	Zoom             int         `json:"zoom"`
	TargetResolution float64     `json:"targetResolution"`
	TilesTotal       int64       `json:"tilesTotal"`
	TilesByZoom      []zoomTiles `json:"tilesByZoom"`
	EstimatedBytes   int64       `json:"estimatedBytes"`
	PackageName      string      `json:"packageName"`
	// QuotaBytes and QuotaAvailableBytes are set when a quota is.
	QuotaBytes          int64  `json:"quotaBytes,omitempty"`
	QuotaAvailableBytes *int64 `json:"quotaAvailableBytes,omitempty"`
}

// estimate is POST /estimate and POST /create?dryRun=true: the sanitised
// bbox, zoom, tiles per zoom and estimated size of an export, from the same
// request checks as /create, creating and reserving nothing. With a quota
// it reports what is left; whether the export needs quota at all (an
// identical job may exist) is only known when it is created.
func (s *Server) estimate(c *fiber.Ctx) error {
	_, spec, err := s.decodeAndPlan(c)
	if err != nil {
		return err
	}
	r := estimateResponse{
		DBID: spec.Layer.ID, CRS: spec.CRS, BBox: spec.BBox.Slice(), Zoom: int(spec.Zoom),
		TargetResolution: spec.Zoom.Resolution(), TilesTotal: spec.TilesTotal,
		EstimatedBytes: spec.EstimatedBytes, PackageName: spec.PackageName,
	}
	for _, rng := range grid.Pyramid(spec.BBox, spec.Zoom) {
		r.TilesByZoom = append(r.TilesByZoom, zoomTiles{Zoom: int(rng.Zoom), Tiles: rng.Count()})
	}
	if s.cfg.QuotaBytes > 0 {
		stored, reserved, err := s.deps.Jobs.Usage(c.UserContext())
		if err != nil {
			return unavailable(err)
		}
		left := max(0, s.cfg.QuotaBytes-stored-reserved)
		r.QuotaBytes, r.QuotaAvailableBytes = s.cfg.QuotaBytes, &left
	}
	return c.JSON(r)
}
