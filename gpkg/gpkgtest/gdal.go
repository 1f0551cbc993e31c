package gpkgtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
)

// gdalInstallHint says how to get the tools GDAL checks run.
const gdalInstallHint = "install GDAL with `make tools` or `apt-get install gdal-bin python3-gdal`, " +
	"or run the short tests with -short"

// GDAL runs GDAL's programs against packages: the GeoPackage validator
// (validate_gpkg.py from the GDAL Python utilities) and gdalinfo.
type GDAL struct {
	validate []string // argv prefix; flags and the file follow
	gdalinfo string
}

var (
	gdalOnce  sync.Once
	gdalFound GDAL
	gdalErr   error
)

// RequireGDAL returns the GDAL tools. It skips the test under -short only;
// otherwise a missing tool fails the test with an install hint, never a
// silent skip.
func RequireGDAL(tb testing.TB) GDAL {
	tb.Helper()
	if testing.Short() {
		tb.Skip("GDAL checks run external programs; skipped with -short")
	}
	gdalOnce.Do(func() { gdalFound, gdalErr = findGDAL() })
	if gdalErr != nil {
		tb.Fatalf("GDAL tools not found: %v\n%s", gdalErr, gdalInstallHint)
	}
	return gdalFound
}

// Validate runs validate_gpkg.py with its extra checks and warnings as
// errors; it fails tb on any finding. The file name must end in .gpkg.
func (g GDAL) Validate(tb testing.TB, path string) {
	tb.Helper()
	argv := append(slices.Clone(g.validate), "-k", "--extra", "--warning-as-error", path)
	if out := run(tb, argv...); len(out) > 0 {
		tb.Errorf("validate_gpkg.py %s printed:\n%s", path, out)
	}
}

// Info is the part of `gdalinfo -json` the tests check.
type Info struct {
	DriverShortName  string    `json:"driverShortName"`
	Size             []int     `json:"size"`
	GeoTransform     []float64 `json:"geoTransform"`
	CoordinateSystem struct {
		WKT string `json:"wkt"`
	} `json:"coordinateSystem"`
	Metadata map[string]map[string]string `json:"metadata"`
	Bands    []struct {
		Overviews []struct {
			Size []int `json:"size"`
		} `json:"overviews"`
	} `json:"bands"`
}

// Info runs `gdalinfo -json -checksum`, which decodes every tile; any
// warning fails tb.
func (g GDAL) Info(tb testing.TB, path string) Info {
	tb.Helper()
	var info Info
	if err := json.Unmarshal(run(tb, g.gdalinfo, "-json", "-checksum", path), &info); err != nil {
		tb.Fatalf("parse gdalinfo -json: %v", err)
	}
	return info
}

// MetadataDomain runs `gdalinfo -json -mdd domain` and returns the items of
// that metadata domain; GDAL shows metadata records of a GeoPackage that
// are not its own in domain "GEOPACKAGE", as GPKG_METADATA_ITEM_1, _2, ….
// Any warning fails tb.
func (g GDAL) MetadataDomain(tb testing.TB, path, domain string) map[string]string {
	tb.Helper()
	var info Info
	if err := json.Unmarshal(run(tb, g.gdalinfo, "-json", "-mdd", domain, path), &info); err != nil {
		tb.Fatalf("parse gdalinfo -json -mdd %s: %v", domain, err)
	}
	return info.Metadata[domain]
}

// ExpectedOverviews is how many overviews gdalinfo lists for a package with
// tiles at zooms over extent. GDAL (read-only) lists one overview per zoom
// present below the finest, from the finest down, and stops after the first
// overview smaller than one tile in both dimensions; coarser zooms are still
// in the file.
func ExpectedOverviews(extent grid.BBox, zooms []grid.Zoom) int {
	zs := slices.Clone(zooms)
	slices.Sort(zs)
	slices.Reverse(zs)
	n := 0
	for _, z := range zs[min(1, len(zs)):] {
		n++
		w := math.Round((extent.MaxX - extent.MinX) / z.Resolution())
		h := math.Round((extent.MaxY - extent.MinY) / z.Resolution())
		if w < grid.TileSize && h < grid.TileSize {
			break
		}
	}
	return n
}

// validatorScripts are where Debian's python3-gdal installs
// validate_gpkg.py, for interpreters where `-m osgeo_utils...` fails.
var validatorScripts = []string{
	"/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py",
	"/usr/share/doc/python3-gdal/examples/validate_gpkg.py",
}

// findGDAL looks for a Python with GDAL's bindings (the system one first:
// a pyenv or virtualenv python3 on PATH usually lacks them) and gdalinfo.
func findGDAL() (GDAL, error) {
	var tools GDAL
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

// run runs argv and returns its stdout; it fails tb if the program exits
// non-zero or writes anything to stderr (GDAL's warnings go there).
func run(tb testing.TB, argv ...string) []byte {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		tb.Fatalf("run %v: %v", argv, err)
	}
	if err != nil || stderr.Len() > 0 {
		tb.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", argv, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}
