package sourcetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/testenv"
)

// EnvMapProxy names the environment variable that points at mapproxy-util,
// overriding PATH.
const EnvMapProxy = "EXPORTER_TEST_MAPPROXY"

// Names in TileCacheConfig.
const (
	// GridName is the MapProxy grid of the project grid (GridYAML).
	GridName = "exporter"
	// Layer is the layer of the tiles ServeTiles wrote.
	Layer = "tiles"
	// DebugLayer is a layer MapProxy draws on every request.
	DebugLayer = "debug"
	// TMSZoomOffset is the source zoom offset for MapProxy's TMS endpoint
	// (MapProxyURL.TMSTemplate): it numbers an EPSG:4326 grid by the
	// global-geodetic profile, so the grid's 4 × 2 level is its level 0
	// and the 2 × 1 level is not served.
	TMSZoomOffset = -1
)

// readyTimeout bounds the wait for the server's first answer.
const readyTimeout = 60 * time.Second

// MapProxy is a running MapProxy server.
type MapProxy struct {
	// URL is the server's root, http://127.0.0.1:<port>, without a
	// trailing slash.
	URL string
	// Dir is the server's directory: mapproxy.yaml, the log
	// (mapproxy.log), and the tiles of ServeTiles under tiles/.
	Dir string
}

// WMSURL is the WMS endpoint, for WMS 1.1.1 and 1.3.0 GetMap.
func (m *MapProxy) WMSURL() string { return m.URL + "/service" }

// WMTSKVPURL is the WMTS KVP endpoint. Its tile matrix set is GridName and
// its tile matrices are numbered 0, 1, … (MapProxy also accepts the 00,
// 01, … it lists in its capabilities).
func (m *MapProxy) WMTSKVPURL() string { return m.URL + "/service" }

// WMTSRESTTemplate is the WMTS REST template with {Layer},
// {TileMatrixSet}, {TileMatrix}, {TileCol} and {TileRow}.
func (m *MapProxy) WMTSRESTTemplate() string {
	return m.URL + "/wmts/{Layer}/{TileMatrixSet}/{TileMatrix}/{TileCol}/{TileRow}.png"
}

// XYZTemplate is an XYZ template of layer in the grid: levels as in the
// grid, rows from the north.
func (m *MapProxy) XYZTemplate(layer string) string {
	return m.URL + "/tiles/1.0.0/" + layer + "/" + GridName + "/{z}/{x}/{y}.png?origin=nw"
}

// TMSTemplate is the TMS template of layer: rows from the south, and
// levels shifted by TMSZoomOffset.
func (m *MapProxy) TMSTemplate(layer string) string {
	return m.URL + "/tms/1.0.0/" + layer + "/" + GridName + "/{z}/{x}/{y}.png"
}

// GridYAML returns the MapProxy grids: section that defines the project
// grid as GridName, levels 0..maxZoom: EPSG:4326, origin north-west,
// 256-pixel tiles, 0.703125 / 2^z degrees per pixel.
func GridYAML(maxZoom grid.Zoom) string {
	res := make([]string, 0, maxZoom+1)
	for z := grid.Zoom(0); z <= maxZoom; z++ {
		res = append(res, strconv.FormatFloat(z.Resolution(), 'g', -1, 64))
	}
	return fmt.Sprintf(`grids:
  %s:
    srs: 'EPSG:4326'
    bbox: [-180, -90, 180, 90]
    bbox_srs: 'EPSG:4326'
    origin: nw
    tile_size: [256, 256]
    res: [%s]
`, GridName, strings.Join(res, ", "))
}

// TileCacheConfig returns a mapproxy.yaml that serves the PNG tiles under
// {{dir}}/tiles, laid out {z}/{x}/{y}.png with rows from the north, as
// Layer (missing tiles are transparent), and DebugLayer, over WMS (1.1.1
// and 1.3.0, EPSG:4326, PNG and JPEG), WMTS (KVP and REST), TMS and the
// tiles service, in the grid of GridYAML. PNG answers are in full colour
// (MapProxy's default is an 8-bit palette). StartMapProxy replaces
// {{dir}}.
func TileCacheConfig(maxZoom grid.Zoom) string {
	return `services:
  tms:
    use_grid_names: true
  wmts:
    restful: true
    kvp: true
  wms:
    srs: ['EPSG:4326']
    versions: ['1.1.1', '1.3.0']
    image_formats: ['image/png', 'image/jpeg']
    md:
      title: exporter tests

layers:
  - name: ` + Layer + `
    title: test tiles
    sources: [tiles_cache]
  - name: ` + DebugLayer + `
    title: debug
    sources: [debug_source]

caches:
  tiles_cache:
    grids: [` + GridName + `]
    sources: []
    format: image/png
    cache:
      type: file
      directory_layout: tms
      directory: {{dir}}/tiles

sources:
  debug_source:
    type: debug

` + GridYAML(maxZoom) + `
globals:
  image:
    # PNG answers in full colour: MapProxy's default 8-bit palette would
    # move the colours tests compare.
    paletted: false
  cache:
    base_dir: {{dir}}/cache_data
    lock_dir: {{dir}}/cache_data/locks
    tile_lock_dir: {{dir}}/cache_data/tile_locks
`
}

