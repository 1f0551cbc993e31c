package trigger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// jobResponse is GET /jobs/{id}.
type jobResponse struct {
	ID         string     `json:"id"`
	Status     job.Status `json:"status"`
	Percentage int        `json:"percentage"`
	TilesDone  int64      `json:"tilesDone"`
	TilesTotal int64      `json:"tilesTotal"`
	// BatchesRetrying is how many batches of an In-Progress job wait to
	// be run again: their task failed with retries left, or the worker
	// running it died and the batch was queued again.
	BatchesRetrying int64     `json:"batchesRetrying,omitempty"`
	DBID            string    `json:"dbId"`
	Zoom            int       `json:"zoom"`
	BBox            []float64 `json:"bbox"`
	Priority        int       `json:"priority"`
	PackageName     string    `json:"packageName"`
	TaskIDs         []string  `json:"taskIds"`
	// FromCache is true when the caller's first request for this job was
	// answered at once from the package an earlier export had made (a
	// naive-cache hit), so it asked for nothing new; a caller that created
	// or joined the job, and so saw it render, reads false.
	FromCache bool   `json:"fromCache"`
	Reason    string `json:"reason,omitempty"`
	// EstimatedBytes is the size expected when the job was planned.
	EstimatedBytes int64 `json:"estimatedBytes"`
	// ETASeconds estimates the seconds until the job's tiles are
	// rendered (job.Job.ETA), once the estimate means something.
	ETASeconds *int64 `json:"etaSeconds,omitempty"`
	// SHA256 is the hex digest of the package, once there is one, for
	// clients to verify their download.
	SHA256      string          `json:"sha256,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
	ExpiresAt   *time.Time      `json:"expiresAt,omitempty"`
	Result      *job.Completion `json:"result,omitempty"`
	// Callbacks are the outcomes of deliveries so far, on GET /jobs/{id}.
	Callbacks []deliveryResponse `json:"callbacks,omitempty"`
}

// visibleJob loads the job named by the route parameter param if the
// caller may see it: it asked for the job, or it is an operator. Anything
// else is 404, so ids of other subjects' jobs are not confirmed. The view
// also says whether the caller was served the job from the cache and, with
// deliveries, holds the job's callback outcomes: one round trip to Redis.
func (s *Server) visibleJob(c *fiber.Ctx, param string, deliveries bool) (job.View, error) {
	id := c.Params(param)
	if _, err := uuid.Parse(id); err != nil {
		return job.View{}, invalid(param, "%q is not a uuid", id)
	}
	p, _ := PrincipalFrom(c)
	v, err := s.deps.Jobs.Look(c.UserContext(), id, p.Subject, deliveries)
	if errors.Is(err, job.ErrNotFound) || err == nil && !v.Requested && !p.Operator() {
		return job.View{}, errorf(fiber.StatusNotFound, "no job with id %s", id)
	}
	if err != nil {
		return job.View{}, unavailable(err)
	}
	return v, nil
}

func (s *Server) jobResponse(j job.Job) jobResponse {
	r := jobResponse{
		ID: j.ID, Status: j.Status, Percentage: j.Percentage(), TilesDone: j.TilesDone, TilesTotal: j.Spec.TilesTotal,
		DBID: j.Spec.Layer.ID, Zoom: int(j.Spec.Zoom), BBox: j.Spec.BBox.Slice(), Priority: j.Spec.Priority,
		PackageName: j.Spec.PackageName, TaskIDs: j.TaskIDs, Reason: j.Reason, EstimatedBytes: j.Spec.EstimatedBytes,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
	r.ETASeconds = etaSeconds(j, s.deps.Now())
	if j.Status == job.StatusCompleted {
		r.SHA256 = j.SHA256
	}
	if !j.CompletedAt.IsZero() {
		r.CompletedAt = &j.CompletedAt
	}
	if !j.ExpiresAt.IsZero() {
		r.ExpiresAt = &j.ExpiresAt
	}
	if j.Status != job.StatusInProgress {
		res := j.Completion(s.cfg.PublicURL, j.Spec.BBox.Slice())
		r.Result = &res
	}
	return r
}

// etaSeconds is j's ETA in whole seconds, nil while it has none.
func etaSeconds(j job.Job, now time.Time) *int64 {
	eta, ok := j.ETA(now)
	if !ok {
		return nil
	}
	secs := int64(eta / time.Second)
	return &secs
}

// jobResponses answers jobs as subject sees them: whether a job was served
// to it from the cache is its own.
func (s *Server) jobResponses(ctx context.Context, subject string, jobs ...job.Job) ([]jobResponse, error) {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	hits, err := s.deps.Jobs.FromCache(ctx, subject, ids...)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]jobResponse, len(jobs))
	for i, j := range jobs {
		out[i] = s.jobResponse(j)
		out[i].FromCache = hits[i]
	}
	return out, nil
}

// getJob is GET /jobs/{id}, with the outcome of each callback.
func (s *Server) getJob(c *fiber.Ctx) error {
	v, err := s.visibleJob(c, "id", true)
	if err != nil {
		return err
	}
	r := s.jobResponse(v.Job)
	r.FromCache = v.FromCache
	if v.Job.Status == job.StatusInProgress {
		r.BatchesRetrying = v.Retrying
	}
	for _, d := range v.Deliveries {
		r.Callbacks = append(r.Callbacks, deliveryResponse{
			URL: d.Callback.URL, BBox: d.Callback.BBox, Outcome: d.Outcome, Code: d.Code, Error: d.Error, Attempts: d.Attempts, At: d.At,
		})
	}
	return c.JSON(r)
}

// deliveryResponse is the latest outcome of one callback.
type deliveryResponse struct {
	URL      string    `json:"url"`
	BBox     []float64 `json:"bbox"`
	Outcome  string    `json:"outcome"`
	Code     int       `json:"code,omitempty"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// taskStatus is GET /taskStatus/{jobId}, for clients of the reference
// service: just the percentage and the status.
func (s *Server) taskStatus(c *fiber.Ctx) error {
	v, err := s.visibleJob(c, "jobId", false)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"percentage": v.Job.Percentage(), "status": v.Job.Status})
}

