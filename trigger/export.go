package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/job"
)

// maxDescription is the longest description of an /export, in characters.
const maxDescription = 1000

// AreaRequest is a decoded, syntactically valid POST /export body. Its
// area is checked against the layer later (PlanArea).
type AreaRequest struct {
	DBID string
	// ROI is the caller's FeatureCollection as sent; nil when omitted
	// (the layer's whole footprint).
	ROI          json.RawMessage
	CallbackURLs []string
	CRS          string
	Priority     int
	Description  string
	// Cutline makes the pixels of edge tiles outside the area
	// transparent (those tiles are then PNG).
	Cutline bool
}

// areaFields are the accepted members of a POST /export body.
var areaFields = []string{"dbId", "roi", "callbackURLs", "crs", "priority", "description", "cutline"}

// DecodeAreaRequest parses and checks a POST /export body: every problem
// found is reported in one *ValidationError. The roi is only checked to be
// an object here: its geometry needs the layer.
func DecodeAreaRequest(body []byte) (AreaRequest, error) {
	m, err := decodeMembers(body, areaFields)
	if err != nil {
		return AreaRequest{}, err
	}
	var (
		r    AreaRequest
		errs []FieldError
	)
	fail := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	r.DBID = decodeDBID(m["dbId"], fail)
	if raw := m["roi"]; present(raw) {
		if t := jsonType(raw); t != "an object" {
			fail("roi", "must be a GeoJSON FeatureCollection object, got %s", t)
		} else {
			r.ROI = raw
		}
	}
	r.CallbackURLs, r.CRS, r.Priority = decodeShared(m, false, fail)
	if raw := m["description"]; present(raw) {
		switch {
		case json.Unmarshal(raw, &r.Description) != nil:
			fail("description", "must be a string, got %s", jsonType(raw))
		case utf8.RuneCountInString(r.Description) > maxDescription:
			fail("description", "%d characters, at most %d allowed", utf8.RuneCountInString(r.Description), maxDescription)
		}
	}
	if raw := m["cutline"]; len(raw) > 0 {
		if t := jsonType(raw); t != "a boolean" {
			fail("cutline", "must be true or false, got %s", t)
		} else {
			r.Cutline = string(raw) == "true"
		}
	}
	if len(errs) > 0 {
		return AreaRequest{}, &ValidationError{Fields: errs}
	}
	return r, nil
}

// exportProgress is the /export answer for a new or joined job.
type exportProgress struct {
	Status       string `json:"status"`
	JobID        string `json:"jobId"`
	IsDuplicated bool   `json:"isDuplicated"`
	Percentage   int    `json:"percentage"`
}

// export is POST /export: the area request of the reference's later
// versions, sharing /create's planning, naive cache, quota and queueing.
func (s *Server) export(c *fiber.Ctx) error {
	req, spec, roi, err := s.decodeAndPlanArea(c)
	if err != nil {
		s.metrics.created.WithLabelValues("rejected").Inc()
		return err
	}
	callbacks := make([]job.Callback, len(req.CallbackURLs))
	for i, u := range req.CallbackURLs {
		callbacks[i] = job.Callback{URL: u, ROI: roi}
	}
	j, outcome, err := s.getOrCreate(c, spec, callbacks)
	if err != nil {
		return err
	}
	if outcome == job.OutcomeCacheHit {
		return c.JSON(j.ExportCompletion(s.cfg.PublicURL, roi))
	}
	return c.JSON(exportProgress{Status: job.ExportStatus(j.Status), JobID: j.ID, IsDuplicated: outcome == job.OutcomeJoined, Percentage: j.Percentage()})
}

// exportStatusResponse is GET /export/{jobId}/status: the reference's
// percentage and status, and the job's ETA once it has one.
type exportStatusResponse struct {
	Percentage int    `json:"percentage"`
	Status     string `json:"status"`
	ETASeconds *int64 `json:"etaSeconds,omitempty"`
}

// exportStatus is GET /export/{jobId}/status: the percentage and the
// status as the reference spells it.
func (s *Server) exportStatus(c *fiber.Ctx) error {
	v, err := s.visibleJob(c, "jobId", false)
	if err != nil {
		return err
	}
	return c.JSON(exportStatusResponse{
		Percentage: v.Job.Percentage(), Status: job.ExportStatus(v.Job.Status), ETASeconds: etaSeconds(v.Job, s.deps.Now()),
	})
}

