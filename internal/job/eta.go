package job

import (
	"math"
	"time"
)

// The window of ETA and its thresholds: below them the job's rate says too
// little to give an estimate. A worker reports progress every 256 tiles or
// every second (worker's pipeline), so two seconds hold a few reports.
const (
	// ETAMinTiles is the fewest tiles that must be done in the window.
	ETAMinTiles = 100
	// ETAMinElapsed is the shortest the window may be.
	ETAMinElapsed = 2 * time.Second
	// ETAWindow is how far back the window reaches at least, once the job
	// has run that long: the rate follows a job that slows down or speeds
	// up (tiles of open sea and of a city, merges competing for the CPU)
	// within one to two ETAWindows.
	ETAWindow = 10 * time.Second
)

// ETA estimates how long j's remaining tiles take to render, at the job's
// own recent rate: the tiles done since RateSince over the time since then
// (the window Store.SetProgress keeps). Time without progress (a stalled
// worker, tasks waiting behind other jobs) lowers the rate, so the
// estimate grows while nothing moves. The merge and upload after the last
// tile are not in it.
//
// ok is false while the estimate would mean little: the job is not
// In-Progress, has no tiles left to render, or its window holds fewer than
// ETAMinTiles tiles or spans less than ETAMinElapsed.
func (j Job) ETA(now time.Time) (eta time.Duration, ok bool) {
	left := j.Spec.TilesTotal - j.TilesDone
	done := j.TilesDone - j.RateBase
	elapsed := now.Sub(j.RateSince)
	if j.Status != StatusInProgress || j.RateSince.IsZero() || left <= 0 ||
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