// ServeTiles writes tiles (each 256 × 256) as PNG files into a new tile
// cache and starts MapProxy on TileCacheConfig(maxZoom) to serve them.
func ServeTiles(tb testing.TB, maxZoom grid.Zoom, tiles map[grid.Tile]image.Image) *MapProxy {
	tb.Helper()
	skipShort(tb)
	dir := tb.TempDir()
	for t, img := range tiles {
		if t.Zoom > maxZoom {
			tb.Fatalf("sourcetest: tile %s is beyond zoom %d", t, maxZoom)
		}
		if err := writePNG(filepath.Join(dir, "tiles", fmt.Sprint(t.Zoom), fmt.Sprint(t.Col), fmt.Sprintf("%d.png", t.Row)), img); err != nil {
			tb.Fatalf("sourcetest: %v", err)
		}
	}
	return startIn(tb, dir, TileCacheConfig(maxZoom))
}

func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}

// StartMapProxy writes config as mapproxy.yaml into a new tb.TempDir(),
// with every {{dir}} replaced by that directory, starts MapProxy on it and
// returns once the server answers a WMS GetCapabilities request. The
// server is stopped, and waited for, in tb.Cleanup.
//
// Under -short the test is skipped; a missing MapProxy, or a server that
// does not come up, fails it.
func StartMapProxy(tb testing.TB, config string) *MapProxy {
	tb.Helper()
	skipShort(tb)
	return startIn(tb, tb.TempDir(), config)
}

func skipShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("sourcetest: test needs a real MapProxy; skipped under -short")
	}
}

func startIn(tb testing.TB, dir, config string) *MapProxy {
	tb.Helper()
	python, err := findPython()
	if err != nil {
		tb.Fatal(err)
	}
	confPath := filepath.Join(dir, "mapproxy.yaml")
	runner := filepath.Join(dir, "mapproxy_runner.py")
	portFile := filepath.Join(dir, "port")
	logPath := filepath.Join(dir, "mapproxy.log")
	if err := os.WriteFile(confPath, []byte(strings.ReplaceAll(config, "{{dir}}", dir)), 0o644); err != nil {
		tb.Fatalf("sourcetest: %v", err)
	}
	if err := os.WriteFile(runner, []byte(runnerScript), 0o644); err != nil {
		tb.Fatalf("sourcetest: %v", err)
	}
	cmd := exec.Command(python, runner, confPath, portFile)
	cmd.Dir = dir
	p, err := testenv.StartProcess("mapproxy", cmd, logPath)
	if err != nil {
		tb.Fatalf("sourcetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Errorf("sourcetest: %v", err)
		}
	})
	m := &MapProxy{Dir: dir}
	err = p.WaitReady(readyTimeout, func() error {
		if m.URL == "" {
			b, err := os.ReadFile(portFile)
			if err != nil {
				return fmt.Errorf("no port yet: %w", err)
			}
			port, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return fmt.Errorf("port file: %w", err)
			}
			m.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		}
		return probe(tb.Context(), m.WMSURL()+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0")
	})
	if err != nil {
		tb.Fatalf("sourcetest: %v", err)
	}
	return m
}

// probe GETs u and wants 200.
func probe(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GetCapabilities answered %s", resp.Status)
	}
	return nil
}

// findPython returns the interpreter that runs mapproxy-util, which is the
// one that can import mapproxy: the first line of the script names it.
func findPython() (string, error) {
	util := os.Getenv(EnvMapProxy)
	where := "$" + EnvMapProxy
	if util == "" {
		util, where = "mapproxy-util", `"mapproxy-util" on PATH`
	}
	path, err := exec.LookPath(util)
	if err != nil {
		return "", fmt.Errorf("sourcetest: mapproxy not found (%s: %w); run `make tools` to install it (Debian package mapproxy), or set %s to mapproxy-util (use go test -short to skip integration tests)",
			where, err, EnvMapProxy)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sourcetest: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("sourcetest: read %s: %w", path, err)
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return "", fmt.Errorf("sourcetest: %s does not start with #!: cannot tell which python runs mapproxy", path)
	}
	python := fields[0]
	if filepath.Base(python) == "env" && len(fields) > 1 {
		python = fields[1]
	}
	abs, err := exec.LookPath(python)
	if err != nil {
		return "", fmt.Errorf("sourcetest: python of %s: %w", path, err)
	}
	return abs, nil
}

// runnerScript serves a MapProxy configuration with the standard library's
// WSGI server, threaded, on 127.0.0.1 and a port the kernel picks, which
// it writes to a file (atomically) once it listens.
const runnerScript = `import logging, os, sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import make_server, WSGIServer, WSGIRequestHandler
from mapproxy.wsgiapp import make_wsgi_app

class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256

class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s\n" % (format % args))

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
app = make_wsgi_app(sys.argv[1])
server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
sys.stderr.write("listening on 127.0.0.1:%d\n" % server.server_port)
sys.stderr.flush()
server.serve_forever()
`
