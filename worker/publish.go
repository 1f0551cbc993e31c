package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/storage"
)

// publisher is the step that ends a successful export, after render (a
// one-batch job) or finalize: it records the metadata and digest in the
// package, stores it under the job's key, completes the job and queues
// its callbacks. It calls no other step.
type publisher struct {
	jobs     Jobs
	files    Files
	enqueuer Enqueuer
	log      *slog.Logger
	metrics  *metrics
	// ttl is how long a finished package is kept.
	ttl time.Duration
}

// published says how long the steps of a publish took: the metadata
// (with the content digest) and the rest (file digest, upload, complete).
type published struct{ metadata, store time.Duration }

// publish writes the metadata into the finished one-batch package at
// path, which holds tiles tiles, stores it and completes the job. The
// content digest is read from the package: one batch is small. A job
// cancelled meanwhile keeps no package. Idempotent: the key is the job's,
// and only an In-Progress job is completed.
func (p *publisher) publish(ctx context.Context, j job.Job, path string, tiles int64) (published, error) {
	start := time.Now()
	table := tableName(j.Spec.Layer.ProductID)
	digest, err := gpkg.ContentDigest(ctx, path, table)
	if err != nil {
		return published{}, fmt.Errorf("digest package: %w", err)
	}
	doc, err := metadataDocument(j, tiles, digest)
	if err != nil {
		return published{}, err
	}
	if err := gpkg.WriteMetadata(ctx, path, gpkg.Metadata{Document: doc}); err != nil {
		return published{}, fmt.Errorf("write metadata: %w", err)
	}
	byZoom, err := countByZoom(ctx, path, table)
	if err != nil {
		return published{}, err
	}
	described := time.Now()
	err = p.store(ctx, j, path, tiles, byZoom)
	return published{metadata: described.Sub(start), store: time.Since(described)}, err
}

// store stores the finished package at path, which holds byZoom tiles,
// and the metadata JSON beside it, and completes the job. The package's
// sha256 is taken while it is uploaded; a local store links the file into
// place instead, and it is read once for the digest.
func (p *publisher) store(ctx context.Context, j job.Job, path string, tiles int64, byZoom map[grid.Zoom]gpkg.ZoomSize) error {
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	sum, size, err := p.upload(ctx, key, path)
	if err != nil {
		return fmt.Errorf("store package %s: %w", key, err)
	}
	// After the package, whose digest it holds; adopt writes it if a crash
	// came between the two.
	mdSize, err := p.storeMetadataFile(ctx, j, path, key, sum, size, byZoom)
	if err != nil {
		return err
	}
	return p.complete(ctx, j, job.Result{FileKey: key, FileSize: size, SHA256: sum, TilesStored: tiles, MetadataSize: mdSize, Zooms: zoomBytes(byZoom)})
}

