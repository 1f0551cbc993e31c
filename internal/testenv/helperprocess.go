package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
)

// HelperProcess runs the test binary again, with no test selected and env
// ("KEY=value" each) added to its environment, so that the package's TestMain
// acts as the helper that env asks for, and returns it once it has printed
// its first line. line is that line as read (with its newline) and err the
// error of reading it: a helper that exits early says why there. Its
// standard input is a pipe, closed in t.Cleanup (EOF tells a helper to let
// go) before the process is killed and waited for; a test may kill and
// wait for it first.
func HelperProcess(t testing.TB, env ...string) (cmd *exec.Cmd, line string, err error) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err = bufio.NewReader(out).ReadString('\n')
	return cmd, line, err
}
