// Package monitoring builds what every role shares for being watched: the
// slog handler and the Prometheus registry with the process, Go and
// build-info collectors. (Health and readiness are served by each role in
// cmd/exporter and the trigger.) The files beside it hold the Grafana
// dashboards and Prometheus configuration.
//
// It imports no project package.
package monitoring