// upload stores the file at path under key and returns its sha256 and
// size.
func (p *publisher) upload(ctx context.Context, key, path string) (string, int64, error) {
	if _, local := p.files.(localFiles); local {
		// The store links the file and syncs it; reading it for the
		// digest meanwhile overlaps the two.
		type digest struct {
			sum  string
			size int64
			err  error
		}
		done := make(chan digest, 1)
		go func() {
			sum, size, err := fileDigest(path)
			done <- digest{sum, size, err}
		}()
		err := p.files.PutFile(ctx, key, path, ContentTypeGeoPackage)
		d := <-done
		if err != nil {
			return "", 0, err
		}
		return d.sum, d.size, d.err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	h := &hashingReader{r: f, h: sha256.New()}
	if err := p.files.Put(ctx, key, h, fi.Size(), ContentTypeGeoPackage); err != nil {
		return "", 0, err
	}
	if h.n != fi.Size() {
		return "", 0, fmt.Errorf("digest package: %d of %d bytes read", h.n, fi.Size())
	}
	return hex.EncodeToString(h.h.Sum(nil)), h.n, nil
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (r *hashingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.h.Write(b[:n])
	r.n += int64(n)
	return n, err
}

// adopt completes an In-Progress job whose package an earlier run stored
// without the job being marked Completed: a worker died between the two
// steps, or a Redis failover lost the Completed write (replication is
// asynchronous) after the parts had been deleted. The stored package is
// whole (objects appear whole), so its digest, size and tiles are read
// from it, into dir, and the job completes as the earlier run would have.
// adopted is false when no package is stored.
func (p *publisher) adopt(ctx context.Context, j job.Job, dir string) (adopted bool, err error) {
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	var mdSize int64
	for info, err := range p.files.List(ctx, job.PackagePrefix(j.ID)) {
		if err != nil {
			return false, fmt.Errorf("look for stored package: %w", err)
		}
		adopted = adopted || info.Key == key
		if info.Key == job.MetadataFileKey(key) {
			mdSize = info.Size
		}
	}
	if !adopted {
		return false, nil
	}
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	if err := p.files.GetFile(ctx, key, path); errors.Is(err, storage.ErrNotFound) {
		return false, nil // deleted meanwhile
	} else if err != nil {
		return false, fmt.Errorf("fetch stored package %s: %w", key, err)
	}
	sum, size, err := fileDigest(path)
	if err != nil {
		return false, err
	}
	byZoom, err := countByZoom(ctx, path, tableName(j.Spec.Layer.ProductID))
	if err != nil {
		return false, err
	}
	var tiles int64
	for _, n := range byZoom {
		tiles += n.Tiles
	}
	if mdSize == 0 {
		// Stored before its metadata JSON, which a crash then kept away.
		if mdSize, err = p.storeMetadataFile(ctx, j, path, key, sum, size, byZoom); err != nil {
			return false, err
		}
	}
	p.log.WarnContext(ctx, "stored package adopted: the job was not marked Completed when it was stored",
		logattr.JobID, j.ID, logattr.PackageID, j.Spec.PackageName, logattr.Tiles, tiles)
	return true, p.complete(ctx, j, job.Result{FileKey: key, FileSize: size, SHA256: sum, TilesStored: tiles, MetadataSize: mdSize, Zooms: zoomBytes(byZoom)})
}

// countByZoom reads the tiles and tile bytes of a package's table at each zoom.
func countByZoom(ctx context.Context, path, table string) (map[grid.Zoom]gpkg.ZoomSize, error) {
	r, err := gpkg.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	defer r.Close()
	n, err := r.SizeByZoom(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("count tiles of package: %w", err)
	}
	return n, nil
}

// zoomBytes lists byZoom by zoom, for the layer's learned sizes.
func zoomBytes(byZoom map[grid.Zoom]gpkg.ZoomSize) []job.ZoomBytes {
	out := make([]job.ZoomBytes, 0, len(byZoom))
	for z, n := range byZoom {
		out = append(out, job.ZoomBytes{Zoom: int(z), Tiles: n.Tiles, Bytes: n.Bytes})
	}
	slices.SortFunc(out, func(a, b job.ZoomBytes) int { return a.Zoom - b.Zoom })
	return out
}

// complete marks the job Completed with its stored package and queues its
// callbacks; a job cancelled meanwhile has the package deleted instead.
func (p *publisher) complete(ctx context.Context, j job.Job, r job.Result) error {
	key, tiles, size := r.FileKey, r.TilesStored, r.FileSize
	j, changed, err := p.jobs.Complete(ctx, j.ID, r, p.ttl)
	if err != nil {
		return err
	}
	if changed {
		p.metrics.jobsFinished.WithLabelValues(string(job.StatusCompleted)).Inc()
		p.metrics.exportDuration.WithLabelValues(p.enqueuer.Queue(j)).Observe(j.CompletedAt.Sub(j.CreatedAt).Seconds())
		p.log.InfoContext(ctx, "export completed", logattr.JobID, j.ID, logattr.PackageID, j.Spec.PackageName, logattr.Tiles, tiles, "bytes", size)
	}
	if j.Status != job.StatusCompleted {
		// Cancelled while the package was stored: it is nobody's.
		if err := errors.Join(p.files.Delete(ctx, key), p.files.Delete(ctx, job.MetadataFileKey(key))); err != nil {
			return fmt.Errorf("delete package of cancelled job %s: %w", j.ID, err)
		}
		return nil
	}
	return p.enqueuer.Callbacks(ctx, j)
}

// metadata is the JSON document stored in every package.
type metadata struct {
	JobID string          `json:"jobId"`
	Layer json.RawMessage `json:"layer"`
	BBox  []float64       `json:"bbox"`
	CRS   string          `json:"crs"`
	Zooms [2]int          `json:"zooms"`
	Tiles int64           `json:"tiles"`
	// ContentSHA256 is the content digest (gpkg.ContentDigest), computed
	// by ContentDigestAlgorithm. Packages without the algorithm carry an
	// earlier digest: see docs/architecture.md.
	ContentSHA256          string `json:"contentSha256"`
	ContentDigestAlgorithm string `json:"contentDigestAlgorithm"`
	CreatedAt              string `json:"createdAt"`
	Generator              string `json:"generator"`
}

// metadataDocument is the metadata recorded inside the package: the
// request, layer, zooms, tile count and content digest.
func metadataDocument(j job.Job, tiles int64, digest string) ([]byte, error) {
	layer, err := json.Marshal(j.Spec.Layer)
	if err != nil {
		return nil, fmt.Errorf("encode layer: %w", err)
	}
	md, err := json.Marshal(metadata{
		JobID: j.ID, Layer: layer, BBox: j.Spec.BBox.Slice(), CRS: j.Spec.CRS, Zooms: [2]int{0, int(j.Spec.Zoom)},
		Tiles: tiles, ContentSHA256: digest, ContentDigestAlgorithm: gpkg.ContentDigestAlgorithm, CreatedAt: j.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), Generator: "exporter",
	})
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return md, nil
}

// metadataFile is the metadata JSON stored beside every package
// (<packageName>.json): what was exported, from what, and how to check
// the package.
type metadataFile struct {
	JobID       string          `json:"jobId"`
	PackageName string          `json:"packageName"`
	Layer       catalog.Layer   `json:"layer"`
	Request     metadataRequest `json:"request"`
	CRS         string          `json:"crs"`
	BBox        []float64       `json:"bbox"`
	MinZoom     int             `json:"minZoom"`
	MaxZoom     int             `json:"maxZoom"`
	// TilesByZoom are the tiles stored at each zoom (tiles without
	// source data are not stored), and Tiles their sum.
	TilesByZoom []job.ZoomTiles `json:"tilesByZoom"`
	Tiles       int64           `json:"tiles"`
	SHA256      string          `json:"sha256"`
	Size        int64           `json:"size"`
	CreatedAt   string          `json:"createdAt"`
	Generator   string          `json:"generator"`
}

// metadataRequest is what the export was asked for: a /create bbox and
// target resolution, or an /export area (each feature with its
// resolution range), and the description.
type metadataRequest struct {
	BBox             []float64       `json:"bbox,omitempty"`
	TargetResolution float64         `json:"targetResolution,omitempty"`
	ROI              json.RawMessage `json:"roi,omitempty"`
	Description      string          `json:"description,omitempty"`
	Cutline          bool            `json:"cutline,omitempty"`
}

// storeMetadataFile writes the metadata JSON of the finished package at
// path (whose sha256, size and tiles by zoom are given) beside it, stores
// it beside the package under packageKey, and returns its size.
func (p *publisher) storeMetadataFile(ctx context.Context, j job.Job, path, packageKey, sum string, size int64, byZoom map[grid.Zoom]gpkg.ZoomSize) (int64, error) {
	var err error
	md := metadataFile{
		JobID: j.ID, PackageName: j.Spec.PackageName, Layer: j.Spec.Layer, CRS: j.Spec.CRS, BBox: j.Spec.BBox.Slice(),
		MinZoom: -1, MaxZoom: int(j.Spec.Zoom), SHA256: sum, Size: size,
		CreatedAt: j.CreatedAt.Format(time.RFC3339), Generator: "exporter",
		Request: metadataRequest{Description: j.Spec.Description, Cutline: j.Spec.Cutline},
	}
	if len(j.Spec.ROI) == 0 {
		md.Request.BBox, md.Request.TargetResolution = j.Spec.BBox.Slice(), j.Spec.Zoom.Resolution()
	} else if md.Request.ROI, err = area.Encode(j.Spec.ROI); err != nil {
		return 0, fmt.Errorf("encode area: %w", err)
	}
	for z := grid.Zoom(0); z <= j.Spec.Zoom; z++ {
		if n := byZoom[z].Tiles; n > 0 {
			md.TilesByZoom = append(md.TilesByZoom, job.ZoomTiles{Zoom: int(z), Tiles: n})
			md.Tiles += n
			if md.MinZoom < 0 {
				md.MinZoom = int(z)
			}
		}
	}
	md.MinZoom = max(md.MinZoom, 0)
	doc, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("encode metadata file: %w", err)
	}
	local := strings.TrimSuffix(path, ".gpkg") + ".json"
	if err := os.WriteFile(local, doc, 0o600); err != nil {
		return 0, fmt.Errorf("write metadata file: %w", err)
	}
	key := job.MetadataFileKey(packageKey)
	if err := p.files.PutFile(ctx, key, local, ContentTypeJSON); err != nil {
		return 0, fmt.Errorf("store metadata file %s: %w", key, err)
	}
	return int64(len(doc)), nil
}

// fileDigest returns the sha256 and size of a file.
func fileDigest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("digest package: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("digest package: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
