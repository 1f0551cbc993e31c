package worker_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/filelock"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/worker"
)

// holdTaskDirEnv makes the test binary a helper process that creates a
// render task dir under the directory it names, prints its path and holds
// it until its standard input closes or it is killed.
const holdTaskDirEnv = "WORKER_TEST_HOLD_TASK_DIR"

func holdTaskDir(parent string) int {
	dir, release, err := worker.MakeTaskDir(parent, "render-")
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Println(dir)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	release()
	return 0
}

// taskDirOwner is another process that owns a task dir.
type taskDirOwner struct {
	dir string
	cmd *exec.Cmd
}

func startTaskDirOwner(t *testing.T, parent string) *taskDirOwner {
	t.Helper()
	cmd, line, _ := testenv.HelperProcess(t, holdTaskDirEnv+"="+parent)
	dir := strings.TrimSpace(line)
	if !strings.HasPrefix(dir, parent) {
		t.Fatalf("task dir owner said %q", line)
	}
	return &taskDirOwner{dir: dir, cmd: cmd}
}

// kill ends the owner as a crash would: the directory stays behind.
func (o *taskDirOwner) kill(t *testing.T) {
	t.Helper()
	if err := o.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = o.cmd.Wait()
	if _, err := os.Stat(o.dir); err != nil {
		t.Fatalf("the killed owner's task dir: %v", err)
	}
}

func mkdir(t *testing.T, dir string, age time.Duration, files ...string) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-age)
	for _, f := range files {
		path := filepath.Join(dir, f)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, then, then); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, then, then); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSweepTempDirs(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	live := startTaskDirOwner(t, parent)
	dead := startTaskDirOwner(t, parent)
	dead.kill(t)
	ours, release, err := worker.MakeTaskDir(parent, "finalize-")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	day := 25 * time.Hour
	legacyOld := mkdir(t, filepath.Join(parent, "render-1001"), day, "x.gpkg", "x.gpkg-journal")
	legacyYoung := mkdir(t, filepath.Join(parent, "render-1002"), time.Minute, "x.gpkg")
	legacyForeign := mkdir(t, filepath.Join(parent, "finalize-1003"), day, "x.gpkg", "notes.txt")
	unlockedYoung := mkdir(t, filepath.Join(parent, "render-1004"), 0, worker.TempLockName)
	unlockedOld := mkdir(t, filepath.Join(parent, "render-1005"), time.Hour, worker.TempLockName)
	sourceOld := mkdir(t, filepath.Join(parent, "source-1008"), time.Hour, worker.TempLockName, "layer.gpkg")
	others := []string{
		mkdir(t, filepath.Join(parent, "render-abc"), day, "x.gpkg"),
		mkdir(t, filepath.Join(parent, "other-1006"), day, "x.gpkg"),
		mkdir(t, filepath.Join(parent, "render-"), day, "x.gpkg"),
	}
	if err := os.WriteFile(filepath.Join(parent, "render-1007"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	removed, err := worker.SweepTempDirs(parent, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dead.dir, legacyOld, unlockedOld, sourceOld}
	slices.Sort(want)
	slices.Sort(removed)
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("SweepTempDirs removed (-want +got):\n%s", diff)
	}
	for _, dir := range want {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s after the sweep: %v, want it removed", dir, err)
		}
	}
	for _, dir := range append([]string{live.dir, ours, legacyYoung, legacyForeign, unlockedYoung, filepath.Join(parent, "render-1007")}, others...) {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s after the sweep: %v, want it kept", dir, err)
		}
	}

	// Once its owner is gone, the live one goes too.
	live.kill(t)
	removed, err = worker.SweepTempDirs(parent, time.Now(), nil)
	if err != nil || !slices.Equal(removed, []string{live.dir}) {
		t.Errorf("SweepTempDirs after the owner's death = %v, %v; want [%s]", removed, err, live.dir)
	}

	release()
	if _, err := os.Stat(ours); !os.IsNotExist(err) {
		t.Errorf("%s after release: %v, want it removed", ours, err)
	}
}

// TestSweepKeepsAssembliesForADay: the directory of a package being
// assembled outlives its tasks, so a sweep removes it only when no
// process owns it and nothing in it changed for a day.
func TestSweepKeepsAssembliesForADay(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	young := mkdir(t, filepath.Join(parent, "merge-1b4e28ba-2fa1-11d2-883f-0016d3cca427"), time.Hour, worker.TempLockName, "p.gpkg")
	old := mkdir(t, filepath.Join(parent, "merge-2b4e28ba-2fa1-11d2-883f-0016d3cca427"), 25*time.Hour, worker.TempLockName, "p.gpkg", "boot_id")
	removed, err := worker.SweepTempDirs(parent, time.Now(), nil)
	if err != nil || !slices.Equal(removed, []string{old}) {
		t.Errorf("SweepTempDirs = %v, %v; want [%s]", removed, err, old)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("%s after the sweep: %v, want it kept", young, err)
	}
}

// TestSweepRemovesAssembliesOfEndedJobs: a package assembled on a machine
// where finalize did not run is removed once its job has ended, unless a
// process holds it.
func TestSweepRemovesAssembliesOfEndedJobs(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	const (
		running = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
		ended   = "2b4e28ba-2fa1-11d2-883f-0016d3cca427"
		held    = "3b4e28ba-2fa1-11d2-883f-0016d3cca427"
	)
	dirs := map[string]string{}
	for _, id := range []string{running, ended, held} {
		dirs[id] = mkdir(t, filepath.Join(parent, "merge-"+id), 2*time.Minute, worker.TempLockName, "p.gpkg")
	}
	lock, err := filelock.TryLock(filepath.Join(dirs[held], worker.TempLockName))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	var asked []string
	removed, err := worker.SweepTempDirs(parent, time.Now(), func(id string) bool {
		asked = append(asked, id)
		return id != running
	})
	if err != nil || !slices.Equal(removed, []string{dirs[ended]}) {
		t.Errorf("SweepTempDirs = %v, %v; want [%s]", removed, err, dirs[ended])
	}
	for _, id := range []string{running, held} {
		if _, err := os.Stat(dirs[id]); err != nil {
			t.Errorf("assembly of job %s after the sweep: %v, want it kept", id, err)
		}
	}
	slices.Sort(asked)
	if want := []string{running, ended}; !slices.Equal(asked, want) {
		t.Errorf("sweep asked about jobs %v, want %v (never about a held package)", asked, want)
	}
}
