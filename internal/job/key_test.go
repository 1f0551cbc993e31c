package job_test

import (
	"testing"

	"github.com/geoexport/exporter/internal/job"
)

// TestStorageKeys: every key of a job lies under its own prefix below
// PartsRoot or PackagesPrefix, and KeyJobID finds the job again.
func TestStorageKeys(t *testing.T) {
	t.Parallel()
	const id = "0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71"
	for _, tc := range []struct {
		name, key, want string
	}{
		{"part", job.PartKey(id, 3), "parts/" + id + "/00003.gpkg"},
		{"package", job.PackageKey(id, "p_z3"), "packages/" + id + "/p_z3.gpkg"},
		{"package file", job.PackageFileKey(id, "p_z3.gpkg"), "packages/" + id + "/p_z3.gpkg"},
		{"legacy package file", job.PackageFileKey("", "p_z3.gpkg"), "packages/p_z3.gpkg"},
	} {
		if tc.key != tc.want {
			t.Errorf("%s key = %q, want %q", tc.name, tc.key, tc.want)
		}
	}
	for _, tc := range []struct {
		root, key, id string
		ok            bool
	}{
		{job.PartsRoot, job.PartKey(id, 0), id, true},
		{job.PackagesPrefix, job.PackageKey(id, "p"), id, true},
		{job.PackagesPrefix, job.PackageFileKey("", "legacy.gpkg"), "", false},
		{job.PartsRoot, job.PackageKey(id, "p"), "", false},
	} {
		if got, ok := job.KeyJobID(tc.root, tc.key); got != tc.id || ok != tc.ok {
			t.Errorf("KeyJobID(%q, %q) = %q, %v; want %q, %v", tc.root, tc.key, got, ok, tc.id, tc.ok)
		}
	}
}
