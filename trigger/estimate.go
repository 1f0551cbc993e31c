package trigger

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

// estimateResponse is what an export would be, without making it.
type estimateResponse struct {
	DBID             string          `json:"dbId"`
	CRS              string          `json:"crs"`
	BBox             []float64       `json:"bbox"`
	Zoom             int             `json:"zoom"`
	TargetResolution float64         `json:"targetResolution"`
	TilesTotal       int64           `json:"tilesTotal"`
	TilesByZoom      []job.ZoomTiles `json:"tilesByZoom"`
	EstimatedBytes   int64           `json:"estimatedBytes"`
	PackageName      string          `json:"packageName"`
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
		r.TilesByZoom = append(r.TilesByZoom, job.ZoomTiles{Zoom: int(rng.Zoom), Tiles: rng.Count()})
	}
	if r.QuotaBytes, r.QuotaAvailableBytes, err = s.quota(c); err != nil {
		return err
	}
	return c.JSON(r)
}

// quota is the quota and what is left of it (stored packages and the
// estimates of unfinished jobs count, as for the 507 of a new job); 0 and
// nil without a quota.
func (s *Server) quota(c *fiber.Ctx) (quota int64, left *int64, err error) {
	if s.cfg.QuotaBytes <= 0 {
		return 0, nil, nil
	}
	stored, reserved, err := s.deps.Jobs.Usage(c.UserContext())
	if err != nil {
		return 0, nil, unavailable(err)
	}
	n := max(0, s.cfg.QuotaBytes-stored-reserved)
	return s.cfg.QuotaBytes, &n, nil
}

// estimateAny is POST /estimate: the estimate of an /export body
// (estimateArea) or of a /create one (estimate).
func (s *Server) estimateAny(c *fiber.Ctx) error {
	if isAreaRequest(c.Body()) {
		return s.estimateArea(c)
	}
	return s.estimate(c)
}

// isAreaRequest tells an /export body (dbId and an optional roi) from a
// /create one, for POST /estimate, which takes both: a body without bbox
// and targetResolution is an area request.
func isAreaRequest(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, bbox := m["bbox"]
	_, res := m["targetResolution"]
	return !bbox && !res
}

// featureEstimate is one feature of an area estimate: its zooms and the
// tiles and bytes of its own coverage (features may overlap, so the
// total may be less than their sum).
type featureEstimate struct {
	Index          int   `json:"index"`
	MinZoom        int   `json:"minZoom"`
	MaxZoom        int   `json:"maxZoom"`
	Tiles          int64 `json:"tiles"`
	EstimatedBytes int64 `json:"estimatedBytes"`
}

// areaEstimateResponse is what an /export would be, per feature and in
// total.
type areaEstimateResponse struct {
	DBID           string            `json:"dbId"`
	CRS            string            `json:"crs"`
	BBox           []float64         `json:"bbox"`
	MaxZoom        int               `json:"maxZoom"`
	TilesTotal     int64             `json:"tilesTotal"`
	TilesByZoom    []job.ZoomTiles   `json:"tilesByZoom"`
	EstimatedBytes int64             `json:"estimatedBytes"`
	PackageName    string            `json:"packageName"`
	Features       []featureEstimate `json:"features"`
	// QuotaBytes and QuotaAvailableBytes are set when a quota is.
	QuotaBytes          int64  `json:"quotaBytes,omitempty"`
	QuotaAvailableBytes *int64 `json:"quotaAvailableBytes,omitempty"`
}

// estimateArea is POST /estimate with an /export body: the same checks as
// /export, creating and reserving nothing.
func (s *Server) estimateArea(c *fiber.Ctx) error {
	_, spec, _, err := s.decodeAndPlanArea(c)
	if err != nil {
		return err
	}
	cov, err := spec.Coverage()
	if err != nil {
		return roiError(err)
	}
	r := areaEstimateResponse{
		DBID: spec.Layer.ID, CRS: spec.CRS, BBox: spec.BBox.Slice(), MaxZoom: int(spec.Zoom), TilesTotal: spec.TilesTotal,
		EstimatedBytes: spec.EstimatedBytes, PackageName: spec.PackageName,
	}
	r.TilesByZoom = job.TilesByZoom(cov)
	sizes := s.sizes(c.UserContext(), spec.Layer)
	for i, f := range spec.ROI {
		one := spec
		one.ROI = spec.ROI[i : i+1]
		c, err := one.Coverage()
		if err != nil {
			return roiError(err)
		}
		r.Features = append(r.Features, featureEstimate{Index: i, MinZoom: int(f.MinZoom), MaxZoom: int(f.MaxZoom),
			Tiles: c.Count(), EstimatedBytes: sizes.Estimate(one.Layer, job.TilesByZoom(c))})
	}
	if r.QuotaBytes, r.QuotaAvailableBytes, err = s.quota(c); err != nil {
		return err
	}
	return c.JSON(r)
}
