package monitoring_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/geoexport/exporter/monitoring"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     monitoring.LogConfig
		want    string
		wantErr bool
	}{
		{name: "json", cfg: monitoring.LogConfig{Level: "info", Format: "json"}, want: `"msg":"hello"`},
		{name: "text", cfg: monitoring.LogConfig{Level: "info", Format: "text"}, want: "msg=hello"},
		{name: "auto off a terminal is json", cfg: monitoring.LogConfig{Level: "info", Format: "auto"}, want: `"msg":"hello"`},
		{name: "level filters", cfg: monitoring.LogConfig{Level: "error", Format: "json"}, want: ""},
		{name: "bad level", cfg: monitoring.LogConfig{Level: "loud", Format: "json"}, wantErr: true},
		{name: "bad format", cfg: monitoring.LogConfig{Level: "info", Format: "xml"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			log, err := monitoring.NewLogger(&b, tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewLogger(%+v) error = %v, want error %v", tc.cfg, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			log.Info("hello")
			if got := b.String(); tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("NewLogger(%+v) wrote %q, want %q", tc.cfg, got, tc.want)
			}
		})
	}
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	reg := monitoring.NewRegistry("v1.2.3", "worker")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "exporter_build_info" {
			labels := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["version"] != "v1.2.3" || labels["role"] != "worker" {
				t.Errorf("exporter_build_info labels = %v", labels)
			}
		}
	}
	for _, want := range []string{"exporter_build_info", "go_goroutines", "process_cpu_seconds_total"} {
		if !names[want] {
			t.Errorf("registry lacks %s", want)
		}
	}
}
