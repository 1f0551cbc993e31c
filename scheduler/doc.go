// Package scheduler runs the exporter's periodic maintenance: package
// expiry, removal of orphaned parts, cleanup of ended jobs, and
// reconciliation of stuck jobs.
//
// Each task has a cron spec. At each due slot every scheduler replica
// enqueues the task with an id derived from the slot, so only the first
// enqueue wins and extra replicas never double-run it; the task runs on
// the maintenance queue, served by the scheduler role's own asynq server,
// bounded in time (the task's timeout) and in batch size.
//
// It imports internal/* only; it meets the trigger and the worker in
// internal/job.
package scheduler
