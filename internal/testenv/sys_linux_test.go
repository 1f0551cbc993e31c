package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a parent process that starts a
// server and waits to be killed.
const helperEnv = "TESTENV_HELPER_MODE"

// runHelper starts a server the way the helpers do, prints its pid (and data
// directory) and blocks until it is killed.
func runHelper(mode string) int {
	var pid int
	var dir string
	switch mode {
	case "redis":
		bin, err := findBinary("redis-server", EnvRedisServer)
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		dir, err = os.MkdirTemp("", "testenv-helper-*")
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		p, _, err := startRedis(bin, dir, 1, nil)
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		pid = p.Pid()
	case "minio":
		srv, err := startMinIO()
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		pid, dir = srv.proc.Pid(), srv.root
	default:
		fmt.Println("ERROR unknown mode", mode)
		return 1
	}
	fmt.Println("PID", pid, dir)
	select {} // until killed
}

// TestServerDiesWithTestBinary kills a parent that started a server, as
// happens when `go test` times out, and checks that the kernel killed the
// server too (Pdeathsig), so that no shared MinIO outlives its tests.
func TestServerDiesWithTestBinary(t *testing.T) {
	skipShort(t)
	t.Parallel()
	for _, mode := range []string{"redis", "minio"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd, line, err := HelperProcess(t, helperEnv+"="+mode)
			var pid int
			var dir string
			if _, scanErr := fmt.Sscanf(line, "PID %d %s", &pid, &dir); err != nil || scanErr != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper said %q (%v), want PID <pid> <dir>", line, err)
			}
			if gone(pid) {
				t.Fatalf("%s pid %d is not running while its parent lives", mode, pid)
			}

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for !gone(pid) {
				if time.Now().After(deadline) {
					_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
					t.Fatalf("%s pid %d still runs 10s after its parent was killed", mode, pid)
				}
				time.Sleep(20 * time.Millisecond) // polling another process: no channel to wait on
			}

			if mode == "minio" {
				// The next start sweeps the dead binary's data directory.
				sweepStaleMinIODirs()
				if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("stat %s after sweep = %v, want not exist", dir, err)
				}
			}
			os.RemoveAll(dir)
		})
	}
}

// gone reports whether pid has exited: it no longer exists, or it is a
// zombie that nobody (PID 1 in a container, perhaps) has reaped yet.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state == 'Z' || state == 'X'
}
