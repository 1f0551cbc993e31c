package job

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Delivery is the latest outcome of one callback of a job.
type Delivery struct {
	Callback Callback `json:"callback"`
	// Outcome is delivered, retrying or failed.
	Outcome string `json:"outcome"`
	// Code is the HTTP status answered, 0 when none was.
	Code int `json:"code,omitempty"`
	// Error says why a delivery did not succeed.
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered"
	DeliveryRetrying  = "retrying"
	DeliveryFailed    = "failed"
)

// RecordDelivery stores the outcome of a callback attempt on the job,
// replacing the previous one of the same callback.
func (s *Store) RecordDelivery(ctx context.Context, jobID string, d Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	field := CallbackTaskID(jobID, "", d.Callback)
	if err := s.rdb.HSet(ctx, s.deliveriesKey(jobID), field, b).Err(); err != nil {
		return fmt.Errorf("record delivery of job %s: %w", jobID, Unavailable(err))
	}
	return nil
}

// Deliveries returns the recorded callback outcomes of a job.
func (s *Store) Deliveries(ctx context.Context, jobID string) ([]Delivery, error) {
	m, err := s.rdb.HGetAll(ctx, s.deliveriesKey(jobID)).Result()
	if err != nil {
		return nil, fmt.Errorf("get deliveries of job %s: %w", jobID, Unavailable(err))
	}
	return decodeDeliveries(jobID, m)
}

func (s *Store) deliveriesKey(jobID string) string { return s.jobKey(jobID) + ":deliveries" }

// decodeDeliveries decodes the deliveries hash m of a job, ordered by
// callback URL.
func decodeDeliveries(jobID string, m map[string]string) ([]Delivery, error) {
	out := make([]Delivery, 0, len(m))
	for _, v := range m {
		var d Delivery
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			return nil, fmt.Errorf("decode delivery of job %s: %w", jobID, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Delivery) int { return strings.Compare(a.Callback.URL, b.Callback.URL) })
	return out, nil
}
