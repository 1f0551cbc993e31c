// Package filelock takes advisory, non-blocking locks on files (flock on
// Unix), so that a process can tell whether another live process owns a
// directory: the kernel drops a lock when its holder exits, however it
// exits, so a lock that can be taken has no live owner.
//
// The embedded Redis (internal/redisserver) locks its directory with it,
// and the worker its temporary directories. It imports no project package.
package filelock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is returned by [TryLock] when another open file holds the lock,
// in this process or another one.
var ErrLocked = errors.New("filelock: locked by another owner")

// ErrUnsupported is returned by [TryLock] where the system has no file
// locks this package can use.
var ErrUnsupported = errors.New("filelock: not supported on this system")

// Lock is a held lock on a file. The lock lasts until [Lock.Close] or
// until the process exits; the file descriptor is not inherited by child
// processes.
type Lock struct {
	f *os.File
}

// TryLock opens path (creating it with mode 0600 if missing) and takes an
// exclusive lock on it without waiting. It returns [ErrLocked] if the lock
// is held elsewhere, also by another open file of this process.
func TryLock(path string) (*Lock, error) {
	return tryLockFile(path, os.O_CREATE)
}

// TryLockExisting is [TryLock] for a file that must exist already: it
// returns an error wrapping [os.ErrNotExist] rather than create it.
func TryLockExisting(path string) (*Lock, error) {
	return tryLockFile(path, 0)
}

func tryLockFile(path string, flag int) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filelock: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) || errors.Is(err, ErrUnsupported) {
			return nil, err
		}
		return nil, fmt.Errorf("filelock: lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WriteOwner replaces the file's content with the pid of this process, so
// that a process that finds the file locked can say who holds it.
func (l *Lock) WriteOwner() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("filelock: %w", err)
	}
	if _, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("filelock: %w", err)
	}
	return nil
}

// Close releases the lock and closes the file; the file stays. Later calls
// do nothing. Close must not run concurrently with other methods.
func (l *Lock) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Owner reads the pid a holder wrote with [Lock.WriteOwner] into the file
// at path; 0 when there is none.
func Owner(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
