package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/filelock"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/tempdir"
)

// A render or finalize task builds its files in a temporary directory of
// its own under Config.TempDir, named render-<digits> or finalize-<digits>,
// and a GeoPackage layer's source downloads its file into source-<digits>
// (internal/tempdir). The directory holds a lock file, .owner.lock, that
// its process keeps locked (flock) with its pid in it for as long as
// the directory exists, so a process that dies, however it dies, leaves
// its directories unlocked. A worker's sweep (when it starts and every
// SweepInterval) removes every such directory whose lock it can take:
// nobody alive owns it. Directories of
// versions before the lock file are removed once they are a day old and
// hold nothing but GeoPackage files. The directories of packages being
// assembled (merge-<job id>, see assemblyDir) are removed once no process
// holds them and their job has ended, or nothing in them changed for a day.
const (
	tempLockName = tempdir.LockName
	// legacyTempAge is how old a task directory without a lock file must
	// be before a sweep removes it: no task runs that long.
	legacyTempAge = 24 * time.Hour
	// unownedLockAge is how old a lock file without a pid must be before a
	// sweep that can take its lock removes the directory: younger, its
	// owner may be between creating the file and locking it.
	unownedLockAge = time.Minute
)

// taskDirPrefixes are the name prefixes of task directories: the render
// and finalize tasks', and the layer GeoPackages a source downloads
// (source-<digits>, see source.GeoPackage).
var taskDirPrefixes = []string{"render-", "finalize-", "source-"}

// sweepTempDirs removes the task directories under parent (the system's
// temp directory when empty) that no live process owns, and the packages
// being assembled that no process holds and that ended (nil: none has)
// reports done with or that nothing touched for a day, and returns them.
// Other entries are left alone. Errors are joined; the sweep goes on past
// them.
func sweepTempDirs(parent string, now time.Time, ended func(jobID string) bool) ([]string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("sweep temp dirs: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		assembly := isAssemblyDirName(e.Name())
		if !e.IsDir() || !isTaskDirName(e.Name()) && !assembly {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		ownerless, lock, err := unowned(dir, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// A package being assembled outlives the tasks that write it: it
		// is removed once its job has ended (finalize ran on another
		// machine, or the job was cancelled or failed), or when untouched
		// for a day.
		if ownerless && assembly && !staleAssembly(dir, now) &&
			(ended == nil || !ended(strings.TrimPrefix(e.Name(), assemblyDirPrefix))) {
			ownerless = false
			if lock != nil {
				lock.Close()
			}
		}
		if !ownerless {
			continue
		}
		// Held while removing, so that no other sweep takes it meanwhile.
		err = os.RemoveAll(dir)
		if lock != nil {
			lock.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep temp dirs: %w", err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// isTaskDirName reports whether name is a prefix of taskDirPrefixes and
// the digits os.MkdirTemp adds.
func isTaskDirName(name string) bool {
	for _, p := range taskDirPrefixes {
		rest, ok := strings.CutPrefix(name, p)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

// unowned reports whether no live process owns the task directory dir. If
// so and dir has a lock file, the lock is returned held.
func unowned(dir string, now time.Time) (bool, *filelock.Lock, error) {
	path := filepath.Join(dir, tempLockName)
	lock, err := filelock.TryLockExisting(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No lock file: a directory of an older version, or one whose
		// owner has not yet created it, or removed just now.
		ok, err := legacyDone(dir, now)
		return ok, nil, err
	case errors.Is(err, filelock.ErrLocked), errors.Is(err, filelock.ErrUnsupported):
		return false, nil, nil
	case err != nil:
		return false, nil, fmt.Errorf("sweep temp dirs: %w", err)
	}
	if filelock.Owner(path) == 0 {
		// The owner creates the file, then locks it and writes its pid.
		fi, err := os.Stat(path)
		if err != nil || now.Sub(fi.ModTime()) < unownedLockAge {
			lock.Close()
			return false, nil, nil
		}
	}
	return true, lock, nil
}

// legacyDone reports whether dir, a task directory without a lock file,
// is older than legacyTempAge and holds only GeoPackage files, as task
// directories of versions before the lock file do.
func legacyDone(dir string, now time.Time) (bool, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sweep temp dirs: %w", err)
	}
	if now.Sub(fi.ModTime()) < legacyTempAge {
		return false, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("sweep temp dirs: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || now.Sub(info.ModTime()) < legacyTempAge || !isGeoPackageFile(e.Name()) {
			return false, nil
		}
	}
	return true, nil
}

func isGeoPackageFile(name string) bool {
	for _, ext := range []string{".gpkg", ".gpkg-journal", ".gpkg-wal", ".gpkg-shm"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// sweep removes the task directories of dead processes under TempDir, and
// the packages assembled here for jobs that have ended; a failure is
// logged and does not stop the worker.
func (w *Worker) sweep(ctx context.Context) {
	removed, err := sweepTempDirs(w.cfg.TempDir, time.Now(), func(id string) bool { return w.jobEnded(ctx, id) })
	if len(removed) > 0 {
		w.log.InfoContext(ctx, "removed temp dirs no process needs", "count", len(removed), "dirs", removed)
	}
	if err != nil {
		w.log.WarnContext(ctx, "sweep temp dirs", logattr.Error, err)
	}
}

// jobEnded reports whether job id is known to be over: its record is gone
// or it is no longer In-Progress. A job store that cannot be read keeps
// the package.
func (w *Worker) jobEnded(ctx context.Context, id string) bool {
	st, err := w.deps.Jobs.Status(ctx, id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		return true
	case err != nil:
		return false
	}
	return st != job.StatusInProgress
}

// every calls fn every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
