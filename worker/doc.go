// Package worker runs the asynq handlers of the exporter: export:render
// turns a job's tiles into a GeoPackage and stores it, export:callback
// tells callers a job ended. Inside a render task tiles flow through a
// pipeline: one planner, a pool of fetch-and-encode goroutines, and one
// SQLite writer, joined by bounded channels.
//
// It imports internal/*, gpkg and worker/source; it meets the trigger and
// the scheduler in internal/job.
package worker