// decodeAndPlanArea decodes an /export body, checks its callbacks and
// plans the export; roi is the caller's area, or the whole layer's when
// it sent none.
func (s *Server) decodeAndPlanArea(c *fiber.Ctx) (AreaRequest, job.Spec, json.RawMessage, error) {
	req, err := DecodeAreaRequest(c.Body())
	if err != nil {
		return req, job.Spec{}, nil, err
	}
	if err := s.checkCallbacks(c, req.CallbackURLs); err != nil {
		return req, job.Spec{}, nil, err
	}
	spec, roi, err := s.planArea(req)
	if err != nil {
		return req, spec, roi, err
	}
	return req, spec, roi, s.estimateSpec(c.UserContext(), &spec)
}

// planArea applies the catalog to a valid /export request: layer, the
// area's features and their zooms, and their coverage within the
// footprint, counted exactly against the tile cap and given up as soon as
// it is over it, so that a huge area costs no more than the cap.
func (s *Server) planArea(req AreaRequest) (job.Spec, json.RawMessage, error) {
	layer, err := s.lookup(req.DBID)
	if err != nil {
		return job.Spec{}, nil, err
	}
	roi := req.ROI
	var features []area.Feature
	if roi == nil {
		// The whole layer at its finest resolution.
		features = []area.Feature{area.BBoxFeature(layer.Footprint, layer.MaxResolution, layer.MaxZoom())}
		if roi, err = area.Encode(features); err != nil {
			return job.Spec{}, nil, err
		}
	} else if features, err = area.Decode(roi, area.Limits{MaxVertices: s.cfg.MaxROIVertices, MaxZoom: layer.MaxZoom()}); err != nil {
		return job.Spec{}, nil, roiError(err)
	}
	spec, err := job.NewAreaSpec(layer, features, req.Priority, req.Description, req.Cutline, s.cfg.MaxTiles)
	var tooMany *area.TooManyTilesError
	if errors.As(err, &tooMany) {
		what := "the area"
		if req.ROI == nil {
			what = "the whole layer (roi omitted)"
		}
		return job.Spec{}, nil, invalid("roi", "%s holds more than %d tiles, the limit; choose %s", what, s.cfg.MaxTiles, areaInstead)
	}
	if err != nil {
		return job.Spec{}, nil, roiError(err)
	}
	if err := s.finishSpec(&spec, "roi", areaInstead); err != nil {
		return job.Spec{}, nil, err
	}
	return spec, roi, nil
}

// areaInstead is what to ask for instead of an area over the tile cap.
const areaInstead = "a smaller area or a coarser maxResolutionDeg"

// roiError names the member of the roi an *area.Error is about.
func roiError(err error) error {
	var aerr *area.Error
	if !errors.As(err, &aerr) {
		return err
	}
	field := "roi"
	if p := aerr.Path(); p != "" {
		field += "." + p
	}
	return invalid(field, "%s", aerr.Reason)
}

// Capacity is package storage that knows its free and total bytes;
// *storage.Local is one (statfs of its directory). S3 has no such
// answer.
type Capacity interface {
	// Capacity returns the bytes still free and the total size.
	Capacity(ctx context.Context) (free, size int64, err error)
}

// storageResponse is GET /storage, in bytes. Without a quota on S3 both
// are null: the bucket has no size to report.
type storageResponse struct {
	Free *int64 `json:"free"`
	Size *int64 `json:"size"`
}

// storage is GET /storage: with a quota, what is left of it and the quota
// (stored packages and the estimates of unfinished jobs count, as for
// /create's 507); without one, the package storage's free space and size
// where it knows them.
func (s *Server) storage(c *fiber.Ctx) error {
	quota, left, err := s.quota(c)
	if err != nil {
		return err
	}
	if left != nil {
		return c.JSON(storageResponse{Free: left, Size: &quota})
	}
	cp, ok := s.deps.Files.(Capacity)
	if !ok {
		return c.JSON(storageResponse{})
	}
	free, size, err := cp.Capacity(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(storageResponse{Free: &free, Size: &size})
}
