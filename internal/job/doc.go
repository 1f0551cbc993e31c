// Package job is where the trigger, the worker and the scheduler meet: the
// export request and job records, their statuses, the naive-cache key, the
// batch planners (Plan for a bbox, PlanCoverage for an area's tiles), the
// storage keys of parts and packages, the Redis job store, the asynq task
// type names and payloads, and Enqueuer, the one API that queues tasks.
// Enqueuer owns every task's id (derived, so queueing again adds
// nothing), queue, retries, timeout and retention; nothing else in the
// exporter builds or enqueues an asynq task (a forbidigo rule in
// .golangci.yml holds that).
//
// The store marks errors of a Redis that cannot serve right now
// (unreachable, a failover in progress) with ErrUnavailable, which the
// roles treat as transient.
//
// It imports internal/grid, internal/catalog and internal/area only.
package job
