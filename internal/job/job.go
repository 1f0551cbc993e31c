package job

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
)

// Status is the state of a job, spelled as the API spells it.
type Status string

// Statuses. In-Progress and Completed are the two the /create contract
// names; the others end a job without a package.
const (
	StatusInProgress Status = "In-Progress"
	StatusCompleted  Status = "Completed"
	StatusFailed     Status = "Failed"
	StatusExpired    Status = "Expired"
	StatusCancelled  Status = "Cancelled"
)

// CRS is the one coordinate system exports are made in.
const CRS = "EPSG:4326"

// Callback is a URL to notify when a job ends, with the bbox that caller
// asked for (callers that share a cached job asked for different ones).
// A callback of a POST /export request carries that caller's roi instead
// (as it sent it, or the layer's footprint it stood for) and is told in
// the /export shape (Job.ExportCompletion).
type Callback struct {
	URL  string          `json:"url"`
	BBox []float64       `json:"bbox"`
	ROI  json.RawMessage `json:"roi,omitempty"`
}

// Spec is what a job was asked to make. It never changes after creation:
// the Specs of jobs read from the Store may share slices, maps and
// pointers with each other, so none is ever modified in place.
type Spec struct {
	Layer       catalog.Layer `json:"layer"`
	Zoom        grid.Zoom     `json:"zoom"`
	CRS         string        `json:"crs"`
	BBox        grid.BBox     `json:"bbox"`
	Priority    int           `json:"priority"`
	PackageName string        `json:"package_name"`
	TilesTotal  int64         `json:"tiles_total"`
	// EstimatedBytes is the expected package size, for the quota.
	EstimatedBytes int64 `json:"estimated_bytes"`
	// BatchTiles is the most tiles one render task writes; the plan is
	// computed from it, so it is fixed when the job is made.
	BatchTiles int64 `json:"batch_tiles"`
	// BatchSpread and BatchMinTiles spread a large export over several
	// batches (Batching); zero in jobs made before they existed.
	BatchSpread   int64 `json:"batch_spread,omitempty"`
	BatchMinTiles int64 `json:"batch_min_tiles,omitempty"`
	// PlanScheme names the planner the job was made with (PlanBalanced);
	// empty in jobs made before it existed, which keep the Z-order planner
	// they were planned with, so that an upgrade never changes the batches
	// of a job whose tasks are queued.
	PlanScheme string `json:"plan_scheme,omitempty"`
	// BatchMetatile is the source's metatile, [columns, rows] in tiles,
	// that a PlanAligned plan aligns its batches to; empty for a source
	// that fetches tile by tile.
	BatchMetatile []int64 `json:"batch_metatile,omitempty"`

	// ROI is the area of an /export: its features, each with its zoom
	// range, as Decode accepted them. Empty for a /create export, whose
	// tiles are the pyramid of BBox down to Zoom; for an area, Zoom is the
	// finest zoom and BBox the extent of its tiles there.
	ROI []area.Feature `json:"roi,omitempty"`
	// Description is the caller's free text about an /export.
	Description string `json:"description,omitempty"`
	// Cutline makes the pixels of edge tiles outside the area transparent
	// (those tiles are PNG whatever the layer's format).
	Cutline bool `json:"cutline,omitempty"`
}

// Plan schemes: PlanBalanced is Plan's balanced batches, PlanAligned
// its metatile-aligned batches that end small (see Batching). New jobs
// are PlanAligned.
const (
	PlanBalanced = "balanced"
	PlanAligned  = "aligned"
)

// Batching is how the job's export is cut into render tasks.
func (s Spec) Batching() Batching {
	b := Batching{
		MaxTiles: s.BatchTiles, Spread: s.BatchSpread, MinTiles: s.BatchMinTiles,
		ZOrder: s.PlanScheme == "", Aligned: s.PlanScheme == PlanAligned,
	}
	if len(s.BatchMetatile) == 2 {
		b.MetaCols, b.MetaRows = s.BatchMetatile[0], s.BatchMetatile[1]
	}
	return b
}

