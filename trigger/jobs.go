package trigger

import (
	"errors"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/job"
)

// jobResponse is GET /jobs/{id}.
type jobResponse struct {
	ID          string          `json:"id"`
	Status      job.Status      `json:"status"`
	Percentage  int             `json:"percentage"`
	TilesDone   int64           `json:"tilesDone"`
	TilesTotal  int64           `json:"tilesTotal"`
	DBID        string          `json:"dbId"`
	Zoom        int             `json:"zoom"`
	BBox        []float64       `json:"bbox"`
	Priority    int             `json:"priority"`
	PackageName string          `json:"packageName"`
	TaskIDs     []string        `json:"taskIds"`
	Reason      string          `json:"reason,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
	ExpiresAt   *time.Time      `json:"expiresAt,omitempty"`
	Result      *job.Completion `json:"result,omitempty"`
}

func (s *Server) getJob(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := uuid.Parse(id); err != nil {
		return invalid("id", "%q is not a uuid", id)
	}
	j, err := s.deps.Jobs.Get(c.UserContext(), id)
	if errors.Is(err, job.ErrNotFound) {
		return errorf(fiber.StatusNotFound, "no job with id %s", id)
	}
	if err != nil {
		return errors.Join(errUnavailable, err)
	}
	r := jobResponse{
		ID: j.ID, Status: j.Status, Percentage: j.Percentage(), TilesDone: j.TilesDone, TilesTotal: j.Spec.TilesTotal,
		DBID: j.Spec.Layer.ID, Zoom: int(j.Spec.Zoom), BBox: j.Spec.BBox.Slice(), Priority: j.Spec.Priority,
		PackageName: j.Spec.PackageName, TaskIDs: j.TaskIDs, Reason: j.Reason,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
	if !j.CompletedAt.IsZero() {
		r.CompletedAt = &j.CompletedAt
	}
	if !j.ExpiresAt.IsZero() {
		r.ExpiresAt = &j.ExpiresAt
	}
	if j.Status == job.StatusCompleted || j.Status == job.StatusFailed {
		res := j.Completion(s.cfg.PublicURL, j.Spec.BBox.Slice())
		r.Result = &res
	}
	return c.JSON(r)
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

var packageFile = regexp.MustCompile(`^[A-Za-z0-9._-]+\.gpkg$`)
