package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMergerKilledMidPart kills the worker with SIGKILL while it merges a
// stored part into the package (its rollback journal holds the pages the
// part's transaction changed), then starts another worker on the same
// temp dir: the package, rolled back to the parts before, is completed
// with exactly the tiles of every zoom.
func TestMergerKilledMidPart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 300, nil)
	env := map[string]string{"EXPORTER_WORKER_TEMP_DIR": t.TempDir()}
	w := c.worker(env)
	id := c.export(crashBBox, crashZoom)
	dir := filepath.Join(env["EXPORTER_WORKER_TEMP_DIR"], "merge-"+id)
	deadline := time.Now().Add(90 * time.Second)
	for killed := false; !killed; {
		journal := waitMidPart(t, dir, deadline)
		w.signal(t, syscall.SIGKILL)
		// A hot journal: the kill came before the part's commit.
		if fi, err := os.Stat(journal); err == nil && fi.Size() > 0 {
			killed = true
			t.Logf("killed mid-part after %d batches rendered, %d merge tasks", batchesBy(w), strings.Count(w.logs.String(), `"msg":"parts merged ahead"`))
		} else {
			t.Logf("the part was committed before the kill (%v); waiting for the next", err)
		}
		w = c.worker(env)
	}
	j := waitCompleted(t, c.api, id)
	c.checkPackage(j)
	// The sha256 taken while the package streamed to MinIO is the stored
	// file's.
	uri := j["result"].(map[string]any)["fileUri"].(string)
	data, err := os.ReadFile(downloadPackage(t, c.api, uri))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		SHA256 string `json:"sha256"`
	}
	getJSONFile(t, c.api, strings.TrimSuffix(uri, ".gpkg")+".json", &md)
	if sum := sha256.Sum256(data); md.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("metadata JSON sha256 %s, stored package's %x", md.SHA256, sum)
	}
	if !strings.Contains(w.logs.String(), `"msg":"parts merged"`) {
		t.Error("the second worker did not finish the package")
	}
	c.expectCallback(true)
}

// waitMidPart waits until a part's transaction has written to the rollback
// journal of the package being assembled in dir, and returns the
// journal's path.
func waitMidPart(t *testing.T, dir string, deadline time.Time) string {
	t.Helper()
	for time.Now().Before(deadline) {
		journals, _ := filepath.Glob(filepath.Join(dir, "*.gpkg-journal"))
		for _, j := range journals {
			if fi, err := os.Stat(j); err == nil && fi.Size() > 0 {
				return j
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatal("no part was merged ahead of finalize within 90s")
	return ""
}
