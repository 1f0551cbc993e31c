package monitoring_test

import (
	"testing"

	"github.com/geoexport/exporter/monitoring/monitoringtest"
)

// TestDashboard checks the Grafana dashboard without running anything:
// its model, data sources and the labels its queries group by. The test
// that evaluates its queries against a real Prometheus scraping a real
// exporter is with the other end-to-end tests, in cmd/exporter.
func TestDashboard(t *testing.T) {
	t.Parallel()
	d := monitoringtest.LoadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both set", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion = %d, want >= 39 (Grafana 11)", d.SchemaVersion)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Errorf("templating has no datasource variable DS_PROMETHEUS of type prometheus")
	}
	ids := map[int]string{}
	for _, p := range monitoringtest.AllPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q datasource = %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q %s datasource = %+v, want uid ${DS_PROMETHEUS}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	for _, q := range monitoringtest.DashboardQueries(t, d) {
		if q.Expr == "" {
			t.Errorf("%s: empty expression", q.Where)
			continue
		}
		if _, err := monitoringtest.PromQL(q.Expr); err != nil {
			t.Errorf("%s: %v", q.Where, err)
		}
		if bad := monitoringtest.BadGrouping(q.Expr); len(bad) > 0 {
			t.Errorf("%s groups by %v, outside the fixed label sets %v", q.Where, bad, monitoringtest.GroupingLabels)
		}
	}
}
