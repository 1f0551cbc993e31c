package gpkg_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// gdalInstallHint says how to get the tools the GDAL tests run.
const gdalInstallHint = "install GDAL with `make tools` or `apt-get install gdal-bin python3-gdal`, " +
	"or run the short tests with -short"

// gdalTools are the GDAL programs the GDAL tests run.
type gdalTools struct {
	// validate runs GDAL's validate_gpkg.py: append flags and the file.
	validate []string
	// gdalinfo is the gdalinfo binary.
	gdalinfo string
}

var (
	gdalOnce  sync.Once
	gdalFound gdalTools
	gdalErr   error
)

// requireGDAL returns the GDAL tools. It skips the test under -short only;
// otherwise a missing tool fails the test with an install hint, never a
// silent skip.
func requireGDAL(t testing.TB) gdalTools {
	t.Helper()
	if testing.Short() {
		t.Skip("GDAL validation runs external programs; skipped with -short")
	}
	gdalOnce.Do(func() { gdalFound, gdalErr = findGDAL() })
	if gdalErr != nil {
		t.Fatalf("GDAL tools not found: %v\n%s", gdalErr, gdalInstallHint)
	}
	return gdalFound
}

// validatorScripts are where Debian's python3-gdal installs
// validate_gpkg.py, for interpreters where `-m osgeo_utils...` fails.
var validatorScripts = []string{
	"/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py",
	"/usr/share/doc/python3-gdal/examples/validate_gpkg.py",
}

// findGDAL looks for a Python with GDAL's bindings (the system one first:
// a pyenv or virtualenv python3 on PATH usually lacks them) and gdalinfo.
func findGDAL() (gdalTools, error) {
	var tools gdalTools
	var problems []string
	pythons := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		pythons = append(pythons, p)
	}
	for _, py := range pythons {
		if _, err := os.Stat(py); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", py, err))
			continue
		}
		out, err := exec.Command(py, "-c", "import osgeo_utils.samples.validate_gpkg").CombinedOutput()
		if err == nil {
			tools.validate = []string{py, "-m", "osgeo_utils.samples.validate_gpkg"}
			break
		}
		problems = append(problems, fmt.Sprintf("%s cannot import osgeo_utils.samples.validate_gpkg: %s", py, lastLine(out)))
		for _, script := range validatorScripts {
			if _, err := os.Stat(script); err != nil {
				continue
			}
			if out, err := exec.Command(py, "-c", "from osgeo import gdal").CombinedOutput(); err != nil {
				problems = append(problems, fmt.Sprintf("%s cannot import osgeo: %s", py, lastLine(out)))
				break
			}
			tools.validate = []string{py, script}
			break
		}
		if tools.validate != nil {
			break
		}
	}
	if tools.validate == nil {
		return tools, fmt.Errorf("no Python with GDAL's validate_gpkg: %s", strings.Join(problems, "; "))
	}
	gdalinfo, err := exec.LookPath("gdalinfo")
	if err != nil {
		return tools, fmt.Errorf("gdalinfo: %w", err)
	}
	tools.gdalinfo = gdalinfo
	return tools, nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// run runs argv and returns its stdout; it fails t if the program exits
// non-zero or writes anything to stderr (GDAL's warnings go there).
func run(t *testing.T, argv ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run %v: %v", argv, err)
	}
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", argv, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}
