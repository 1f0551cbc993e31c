// Package trigger is the HTTP API of the exporter: it decodes, validates
// and looks up export requests, creates or reuses jobs through the job
// store, enqueues their render tasks, and serves job status, layers and
// package downloads. It never renders.
//
// It imports internal/* only; it meets the worker and the scheduler in
// internal/job.
package trigger
