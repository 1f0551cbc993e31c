package job

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Overview is the state of the whole service that the store keeps: what
// one process reports as gauges on behalf of every replica, since each
// replica sees only the tasks it ran.
type Overview struct {
	// Running is the number of In-Progress jobs.
	Running int64
	// Stored and Reserved are the quota's counts (Usage): bytes of stored
	// packages, and estimates of unfinished jobs.
	Stored, Reserved int64
	// MaintenanceSucceeded is the last successful run of each maintenance
	// task type (MaintenanceSucceeded); a type that never succeeded is
	// absent.
	MaintenanceSucceeded map[string]time.Time
}

// Overview reads the Overview in one round trip.
func (s *Store) Overview(ctx context.Context) (Overview, error) {
	pipe := s.rdb.Pipeline()
	running := pipe.SCard(ctx, s.runningKey())
	usage := pipe.MGet(ctx, s.storedKey(), s.reservedKey())
	runs := pipe.HGetAll(ctx, s.maintenanceKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return Overview{}, fmt.Errorf("read overview: %w", Unavailable(err))
	}
	vals := usage.Val()
	o := Overview{Running: running.Val(), Stored: count(vals[0]), Reserved: count(vals[1]), MaintenanceSucceeded: map[string]time.Time{}}
	for typ, ms := range runs.Val() {
		if x, err := strconv.ParseInt(ms, 10, 64); err == nil {
			o.MaintenanceSucceeded[typ] = time.UnixMilli(x)
		}
	}
	return o, nil
}

// maintenanceSucceeded keeps the later of the recorded and the given time,
// so a replica's slow run that ends after a newer one cannot move it back.
// KEYS maintenance; ARGV type, ms.
var maintenanceSucceeded = redis.NewScript(`
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
`)

// MaintenanceSucceeded records that a run of the maintenance task type typ
// succeeded at at. It never moves the recorded time back.
func (s *Store) MaintenanceSucceeded(ctx context.Context, typ string, at time.Time) error {
	if err := maintenanceSucceeded.Run(ctx, s.rdb, []string{s.maintenanceKey()}, typ, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("record %s run: %w", typ, Unavailable(err))
	}
	return nil
}
