package job_test

import (
	"math"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/job"
)

func TestETA(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	running := func(total, base, done int64) job.Job {
		j := job.Job{Status: job.StatusInProgress, TilesDone: done, RateSince: since, RateBase: base}
		j.Spec.TilesTotal = total
		return j
	}
	tests := []struct {
		name string
		job  job.Job
		now  time.Time
		want time.Duration
		ok   bool
	}{
		{"rate over the window", running(10_000, 1000, 3000), since.Add(10 * time.Second), 35 * time.Second, true},
		// 2000 tiles in 10s is 200 tiles/s; 7000 left.
		{"a stall lowers the rate", running(10_000, 1000, 3000), since.Add(20 * time.Second), 70 * time.Second, true},
		{"rounded to the second", running(1000, 0, 300), since.Add(3 * time.Second), 7 * time.Second, true},
		{"just meaningful", running(1000, 0, job.ETAMinTiles), since.Add(job.ETAMinElapsed), 18 * time.Second, true},
		{"too few tiles", running(10_000, 50, 50+job.ETAMinTiles-1), since.Add(time.Minute), 0, false},
		{"too soon", running(10_000, 0, 5000), since.Add(job.ETAMinElapsed - time.Millisecond), 0, false},
		{"no progress yet", job.Job{Status: job.StatusInProgress, Spec: job.Spec{TilesTotal: 100}}, since, 0, false},
		{"every tile rendered, merging", running(5000, 0, 5000), since.Add(time.Minute), 0, false},
		{"completed", func() job.Job { j := running(5000, 0, 5000); j.Status = job.StatusCompleted; return j }(), since.Add(time.Minute), 0, false},
		{"cancelled", func() job.Job { j := running(5000, 0, 2000); j.Status = job.StatusCancelled; return j }(), since.Add(time.Minute), 0, false},
		// left * elapsed in nanoseconds is past int64 here.
		{"large export", running(5_000_100, 0, 100), since.Add(time.Hour), 50_000 * time.Hour, true},
		{"beyond a Duration", running(1<<62, 0, 100), since.Add(time.Hour), time.Duration(math.MaxInt64).Truncate(time.Second), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tc.job.ETA(tc.now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ETA(%v) = %v, %v, want %v, %v", tc.now.Sub(since), got, ok, tc.want, tc.ok)
			}
		})
	}
}
