// Package job is where the trigger, the worker and the scheduler meet: the
// export request and job records, their statuses, the naive-cache key, the
// Redis job store, and the asynq task type names and payloads.
//
// It imports internal/grid and internal/catalog only.
package job
