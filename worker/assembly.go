package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/filelock"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// A job's package is assembled part by part in a directory of its own
// under Config.TempDir, merge-<job id>, which outlives the tasks that
// write it: the merge tasks that stored batches queue, then finalize,
// which completes it. It holds the package (a gpkg.Assembly, which
// records the parts it holds), a lock file (.owner.lock, as in task
// directories) that its one writer keeps locked (flock) while the package
// is open, and the boot id of the machine that wrote it. Two processes on
// one machine therefore never write the package at once, and a process
// that dies, however it dies, leaves it to the next. Merges ahead run on
// one machine only, the first whose merge task claims the job
// (Jobs.ClaimAssembly, assemblyMachine); merge tasks taken elsewhere leave
// their parts to it, and the job's finalize is sent to its own queue
// (job.MachineQueue) while its heartbeat lasts (MachineTTL). Finalize
// completes the package of the machine it runs on, merging there what that
// one lacks: all of it where no merge ran (a finalize moved from a dead
// machine's queue by a rescuer, or queued before any merge claimed the
// job).
//
// The package is written without fsync (synchronous=OFF), since it is
// uploaded or linked into the store, which syncs what it keeps. Its
// rollback journal survives a process killed mid-part, but not the
// machine losing power; a package from before the machine's last boot is
// therefore thrown away and its parts merged again, which they still can
// be: parts are deleted only once the package is stored.
const (
	assemblyDirPrefix = "merge-"
	bootIDName        = "boot_id"
	// assemblyPoll is how often finalize looks whether the package's lock
	// has become free.
	assemblyPoll = 50 * time.Millisecond
	// staleAssemblyAge is how long an assembly directory no process owns
	// is kept by sweeps: finalize may yet come for it.
	staleAssemblyAge = 24 * time.Hour
)

// bootIDPath is where the kernel gives the boot id; a variable for tests.
var bootIDPath = "/proc/sys/kernel/random/boot_id"

// errAssemblyBusy: another process of this machine writes the package.
var errAssemblyBusy = errors.New("package is being assembled by another process")

// assembly is a job's package being assembled on this machine, open and
// locked.
type assembly struct {
	*gpkg.Assembly
	dir, path string
	lock      *filelock.Lock // nil where flock is not supported
}

// assemblyMachine names the place where this worker assembles packages:
// the host name (a pod's, in Kubernetes), the machine's boot and the temp
// dir, so that workers sharing a temp dir on one machine share it, and
// any other worker, even on the same node, is another place.
func assemblyMachine(tempDir string) string {
	host, _ := os.Hostname()
	boot, _ := os.ReadFile(bootIDPath)
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	if abs, err := filepath.Abs(tempDir); err == nil {
		tempDir = abs
	}
	return host + "/" + string(bytes.TrimSpace(boot)) + ":" + tempDir
}

// assemblyDir is the directory of job id's package under tempDir.
func assemblyDir(tempDir, id string) string {
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	return filepath.Join(tempDir, assemblyDirPrefix+id)
}

// openAssembly locks and opens the package of j on this machine, created
// if need be. With wait it waits for the lock until ctx is done; without,
// a lock held elsewhere is errAssemblyBusy.
func openAssembly(ctx context.Context, tempDir string, j job.Job, wait bool) (*assembly, error) {
	dir := assemblyDir(tempDir, j.ID)
	lock, err := lockAssembly(ctx, dir, wait)
	if err != nil {
		return nil, err
	}
	a := &assembly{dir: dir, path: filepath.Join(dir, j.Spec.PackageName+".gpkg"), lock: lock}
	if err := a.checkBoot(); err != nil {
		a.unlock()
		return nil, err
	}
	opt := packageOptions(j.Spec)
	if a.Assembly, err = gpkg.OpenAssembly(ctx, a.path, opt); err != nil {
		a.unlock()
		return nil, fmt.Errorf("open package assembly: %w", err)
	}
	return a, nil
}

