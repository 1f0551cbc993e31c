package trigger

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/source"
)

// createdResponse is the contract's createGpkgJobResponse.
type createdResponse struct {
	Status  job.Status `json:"status"`
	ID      string     `json:"id"`
	TaskIDs []string   `json:"taskIds"`
}

// create is POST /create: validate, look up, get-or-create, enqueue.
// With ?dryRun=true it answers the estimate and creates nothing.
func (s *Server) create(c *fiber.Ctx) error {
	if dry := c.Query("dryRun"); dry != "" {
		v, err := strconv.ParseBool(dry)
		if err != nil {
			return invalid("dryRun", "%q is not true or false", dry)
		}
		if v {
			return s.estimate(c)
		}
	}
	req, spec, err := s.decodeAndPlan(c)
	if err != nil {
		s.metrics.created.WithLabelValues("rejected").Inc()
		return err
	}
	callbacks := make([]job.Callback, len(req.CallbackURLs))
	for i, u := range req.CallbackURLs {
		callbacks[i] = job.Callback{URL: u, BBox: req.BBox.Slice()}
	}
	j, outcome, err := s.getOrCreate(c, spec, callbacks)
	if err != nil {
		return err
	}
	if outcome == job.OutcomeCacheHit {
		resp := j.Completion(s.cfg.PublicURL, req.BBox.Slice())
		resp.Status = job.StatusCompleted
		return c.JSON(resp)
	}
	return c.JSON(createdResponse{Status: job.StatusInProgress, ID: j.ID, TaskIDs: j.TaskIDs})
}

// getOrCreate is the one step /create and /export share once the spec is
// planned: the naive cache's get-or-create (507 over the quota), and the
// render tasks of a new or joined job queued. A new job that cannot be
// queued is failed, so the next identical request starts afresh.
func (s *Server) getOrCreate(c *fiber.Ctx, spec job.Spec, callbacks []job.Callback) (job.Job, job.Outcome, error) {
	ctx := c.UserContext()
	id := uuid.NewString()
	fresh := job.Job{ID: id, Spec: spec} // task ids are planned if it is stored
	p, _ := PrincipalFrom(c)
	j, outcome, err := s.deps.Jobs.GetOrCreate(ctx, fresh, job.Request{
		Subject: p.Subject, Callbacks: callbacks, TTL: s.cfg.PackageTTL, QuotaBytes: s.cfg.QuotaBytes,
	})
	var qerr *job.QuotaError
	if errors.As(err, &qerr) {
		s.metrics.created.WithLabelValues("rejected").Inc()
		return j, outcome, err
	}
	if err != nil {
		return j, outcome, unavailable(err)
	}
	s.metrics.created.WithLabelValues(string(outcome)).Inc()
	log := s.deps.Logger.With(logattr.JobID, j.ID, logattr.Outcome, string(outcome))
	switch outcome {
	case job.OutcomeCacheHit:
		log.InfoContext(ctx, "export served from cache")
		return j, outcome, nil
	case job.OutcomeJoined:
		// Enqueue again: the task ids make it a no-op while the tasks
		// exist, and it revives a job whose creator died before queueing.
		if err := s.enqueue(c, j); err != nil {
			return j, outcome, unavailable(err)
		}
		log.InfoContext(ctx, "export joined a running job")
		return j, outcome, nil
	}
	if err := s.enqueue(c, j); err != nil {
		// Nothing will render this job: end it, so the next identical
		// request starts afresh instead of joining it.
		if _, _, ferr := s.deps.Jobs.Fail(ctx, j.ID, "could not be queued"); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return j, outcome, unavailable(err)
	}
	log.InfoContext(ctx, "export job created", "zoom", int(spec.Zoom), logattr.Tiles, spec.TilesTotal, "priority", spec.Priority)
	return j, outcome, nil
}

// decodeAndPlan decodes the body, checks its callbacks against the
// callback policy and plans the export.
func (s *Server) decodeAndPlan(c *fiber.Ctx) (ExportRequest, job.Spec, error) {
	req, err := DecodeExportRequest(c.Body())
	if err != nil {
		return req, job.Spec{}, err
	}
	if err := s.checkCallbacks(c, req.CallbackURLs); err != nil {
		return req, job.Spec{}, err
	}
	spec, err := s.plan(req)
	if err != nil {
		return req, spec, err
	}
	return req, spec, s.estimateSpec(c.UserContext(), &spec)
}