// Plan is the job's batches: Plan of the bbox, or PlanCoverage of an
// area's coverage. A spec whose coverage cannot be computed has none; a
// spec made by NewAreaSpec always has one.
func (s Spec) Plan() []Batch {
	if len(s.ROI) == 0 {
		return Plan(s.BBox, s.Zoom, s.Batching())
	}
	c, err := s.Coverage()
	if err != nil {
		return nil
	}
	return PlanCoverage(c, s.Batching())
}

// Ranges is the tile ranges batch b of s renders, coarsest first.
func (s Spec) Ranges(b Batch) []grid.TileRange {
	if len(s.ROI) == 0 {
		return b.Ranges(s.BBox, s.Zoom)
	}
	c, err := s.Coverage()
	if err != nil {
		return nil
	}
	return b.CoverageRanges(c)
}

// Coverage is the tiles s exports at every zoom: the pyramid of the bbox,
// or the area's tiles within the layer's footprint (area.Cover). For an
// area it fails with an *area.Error when a feature does not meet the
// footprint, which NewAreaSpec refuses.
func (s Spec) Coverage() (grid.Coverage, error) {
	if len(s.ROI) == 0 {
		return grid.PyramidCoverage(s.BBox, s.Zoom), nil
	}
	fp, err := s.Layer.AreaFootprint()
	if err != nil {
		return grid.Coverage{}, err
	}
	return area.Cover(s.ROI, fp)
}

// PartKey is the storage key of one batch's part package.
func PartKey(jobID string, batch int) string {
	return fmt.Sprintf("%s%05d.gpkg", PartsPrefix(jobID), batch)
}

// PartsPrefix is the storage prefix of a job's part packages.
func PartsPrefix(jobID string) string { return PartsRoot + jobID + "/" }

// PartsRoot is the storage prefix of every job's part packages.
const PartsRoot = "parts/"

// TileSizes are the average encoded tile sizes used for estimates.
type TileSizes struct{ PNG, JPEG int64 }

// ZoomTiles is the tile count of one zoom, as estimates and the metadata
// JSON beside every package report it.
type ZoomTiles struct {
	Zoom  int   `json:"zoom"`
	Tiles int64 `json:"tiles"`
}

// For is the average tile of layer's format (mixed counts the mean of
// both).
func (avg TileSizes) For(layer catalog.Layer) int64 {
	switch layer.TileFormat {
	case "png":
		return avg.PNG
	case "jpeg":
		return avg.JPEG
	}
	return (avg.PNG + avg.JPEG) / 2
}

// Estimate is the expected size of the package of s by sizes, and its
// tiles at each zoom.
func (s Spec) Estimate(sizes Sizes) (int64, []ZoomTiles, error) {
	c, err := s.Coverage()
	if err != nil {
		return 0, nil, err
	}
	byZoom := TilesByZoom(c)
	return sizes.Estimate(s.Layer, byZoom), byZoom, nil
}

// NewSpec describes the export of layer over the sanitised extent at z.
func NewSpec(layer catalog.Layer, z grid.Zoom, extent grid.BBox, priority int) Spec {
	return Spec{
		Layer: layer, Zoom: z, CRS: CRS, BBox: extent, Priority: priority,
		PackageName: PackageName(layer, z, extent),
		TilesTotal:  grid.CountTiles(grid.Pyramid(extent, z)),
		PlanScheme:  PlanAligned,
	}
}

// NewAreaSpec describes the export of layer over the features of an
// /export's area: the tiles area.Cover gives within the layer's footprint.
// It fails with an *area.Error naming a feature that does not meet the
// footprint, and with an *area.TooManyTilesError, without covering the
// rest, when the tiles are more than maxTiles.
func NewAreaSpec(layer catalog.Layer, features []area.Feature, priority int, description string, cutline bool, maxTiles int64) (Spec, error) {
	fp, err := layer.AreaFootprint()
	if err != nil {
		return Spec{}, err
	}
	c, err := area.CoverAtMost(features, fp, maxTiles)
	if err != nil {
		return Spec{}, err
	}
	z := c.MaxZoom()
	if z < 0 {
		return Spec{}, &area.Error{Feature: -1, Field: "features", Reason: "the collection has no features"}
	}
	extent := c.Level(z).Bounds().Bounds()
	return Spec{
		Layer: layer, Zoom: z, CRS: CRS, BBox: extent, Priority: priority,
		PackageName: PackageName(layer, z, extent),
		TilesTotal:  c.Count(),
		PlanScheme:  PlanAligned,
		ROI:         features, Description: description, Cutline: cutline,
	}, nil
}

