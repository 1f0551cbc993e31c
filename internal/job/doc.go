// Package job is where the trigger, the worker and the scheduler meet: the
// export request and job records, their statuses, the naive-cache key, the
// Redis job store, and the asynq task type names and payloads. The store
// marks errors of a Redis that cannot serve right now (unreachable, a
// failover in progress) with ErrUnavailable, which the roles treat as
// transient.
//
// It imports internal/grid and internal/catalog only.
package job
