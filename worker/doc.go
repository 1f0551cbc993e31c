// Package worker runs the asynq handlers of the exporter: export:render
// renders one batch of a job's tiles into a part GeoPackage (a one-batch
// job straight into its package), export:finalize merges a job's parts
// into its package, records its metadata, stores it and completes the job,
// and export:callback tells callers a job ended. Inside a render task
// tiles flow through a pipeline of stages joined by bounded channels: one
// planner, fetcher goroutines, encoder goroutines, and one SQLite writer.
// A starting worker removes the temp dirs of dead processes. Every step is
// idempotent: a finalize that finds its job's package already stored (its
// Completed write lost to a crash or a Redis failover) completes the job
// with it, and a task that finds Redis unavailable (job.ErrUnavailable) is
// retried without using up an attempt.
//
// It imports internal/*, gpkg and source; it meets the trigger and
// the scheduler in internal/job.
package worker
