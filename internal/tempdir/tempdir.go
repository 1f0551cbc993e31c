// Package tempdir makes temporary directories that say whether their
// owner is alive: each holds a lock file that its process keeps locked
// (flock) with its pid in it for as long as the directory exists, so a
// process that dies, however it dies, leaves its directories unlocked,
// and a sweep (the worker's) can tell them from those of live processes.
package tempdir

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/geoexport/exporter/internal/filelock"
)

// LockName is the lock file in every directory Make creates.
const LockName = ".owner.lock"

// Make creates a directory under parent (the system's temp directory when
// empty), named prefix and the digits os.MkdirTemp adds, and locks it.
// release removes the directory, then drops the lock. Where flock is not
// supported the directory has no lock.
func Make(parent, prefix string) (dir string, release func(), err error) {
	dir, err = os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", nil, err
	}
	lock, err := filelock.TryLock(filepath.Join(dir, LockName))
	if errors.Is(err, filelock.ErrUnsupported) {
		return dir, func() { _ = os.RemoveAll(dir) }, nil
	}
	if err == nil {
		err = lock.WriteOwner()
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { _ = os.RemoveAll(dir); lock.Close() }, nil
}
