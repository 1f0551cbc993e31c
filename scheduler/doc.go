// Package scheduler runs the exporter's periodic maintenance: today, the
// expiry of packages past their expiration time. Each run is bounded in
// time and batch size and holds a Redis lease, so extra scheduler replicas
// wait instead of running twice.
//
// It imports internal/* only; it meets the trigger and the worker in
// internal/job.
package scheduler
