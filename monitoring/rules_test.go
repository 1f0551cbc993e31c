package monitoring_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/monitoring/monitoringtest"
)

// TestAlertRules runs the unit tests of the alerts (testdata/alerts_test.yml)
// with promtool: each alert written there fires on the series it is meant
// for, with its labels and annotations, and stays quiet on healthy ones.
// The test that evaluates every rule against a real Prometheus scraping a
// real exporter is in cmd/exporter.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	bin := testenv.Promtool(t)
	cmd := exec.CommandContext(t.Context(), bin, "test", "rules", "alerts_test.yml")
	cmd.Dir = filepath.Join(monitoringtest.Dir(t), "testdata")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules printed no SUCCESS:\n%s", out)
	}
}
