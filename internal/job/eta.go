package job

import (
	"math"
	"time"
)

// Thresholds of ETA: below them the job's rate says too little to give an
// estimate. A worker reports progress every 256 tiles or every second
// (worker's pipeline), so two seconds hold a few reports.
const (
	// ETAMinTiles is the fewest tiles that must be done since the job's
	// first progress report.
	ETAMinTiles = 100
	// ETAMinElapsed is the shortest time that must have passed since it.
	ETAMinElapsed = 2 * time.Second
)

// ETA estimates how long j's remaining tiles take to render, at the job's
// own rate since its first progress report: the tiles done since then
// over the time since then. Time without progress (a stalled worker, tasks
// waiting behind other jobs) lowers the rate, so the estimate grows while
// nothing moves. The merge and upload after the last tile are not in it.
//
// ok is false while the estimate would mean little: the job is not
// In-Progress, has no tiles left to render, or has not yet done
// ETAMinTiles tiles over ETAMinElapsed since its first report.
func (j Job) ETA(now time.Time) (eta time.Duration, ok bool) {
	left := j.Spec.TilesTotal - j.TilesDone
	done := j.TilesDone - j.ProgressBase
	elapsed := now.Sub(j.ProgressSince)
	if j.Status != StatusInProgress || j.ProgressSince.IsZero() || left <= 0 ||
		done < ETAMinTiles || elapsed < ETAMinElapsed {
		return 0, false
	}
	// left * elapsed / done, in float64: left * elapsed in int64
	// nanoseconds overflows past some 9 million tile-seconds.
	ns := float64(left) * float64(elapsed) / float64(done)
	if ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64).Truncate(time.Second), true
	}
	return time.Duration(ns).Round(time.Second), true
}
