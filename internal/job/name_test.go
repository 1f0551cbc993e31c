package job_test

import (
	"regexp"
	"testing"

	"github.com/geoexport/exporter/internal/job"
)

// unsafeName is the rule package names follow, as a regular expression:
// each run of other characters becomes one '-'.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"", "orthophoto_MyProduct_1.0_z14_34.8046875_31.9482421875", "a b", "a  /b", "ü", "x\xffy", "--..__", " lead", "trail "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := job.SafeName(s), unsafeName.ReplaceAllString(s, "-"); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", s, got, want)
		}
	})
}