// listResponse is GET /jobs.
type listResponse struct {
	Jobs       []jobResponse `json:"jobs"`
	NextOffset *int          `json:"nextOffset"`
}

// Page sizes of GET /jobs.
const (
	defaultPage = 50
	maxPage     = 500
)

var statuses = []job.Status{job.StatusInProgress, job.StatusCompleted, job.StatusFailed, job.StatusCancelled, job.StatusExpired}

// listJobs is GET /jobs: the caller's jobs, most recently requested first,
// optionally of one status, paged by offset and limit.
func (s *Server) listJobs(c *fiber.Ctx) error {
	var errs []FieldError
	status := job.Status(c.Query("status"))
	if status != "" && !slices.Contains(statuses, status) {
		errs = append(errs, FieldError{Field: "status", Reason: fmt.Sprintf("%q is not one of %v", status, statuses)})
	}
	limit, err := strconv.Atoi(c.Query("limit", strconv.Itoa(defaultPage)))
	if err != nil || limit < 1 || limit > maxPage {
		errs = append(errs, FieldError{Field: "limit", Reason: fmt.Sprintf("must be a whole number within 1..%d", maxPage)})
	}
	offset, err := strconv.Atoi(c.Query("offset", "0"))
	if err != nil || offset < 0 {
		errs = append(errs, FieldError{Field: "offset", Reason: "must be a whole number, 0 or more"})
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	p, _ := PrincipalFrom(c)
	jobs, next, err := s.deps.Jobs.List(c.UserContext(), p.Subject, status, offset, limit)
	if err != nil {
		return unavailable(err)
	}
	r := listResponse{}
	if r.Jobs, err = s.jobResponses(c.UserContext(), p.Subject, jobs...); err != nil {
		return err
	}
	if next >= 0 {
		r.NextOffset = &next
	}
	return c.JSON(r)
}

// cancelJob is DELETE /jobs/{id}: it ends an In-Progress job for good. The
// job's creator and operators may cancel it; its queued tasks are deleted,
// a running one is stopped and not retried, and its callbacks are told
// success false.
func (s *Server) cancelJob(c *fiber.Ctx) error {
	ctx := c.UserContext()
	v, err := s.visibleJob(c, "id", false)
	if err != nil {
		return err
	}
	j := v.Job
	p, _ := PrincipalFrom(c)
	if !p.Operator() && j.Owner != p.Subject {
		return errorf(fiber.StatusForbidden, "only the job's creator or an operator may cancel job %s", j.ID)
	}
	j, changed, err := s.deps.Jobs.Cancel(ctx, j.ID, "cancelled by "+p.Subject)
	if err != nil {
		return unavailable(err)
	}
	if !changed {
		return errorf(fiber.StatusConflict, "job %s is %s; only In-Progress jobs can be cancelled", j.ID, j.Status)
	}
	queue := s.deps.Enqueuer.Queue(j)
	for _, tid := range j.TaskIDs {
		// A queued task is deleted; a running one is told to stop, and
		// stops by itself at its next status check if the signal is lost.
		if err := s.deps.Tasks.DeleteTask(queue, tid); err != nil {
			if err := s.deps.Tasks.CancelProcessing(tid); err != nil {
				s.deps.Logger.WarnContext(ctx, "stop cancelled task", logattr.JobID, j.ID, logattr.TaskID, tid, logattr.Error, err)
			}
		}
	}
	if len(j.TaskIDs) > 1 {
		// The merge task of a stopped job removes its parts.
		if _, err := s.deps.Enqueuer.Finalize(ctx, j); err != nil {
			return unavailable(err)
		}
	}
	if err := s.deps.Enqueuer.Callbacks(ctx, j); err != nil {
		return unavailable(err)
	}
	s.deps.Logger.InfoContext(ctx, "export cancelled", logattr.JobID, j.ID, logattr.Subject, p.Subject)
	return c.JSON(s.jobResponse(j))
}

// layerResponse is one entry of GET /layers.
type layerResponse struct {
	ID            string    `json:"id"`
	ProductID     string    `json:"productId"`
	ProductType   string    `json:"productType"`
	Version       string    `json:"version"`
	Description   string    `json:"description,omitempty"`
	Footprint     []float64 `json:"footprint"`
	MaxResolution float64   `json:"maxResolution"`
	MaxZoom       int       `json:"maxZoom"`
	SourceKind    string    `json:"sourceKind"`
	TileFormat    string    `json:"tileFormat"`
}

func (s *Server) listLayers(c *fiber.Ctx) error {
	layers := s.deps.Catalog.Layers()
	out := make([]layerResponse, len(layers))
	for i, l := range layers {
		out[i] = layerResponse{
			ID: l.ID, ProductID: l.ProductID, ProductType: l.ProductType, Version: l.Version, Description: l.Description,
			Footprint: l.Footprint.Slice(), MaxResolution: l.MaxResolution, MaxZoom: int(l.MaxZoom()),
			SourceKind: l.Source.Kind, TileFormat: l.TileFormat,
		}
	}
	return c.JSON(out)
}

// packageFile matches the files of a package: the GeoPackage and its
// metadata JSON.
var packageFile = regexp.MustCompile(`^[A-Za-z0-9._-]+\.(gpkg|json)$`)