// CacheKey is the naive-cache identity of s: catalog record and version,
// crs, and the exact tiles at every zoom (and the cutline), whatever
// geometry asked for them. Tiles that form the pyramid of a bbox, as every
// /create export does, keep the key /create always had (zoom and
// sanitised bbox), so packages cached before areas existed are still
// found, and an /export of a rectangle shares them; any other set of tiles
// is keyed by a digest of its coverage (grid.Coverage.AppendBinary).
func (s Spec) CacheKey() string {
	if len(s.ROI) == 0 && !s.Cutline {
		return s.bboxKey(s.Zoom, s.BBox)
	}
	c, err := s.Coverage()
	if err != nil {
		// Never for a spec NewAreaSpec made; a key no coverage can have.
		roi, _ := json.Marshal(s.ROI)
		return s.digest(fmt.Appendf(nil, "invalid|%s|%t", roi, s.Cutline))
	}
	if extent, z, ok := c.Pyramid(); ok && !s.Cutline {
		return s.bboxKey(z, extent)
	}
	b := fmt.Appendf(nil, "coverage/1|%t|", s.Cutline)
	b, _ = c.AppendBinary(b)
	return s.digest(b)
}

// bboxKey is the key of a /create export's tiles.
func (s Spec) bboxKey(z grid.Zoom, extent grid.BBox) string {
	sum := sha256.Sum256([]byte(s.Layer.ID + "|" + s.Layer.Version + "|" + strconv.Itoa(int(z)) + "|" + s.CRS + "|" + extent.String() + s.overviewsKey()))
	return hex.EncodeToString(sum[:])
}

// overviewsKey is what the cache key adds for a layer that builds its
// overviews: their pixels differ from the source's, so a layer switched to
// downsample (or to another resampling) never shares packages made
// before. Empty when the layer asks its source, so keys of such layers
// are as they always were.
func (s Spec) overviewsKey() string {
	if !s.Layer.Downsample() {
		return ""
	}
	return "|overviews=downsample/" + cmp.Or(s.Layer.OverviewResampling, catalog.ResampleAverage)
}

// digest is the key of any other set of tiles, described by tiles.
func (s Spec) digest(tiles []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|", s.Layer.ID, s.Layer.Version, s.CRS)
	h.Write(tiles)
	h.Write([]byte(s.overviewsKey()))
	return hex.EncodeToString(h.Sum(nil))
}

// PackageName names the package file of an export, without extension: product
// type, product id, version, zoom and sanitised bbox, safe as a file name.
func PackageName(layer catalog.Layer, z grid.Zoom, extent grid.BBox) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	name := layer.ProductType + "_" + layer.ProductID + "_" + layer.Version + "_z" + strconv.Itoa(int(z)) + "_" +
		f(extent.MinX) + "_" + f(extent.MinY) + "_" + f(extent.MaxX) + "_" + f(extent.MaxY)
	return safeName(name)
}

// safeName replaces each run of bytes other than A-Z, a-z, 0-9, '.', '_'
// and '-' in name with one '-'. (Every byte of a multi-byte UTF-8
// character is outside that set, so a run of such characters becomes one
// '-' too.)
func safeName(name string) string {
	b := make([]byte, 0, len(name))
	inRun := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
			b = append(b, c)
			inRun = false
		} else if !inRun {
			b = append(b, '-')
			inRun = true
		}
	}
	return string(b)
}

// PackageKey is the storage key of a job's finished package. It lies under
// the job's own prefix (PackagePrefix): package names are derived from the
// request, so a later job of the same export has the same name, and only
// the job id keeps its file apart from an earlier job's, which the
// scheduler deletes when that job expires.
func PackageKey(jobID, packageName string) string {
	return PackageFileKey(jobID, packageName+".gpkg")
}

// PackageFileKey is the storage key of the package file named file (with
// its extension) of job jobID, as its download link names it. An empty
// jobID names a package stored before packages had per-job keys, which
// lies directly under PackagesPrefix.
func PackageFileKey(jobID, file string) string {
	if jobID == "" {
		return PackagesPrefix + file
	}
	return PackagePrefix(jobID) + file
}