// checkCallbacks checks callback URLs against the callback policy.
func (s *Server) checkCallbacks(c *fiber.Ctx, urls []string) error {
	if s.deps.CallbackPolicy == nil {
		return nil
	}
	var errs []FieldError
	for i, u := range urls {
		if err := s.deps.CallbackPolicy.CheckURL(c.UserContext(), u); err != nil {
			errs = append(errs, FieldError{Field: fmt.Sprintf("callbackURLs[%d]", i), Reason: err.Error()})
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// plan applies the catalog to a valid request: layer, zoom, footprint,
// tile budget.
func (s *Server) plan(req ExportRequest) (job.Spec, error) {
	layer, err := s.lookup(req.DBID)
	if err != nil {
		return job.Spec{}, err
	}
	z, err := grid.ZoomForResolution(req.TargetResolution)
	if err != nil {
		return job.Spec{}, invalid("targetResolution", "%v is outside the grid (zoom 0 %v to zoom %d %v degrees per pixel)",
			req.TargetResolution, grid.Resolution0, grid.MaxZoom, grid.MaxZoom.Resolution())
	}
	if z > layer.MaxZoom() {
		return job.Spec{}, invalid("targetResolution", "%v (zoom %d) is finer than the layer's maximum resolution %v (zoom %d)",
			req.TargetResolution, z, layer.MaxResolution, layer.MaxZoom())
	}
	extent, err := grid.Sanitize(req.BBox, layer.Footprint, z)
	if err != nil {
		return job.Spec{}, invalid("bbox", "%s does not intersect the layer footprint %s", fmtBBox(req.BBox), fmtBBox(layer.Footprint))
	}
	const instead = "a smaller bbox or a coarser targetResolution"
	spec := job.NewSpec(layer, z, extent, req.Priority)
	if err := s.finishSpec(&spec, "bbox", instead); err != nil || len(layer.FootprintGeometry) == 0 {
		return spec, err
	}
	// A polygon footprint clips the bbox by the coverage rule: the tiles
	// that overlap both with a non-zero area (the pyramid of the snapped
	// bbox, just checked against the cap, is a bound of them).
	spec, err = job.NewAreaSpec(layer, []area.Feature{area.BBoxFeature(req.BBox, req.TargetResolution, z)}, req.Priority, "", false, s.cfg.MaxTiles)
	var aerr *area.Error
	if errors.As(err, &aerr) {
		return job.Spec{}, invalid("bbox", "%s does not intersect the layer footprint", fmtBBox(req.BBox))
	}
	if err != nil {
		return job.Spec{}, err
	}
	return spec, s.finishSpec(&spec, "bbox", instead)
}

// lookup is the catalog's layer dbID (404 when unknown).
func (s *Server) lookup(dbID string) (catalog.Layer, error) {
	layer, err := s.deps.Catalog.Lookup(dbID)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Layer{}, errorf(fiber.StatusNotFound, "dbId: no layer with id %s", dbID)
	}
	return layer, err
}

// finishSpec sets the batching of a planned spec and checks the tile cap,
// naming field (bbox or roi) and what to choose instead when it is
// exceeded. The estimate is estimateSpec's, once the spec is final.
func (s *Server) finishSpec(spec *job.Spec, field, instead string) error {
	spec.BatchTiles, spec.BatchSpread, spec.BatchMinTiles = s.cfg.Batching.MaxTiles, s.cfg.Batching.Spread, s.cfg.Batching.MinTiles
	if cols, rows := source.LayerMetatile(spec.Layer); cols*rows > 1 {
		spec.BatchMetatile = []int64{int64(cols), int64(rows)}
	}
	if spec.TilesTotal > s.cfg.MaxTiles {
		return invalid(field, "the export holds %d tiles, more than the limit of %d; choose %s",
			spec.TilesTotal, s.cfg.MaxTiles, instead)
	}
	return nil
}

func fmtBBox(b grid.BBox) string { return "[" + strings.ReplaceAll(b.String(), ",", ", ") + "]" }

// enqueue puts the job's render tasks on the queue of its priority. Task
// ids are the job's task ids, so a repeated enqueue adds nothing.
func (s *Server) enqueue(c *fiber.Ctx, j job.Job) error {
	for i := range j.TaskIDs {
		if _, err := s.deps.Enqueuer.Render(c.UserContext(), j, i); err != nil {
			return err
		}
	}
	return nil
}