// lockAssembly creates dir if need be and takes its lock.
func lockAssembly(ctx context.Context, dir string, wait bool) (*filelock.Lock, error) {
	for {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("package assembly dir: %w", err)
		}
		lock, err := filelock.TryLock(filepath.Join(dir, tempLockName))
		switch {
		case errors.Is(err, filelock.ErrUnsupported):
			return nil, nil
		case err == nil:
			if err := lock.WriteOwner(); err != nil {
				lock.Close()
				return nil, fmt.Errorf("package assembly lock: %w", err)
			}
			return lock, nil
		case errors.Is(err, os.ErrNotExist):
			// Removed by its owner meanwhile: make it again.
		case !errors.Is(err, filelock.ErrLocked):
			return nil, fmt.Errorf("package assembly lock: %w", err)
		case !wait:
			return nil, errAssemblyBusy
		}
		t := time.NewTimer(assemblyPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// checkBoot throws the package away unless this boot of the machine wrote
// it, and records the boot.
func (a *assembly) checkBoot() error {
	boot, err := os.ReadFile(bootIDPath)
	if err != nil {
		return nil // no boot id here: rely on SQLite's own checks
	}
	recorded := filepath.Join(a.dir, bootIDName)
	if old, err := os.ReadFile(recorded); err == nil && bytes.Equal(old, boot) {
		return nil
	}
	for _, p := range []string{a.path, a.path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("package assembly of an earlier boot: %w", err)
		}
	}
	if err := os.WriteFile(recorded, boot, 0o600); err != nil {
		return fmt.Errorf("package assembly: %w", err)
	}
	return nil
}

// close closes the package, to be continued, and unlocks it.
func (a *assembly) close() error {
	err := a.Close()
	a.unlock()
	return err
}

// remove removes the package and its directory, then unlocks it.
func (a *assembly) remove() error {
	_ = a.Close()
	err := os.RemoveAll(a.dir)
	a.unlock()
	return err
}

func (a *assembly) unlock() {
	if a.lock != nil {
		a.lock.Close()
	}
}

// removeAssembly removes job id's package on this machine unless another
// process is writing it (which will find the job ended and remove it).
func removeAssembly(tempDir, id string) error {
	dir := assemblyDir(tempDir, id)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := filelock.TryLock(filepath.Join(dir, tempLockName))
	switch {
	case errors.Is(err, filelock.ErrLocked), errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil && !errors.Is(err, filelock.ErrUnsupported):
		return fmt.Errorf("remove package assembly: %w", err)
	}
	err = os.RemoveAll(dir)
	if lock != nil {
		lock.Close()
	}
	return err
}

// isAssemblyDirName reports whether name is an assembly directory's.
func isAssemblyDirName(name string) bool {
	rest, ok := strings.CutPrefix(name, assemblyDirPrefix)
	return ok && len(rest) == 36 && strings.Count(rest, "-") == 4
}

// staleAssembly reports whether nothing in the assembly directory dir
// changed for staleAssemblyAge.
func staleAssembly(dir string, now time.Time) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < staleAssemblyAge {
			return false
		}
	}
	return true
}

// mergeParts merges into a the parts of j's batches that it lacks, of
// those ok accepts, fetching each (fetchPart) into scratch. It returns
// how many it merged.
func mergeParts(ctx context.Context, files Files, a *assembly, j job.Job, scratch string, ok func(batch int) (bool, error)) (int, error) {
	merged := 0
	for i := range j.Spec.Plan() {
		if a.Merged(int64(i)) {
			continue
		}
		if want, err := ok(i); err != nil || !want {
			if err != nil {
				return merged, err
			}
			continue
		}
		path, fetched, err := fetchPart(ctx, files, j.ID, i, scratch)
		if err != nil {
			return merged, fmt.Errorf("fetch part %d: %w", i, err)
		}
		_, err = a.MergePart(ctx, int64(i), path)
		if fetched {
			_ = os.Remove(path)
		}
		if err != nil {
			return merged, err
		}
		merged++
		if _, local := files.(localFiles); local {
			// A local store keeps this very file and syncs it when it is
			// stored: start writing it back now, while batches render,
			// so that sync has little left to wait for.
			startWriteback(a.path)
		}
	}
	return merged, nil
}

// localFiles is implemented by a storage that keeps objects as local files
// (storage.Local): parts are merged where they lie, and a package is
// linked into place rather than copied.
type localFiles interface {
	Path(key string) (string, error)
}

// fetchPart returns a local file holding batch i's part: the stored file
// itself when the storage is local, else a download into dir (fetched).
func fetchPart(ctx context.Context, files Files, id string, i int, dir string) (path string, fetched bool, err error) {
	key := job.PartKey(id, i)
	if local, ok := files.(localFiles); ok {
		path, err := local.Path(key)
		return path, false, err
	}
	name := filepath.Join(dir, fmt.Sprintf("part-%05d.gpkg", i))
	return name, true, files.GetFile(ctx, key, name)
}

// heartbeat says that this machine is alive for MachineTTL, so that
// finalizes of the packages it assembles are sent to its queue; a failure
// is logged and the next beat tries again.
func (w *Worker) heartbeat(ctx context.Context) {
	if err := w.deps.Jobs.Heartbeat(ctx, w.queue, MachineTTL); err != nil && ctx.Err() == nil {
		w.log.WarnContext(ctx, "heartbeat", logattr.Error, err)
	}
}
