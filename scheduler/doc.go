// Package scheduler runs the exporter's periodic maintenance: package
// expiry, removal of orphaned parts, cleanup of ended jobs, and
// reconciliation of stuck jobs.
//
// Each task has a cron spec. At each due slot every scheduler replica
// enqueues the task (job.Enqueuer.Maintenance) with an id derived from the
// slot, so only the first enqueue wins and extra replicas never double-run
// it; the task runs on the maintenance queue, served by the scheduler
// role's own asynq server, bounded in time (the task's timeout) and in
// batch size. Reconcile queues the render and finalize tasks of stuck jobs
// through the same Enqueuer, so they get the options every other path
// gives them.
//
// The scheduler reads the job store through Jobs and queues through
// Enqueuer, small interfaces of internal/job's store and enqueue API, so
// its decisions are unit-tested over in-memory fakes beside the real-Redis
// tests.
//
// It imports internal/* only; it meets the trigger and the worker in
// internal/job.
package scheduler
