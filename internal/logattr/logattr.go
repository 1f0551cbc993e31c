// Package logattr names the slog attribute keys that the trigger, the
// worker and the scheduler share, so that one job, task or request is
// found by the same key in every role's log (STYLE.md: keys are
// snake_case and spelled the same everywhere). Keys a single log line
// uses for its own measures stay literal where they are logged.
//
// It imports nothing.
package logattr

// Attribute keys.
const (
	// JobID is a job's id.
	JobID = "job_id"
	// TaskID is an asynq task's id.
	TaskID = "task_id"
	// TaskType is an asynq task's type, such as "export:render".
	TaskType = "task_type"
	// Batch is the index of a job's batch.
	Batch = "batch"
	// LayerID is a catalog layer's id (dbId).
	LayerID = "layer_id"
	// PackageID is a package's name.
	PackageID = "package_id"
	// Subject is the token subject a request was made by.
	Subject = "subject"
	// Route is the route pattern of an HTTP request.
	Route = "route"
	// Status is an HTTP status, or the status answered by a callback.
	Status = "status"
	// Outcome is how a request or step ended, from a small fixed set.
	Outcome = "outcome"
	// Reason says why a job failed or was cancelled.
	Reason = "reason"
	// Tiles is a count of tiles.
	Tiles = "tiles"
	// Error is the error a line reports.
	Error = "error"
)