// MetadataFileKey is the storage key of the metadata JSON published
// beside the package stored at packageKey: <packageName>.json in the same
// folder, so its link is the package's with another extension, and the
// scheduler deletes it with the package.
func MetadataFileKey(packageKey string) string {
	return strings.TrimSuffix(packageKey, ".gpkg") + ".json"
}

// KeyJobID returns the job whose file key is, for a key below root
// (PartsRoot or PackagesPrefix) and a job's own prefix there. ok is false
// for a key directly below root, such as a package stored before
// packages had per-job keys, which belongs to no job.
func KeyJobID(root, key string) (id string, ok bool) {
	rest, found := strings.CutPrefix(key, root)
	if !found {
		return "", false
	}
	id, _, ok = strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	return id, true
}

// PackagePrefix is the storage prefix of the files a job publishes.
func PackagePrefix(jobID string) string { return PackagesPrefix + jobID + "/" }

// PackagesPrefix is the storage prefix of every published package. Keys
// below it map one to one onto download paths (DownloadURI).
const PackagesPrefix = "packages/"

// Job is a job record as stored.
type Job struct {
	ID      string   `json:"id"`
	Spec    Spec     `json:"spec"`
	TaskIDs []string `json:"task_ids"`
	Status  Status   `json:"status"`
	// Owner is the subject that created the job.
	Owner string `json:"owner,omitempty"`
	// Reason says why a job failed or was cancelled.
	Reason      string `json:"reason,omitempty"`
	TilesDone   int64  `json:"tiles_done"`
	FileKey     string `json:"file_key,omitempty"`
	FileSize    int64  `json:"file_size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	TilesStored int64  `json:"tiles_stored,omitempty"`
	// MetadataSize is the size of the metadata JSON beside the package.
	MetadataSize int64     `json:"metadata_size,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	CompletedAt  time.Time `json:"completed_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	// RateSince and RateBase are the start of the window the rate of the
	// job's ETA is measured over, and the tiles done then (Store.SetProgress
	// moves it). Zero before any progress.
	RateSince time.Time `json:"rate_since,omitzero"`
	RateBase  int64     `json:"rate_base,omitempty"`
}

// Percentage is the job's progress, 0..100. It reaches 100 only once the
// package is stored.
func (j Job) Percentage() int {
	switch {
	case j.Status == StatusCompleted:
		return 100
	case j.Spec.TilesTotal <= 0:
		return 0
	}
	return int(min(99, j.TilesDone*100/j.Spec.TilesTotal))
}

// TaskIDs derives the render task ids of a job: stable, so a retried
// enqueue cannot add a second task.
func TaskIDs(jobID string, batches int) []string {
	ns := uuid.MustParse(jobID)
	ids := make([]string, batches)
	for i := range ids {
		ids[i] = uuid.NewSHA1(ns, []byte("render/"+strconv.Itoa(i))).String()
	}
	return ids
}

// FinalizeTaskID derives the task id of a job's merge, so that every batch
// that finds the job complete enqueues the same one.
func FinalizeTaskID(jobID string) string {
	return uuid.NewSHA1(uuid.MustParse(jobID), []byte("finalize")).String()
}

// MergeTaskID derives the task id of the merge a job's stored batch
// queues, so that a re-run of the batch queues no second one.
func MergeTaskID(jobID string, batch int) string {
	return uuid.NewSHA1(uuid.MustParse(jobID), []byte("merge/"+strconv.Itoa(batch))).String()
}

// CallbackTaskID derives the task id of one callback delivery of a job's
// ending, so a re-run ending enqueues each delivery once.
func CallbackTaskID(jobID string, status Status, cb Callback) string {
	ns := uuid.MustParse(jobID)
	name := fmt.Appendf(nil, "callback/%s/%s/%v", status, cb.URL, cb.BBox)
	if len(cb.ROI) > 0 {
		// Two /export callers of one URL asked for different areas.
		sum := sha256.Sum256(cb.ROI)
		name = fmt.Appendf(name, "/roi/%x", sum)
	}
	return uuid.NewSHA1(ns, name).String()
}
