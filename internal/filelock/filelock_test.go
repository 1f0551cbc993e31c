package filelock_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/filelock"
	"github.com/geoexport/exporter/internal/testenv"
)

// holdEnv makes the test binary a helper that locks the file it names,
// prints "locked" and holds the lock until its standard input closes.
const holdEnv = "FILELOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		l, err := filelock.TryLock(path)
		if err == nil {
			err = l.WriteOwner()
		}
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the test lets go
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hold starts a helper process that holds the lock on path and returns it
// once the lock is taken.
func hold(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd, line, err := testenv.HelperProcess(t, holdEnv+"="+path)
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	return cmd
}

func TestTryLockSameProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock")
	l, err := filelock.TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := filelock.TryLock(path); !errors.Is(err, filelock.ErrLocked) {
		t.Errorf("second TryLock(%s) = %v, want ErrLocked", path, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := filelock.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Close = %v, want the lock", err)
	}
	l2.Close()
}

func TestTryLockOtherProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock")
	cmd := hold(t, path)
	if _, err := filelock.TryLock(path); !errors.Is(err, filelock.ErrLocked) {
		t.Fatalf("TryLock(%s) held by pid %d = %v, want ErrLocked", path, cmd.Process.Pid, err)
	}
	if got := filelock.Owner(path); got != cmd.Process.Pid {
		t.Errorf("Owner(%s) = %d, want %d", path, got, cmd.Process.Pid)
	}
	// The kernel drops the lock of a killed holder.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := filelock.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after the holder was killed = %v, want the lock", err)
	}
	l.Close()
}

func TestOwnerWithoutPid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, filepath.Join(dir, "missing")} {
		if got := filelock.Owner(path); got != 0 {
			t.Errorf("Owner(%s) = %d, want 0", path, got)
		}
	}
}

func TestTryLockExisting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock")
	if _, err := filelock.TryLockExisting(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("TryLockExisting(%s) of a missing file = %v, want ErrNotExist", path, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("TryLockExisting created %s", path)
	}
	l, err := filelock.TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := filelock.TryLockExisting(path); !errors.Is(err, filelock.ErrLocked) {
		t.Errorf("TryLockExisting(%s) of a held lock = %v, want ErrLocked", path, err)
	}
	l.Close()
	l, err = filelock.TryLockExisting(path)
	if err != nil {
		t.Fatalf("TryLockExisting(%s) of a free lock = %v", path, err)
	}
	l.Close()
}
