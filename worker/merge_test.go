package worker_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/worker"
)

// TestMergeAheadOfFinalize: each stored part but the last queues a merge,
// which merges the stored parts into the package while the job renders;
// finalize then merges only the last part, and the content digest kept
// while merging is the one the stored package has.
func TestMergeAheadOfFinalize(t *testing.T) {
	t.Parallel()
	tempDir := t.TempDir()
	var logs bytes.Buffer // written by the tasks, which this goroutine runs
	w, b := setup(t, func(c *worker.Config, d *worker.Deps) {
		c.TempDir = tempDir
		d.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	j := createBatched(t, b, seedBBox, 14, 10)
	last := len(j.TaskIDs) - 1
	if last < 1 {
		t.Fatalf("job of %d batches, want several", last+1)
	}
	for i := range last {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
		info, err := b.inspector.GetTaskInfo(job.QueueMerge, job.MergeTaskID(j.ID, i))
		if err != nil || info.Type != job.TypeMerge || info.MaxRetry != 0 {
			t.Fatalf("merge after batch %d = %+v, %v; want an export:merge task without retries", i, info, err)
		}
		if err := w.Handler().ProcessTask(t.Context(), asynq.NewTask(job.TypeMerge, info.Payload)); err != nil {
			t.Fatalf("merge after batch %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(tempDir, "merge-"+j.ID, j.Spec.PackageName+".gpkg")); err != nil {
		t.Errorf("package being assembled: %v", err)
	}
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Percentage() == 100 {
		t.Errorf("job at 100%% before its package is stored")
	}
	if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, last)); err != nil {
		t.Fatal(err)
	}
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != 18 {
		t.Fatalf("job after finalize = %s, %d tiles", done.Status, done.TilesStored)
	}
	var merged struct {
		Parts       int `json:"parts"`
		MergedAhead int `json:"merged_ahead"`
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `"msg":"parts merged"`) {
			if err := json.Unmarshal([]byte(line), &merged); err != nil {
				t.Fatal(err)
			}
		}
	}
	if merged.Parts != last+1 || merged.MergedAhead != last {
		t.Errorf("finalize merged %d parts of which %d ahead, want %d and %d", merged.Parts, merged.MergedAhead, last+1, last)
	}
	r := download(t, b, done.FileKey)
	mds, err := r.Metadata(t.Context())
	if err != nil || len(mds) != 1 {
		t.Fatalf("package metadata = %+v, %v", mds, err)
	}
	var md struct {
		ContentSHA256 string `json:"contentSha256"`
		Algorithm     string `json:"contentDigestAlgorithm"`
	}
	if err := json.Unmarshal(mds[0].Document, &md); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.gpkg")
	if err := b.files.GetFile(t.Context(), done.FileKey, path); err != nil {
		t.Fatal(err)
	}
	if want, err := gpkg.ContentDigest(t.Context(), path, "demo_terrain"); err != nil || md.ContentSHA256 != want {
		t.Errorf("recorded content digest %s, package's %s (%v)", md.ContentSHA256, want, err)
	}
	if md.Algorithm != gpkg.ContentDigestAlgorithm {
		t.Errorf("recorded content digest algorithm %q, want %q", md.Algorithm, gpkg.ContentDigestAlgorithm)
	}
	if _, err := os.Stat(filepath.Join(tempDir, "merge-"+j.ID)); !os.IsNotExist(err) {
		t.Errorf("assembly directory after finalize: %v, want it removed", err)
	}
}
