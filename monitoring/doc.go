// Package monitoring builds what every role shares for being watched: the
// slog handler, the Prometheus registry with the process, Go and build-info
// collectors, and health checks. The files beside it hold the Grafana
// dashboards and Prometheus configuration.
//
// It imports no project package.
package monitoring
