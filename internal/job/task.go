package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hibiken/asynq"
)

// Task types, colon-namespaced so a mux can route a family by prefix.
const (
	TypeRender   = "export:render"
	TypeFinalize = "export:finalize"
	TypeMerge    = "export:merge"
	TypeCallback = "export:callback"
)

// Queue names, most urgent first.
const (
	QueueUrgent  = "export-urgent"
	QueueDefault = "export-default"
	QueueLow     = "export-low"
)

// QueueMerge is the queue of every job's merge tasks, served like the
// urgent queue: a merge is short, and one that waits behind the job's own
// render tasks would merge nothing ahead of finalize (a queue is first in,
// first out, and a job's render tasks are all queued when it is created).
// It is not in Queues: autoscaling follows the render work, which a merge
// only trails.
const QueueMerge = "export-merge"

// QueueMaintenance is the queue of the scheduler's maintenance tasks.
const QueueMaintenance = "maintenance"

// MachineQueuePrefix begins the name of each worker machine's own queue
// (MachineQueue): the finalize of a job whose parts a machine merged ahead
// goes there, so that it completes that machine's package instead of
// merging every part again elsewhere.
const MachineQueuePrefix = "export-at-"

// MachineQueue is the queue of the worker machine named machine: the
// prefix and 12 hex digits of the name's SHA-256.
func MachineQueue(machine string) string {
	sum := sha256.Sum256([]byte(machine))
	return MachineQueuePrefix + hex.EncodeToString(sum[:6])
}

// IsMachineQueue reports whether q is a machine's queue.
func IsMachineQueue(q string) bool { return strings.HasPrefix(q, MachineQueuePrefix) }

// Queues lists every queue of export tasks, most urgent first.
var Queues = []string{QueueUrgent, QueueDefault, QueueLow}

// DefaultPriority is the priority of a request that names none.
const DefaultPriority = 1000

// QueueFor maps a priority (higher is more urgent) to its queue:
// urgentFrom and up is urgent, defaultFrom and up is default, the rest low.
func QueueFor(priority, urgentFrom, defaultFrom int) string {
	switch {
	case priority >= urgentFrom:
		return QueueUrgent
	case priority >= defaultFrom:
		return QueueDefault
	}
	return QueueLow
}

// RenderPayload is the payload of an export:render task: one batch of a
// job. The exact priority travels with it.
type RenderPayload struct {
	JobID    string `json:"job_id"`
	Batch    int    `json:"batch"`
	Priority int    `json:"priority"`
}

// FinalizePayload is the payload of an export:finalize task: merge the
// parts of a job whose batches are all done.
type FinalizePayload struct {
	JobID string `json:"job_id"`
}

// MergePayload is the payload of an export:merge task: merge the parts of
// a job stored so far into its package, ahead of finalize; Batch is the
// batch whose stored part queued it.
type MergePayload struct {
	JobID string `json:"job_id"`
	Batch int    `json:"batch"`
}

// CallbackPayload is the payload of an export:callback task: one POST of a
// job's ending to one callback.
type CallbackPayload struct {
	JobID    string   `json:"job_id"`
	Callback Callback `json:"callback"`
}

// Encode marshals a payload.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return b, nil
}

// Decode unmarshals a payload. Unknown fields are ignored, so workers of
// the previous release read payloads of the next during a rolling update.
func Decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode payload: %w", err)
	}
	return nil
}

// AsynqLogger routes asynq's own log lines into l, marked as asynq's.
func AsynqLogger(l *slog.Logger) asynq.Logger { return asynqLogger{l.With("component", "asynq")} }

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...), "fatal", true) }
