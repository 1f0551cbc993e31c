// Package job is where the trigger, the worker and the scheduler meet: the
// export request and job records, their statuses, the naive-cache key, the
// batch planners (Plan for a bbox, PlanCoverage for an area's tiles), the
// Redis job store, and the asynq task type names and payloads.
//
// It imports internal/grid, internal/catalog and internal/area only.
package job
