package job

import (
	"encoding/json"
	"strings"
	"time"
)

// ExpirationLayout formats expirationTime: the contract's `format: date`.
const ExpirationLayout = "2006-01-02"

// Completion is the contract's naiveCacheJobResponse: the answer to a
// cache hit (with Status) and the body POSTed to each callback (without).
// A failed job's callbacks carry Success false and ErrorReason.
type Completion struct {
	Status           Status    `json:"status,omitempty"`
	FileURI          string    `json:"fileUri"`
	ExpirationTime   string    `json:"expirationTime"`
	FileSize         int64     `json:"fileSize"`
	DBID             string    `json:"dbId"`
	PackageName      string    `json:"packageName"`
	BBox             []float64 `json:"bbox"`
	TargetResolution float64   `json:"targetResolution"`
	RequestID        string    `json:"requestId"`
	Success          bool      `json:"success"`
	ErrorReason      string    `json:"errorReason,omitempty"`
}

// DownloadURI is the link to the package stored at fileKey: the key below
// PackagesPrefix is the path below publicURL/downloads/, so a package's
// link is publicURL/downloads/<job id>/<package name>.gpkg (and
// publicURL/downloads/<package name>.gpkg for packages stored before
// packages had per-job keys).
func DownloadURI(publicURL, fileKey string) string {
	return publicURL + "/downloads/" + strings.TrimPrefix(fileKey, PackagesPrefix)
}

// Completion describes j's outcome to a caller who asked for bbox. It has
// no Status; set it for the synchronous answer.
func (j Job) Completion(publicURL string, bbox []float64) Completion {
	c := Completion{
		DBID:             j.Spec.Layer.ID,
		PackageName:      j.Spec.PackageName,
		BBox:             bbox,
		TargetResolution: j.Spec.Zoom.Resolution(),
		RequestID:        j.ID,
		Success:          j.Status == StatusCompleted,
	}
	if c.Success {
		c.FileURI = DownloadURI(publicURL, j.FileKey)
		c.ExpirationTime = j.ExpiresAt.UTC().Format(ExpirationLayout)
		c.FileSize = j.FileSize
	} else {
		c.ErrorReason = j.Reason
		if c.ErrorReason == "" {
			c.ErrorReason = "the export ended as " + string(j.Status)
		}
	}
	return c
}

// ExportStatus is a job's status as POST /export and its status route
// spell it (the reference's statuses): a cancelled job is Aborted.
func ExportStatus(s Status) string {
	if s == StatusCancelled {
		return "Aborted"
	}
	return string(s)
}

// ExportLinks are the links of a finished /export package.
type ExportLinks struct {
	DataURI     string `json:"dataURI"`
	MetadataURI string `json:"metadataURI"`
}

// Artifact is one file of a finished /export: the GeoPackage or its
// metadata JSON.
type Artifact struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}

// Artifact types.
const (
	ArtifactGeoPackage = "GPKG"
	ArtifactMetadata   = "METADATA"
)

// ExportCompletion is the /export answer for a finished package (with
// Status Completed) and the body POSTed to the callbacks of an /export
// request (Completed, or Failed, Expired or Aborted with ErrorReason).
type ExportCompletion struct {
	Status          string          `json:"status"`
	JobID           string          `json:"jobId"`
	Links           *ExportLinks    `json:"links,omitempty"`
	Artifacts       []Artifact      `json:"artifacts,omitempty"`
	ExpirationTime  string          `json:"expirationTime,omitempty"`
	FileSize        int64           `json:"fileSize,omitempty"`
	RecordCatalogID string          `json:"recordCatalogId"`
	ROI             json.RawMessage `json:"roi,omitempty"`
	Description     string          `json:"description,omitempty"`
	ErrorReason     string          `json:"errorReason,omitempty"`
}

// ExportCompletion describes j's outcome to an /export caller who asked
// for roi.
func (j Job) ExportCompletion(publicURL string, roi json.RawMessage) ExportCompletion {
	c := ExportCompletion{
		Status: ExportStatus(j.Status), JobID: j.ID, RecordCatalogID: j.Spec.Layer.ID,
		ROI: roi, Description: j.Spec.Description,
	}
	if j.Status != StatusCompleted {
		c.ErrorReason = j.Reason
		if c.ErrorReason == "" {
			c.ErrorReason = "the export ended as " + c.Status
		}
		return c
	}
	data := DownloadURI(publicURL, j.FileKey)
	meta := DownloadURI(publicURL, MetadataFileKey(j.FileKey))
	c.Links = &ExportLinks{DataURI: data, MetadataURI: meta}
	c.Artifacts = []Artifact{
		{Name: j.Spec.PackageName + ".gpkg", URL: data, Size: j.FileSize, Type: ArtifactGeoPackage},
		{Name: j.Spec.PackageName + ".json", URL: meta, Size: j.MetadataSize, Type: ArtifactMetadata},
	}
	c.ExpirationTime = j.ExpiresAt.UTC().Format(time.RFC3339)
	c.FileSize = j.FileSize
	return c
}
