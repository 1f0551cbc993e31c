// Package worker runs the asynq handlers of the exporter. An export passes
// through its steps in order, each in its own file, each calling forward
// only:
//
//   - render (render.go, pipeline.go): export:render renders one batch of
//     a job's tiles. Inside the task tiles flow through a pipeline of
//     stages joined by bounded channels: one planner, fetcher goroutines,
//     encoder goroutines, and one SQLite writer; with a cutline the
//     encoders make the pixels of edge tiles outside the area transparent
//     (cutline.go). A one-batch job's package
//     goes straight to publish; a larger job's batch is stored as a part
//     (parts.go), and the batch that completes the set queues
//     export:finalize through the Enqueuer.
//   - finalize (finalize.go): export:finalize merges a job's parts into
//     its package and hands it to publish, then deletes the parts. A
//     finalize that finds the job's package already stored (its Completed
//     write lost to a crash or a Redis failover) completes the job with it.
//   - publish (publish.go): writes the metadata and digest into the
//     package, stores the metadata JSON beside it and the package under
//     the job's key, completes the job and queues its callbacks.
//   - failure (failure.go): every render and finalize task ends here; an
//     error that ends the task for good fails the job, deletes its parts
//     and queues its callbacks.
//   - callback (callback.go): export:callback tells one caller how a job
//     ended.
//
// Every handler starts in task.go: a payload that does not decode, or a
// job that no longer exists, ends the task for good.
//
// The worker reads and moves jobs through Jobs and queues tasks through
// Enqueuer, both small interfaces of internal/job's store and enqueue API,
// so the decisions of each step are unit-tested beside the real-Redis
// tests. A worker sweeps its temp dir when it starts and every
// SweepInterval, removing the task dirs of dead processes and the packages
// assembled for jobs that ended (tempdir.go). A task that finds Redis unavailable (job.ErrUnavailable)
// is retried without using up an attempt.
//
// It imports internal/*, gpkg and source; it meets the trigger and
// the scheduler in internal/job.
package worker
