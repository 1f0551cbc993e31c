package job

import "strings"

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
