package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/minio/minio-go/v7"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var build struct {
	once sync.Once
	path string
	err  error
}

// binary builds the exporter once per test run.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "exporter-e2e-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "exporter")
		out, err := exec.Command("go", "build", "-o", build.path, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// proc is an exporter process started by testenv.StartProcess; its output
// (standard output and the log, in one file) is kept for the test to read
// and for failure reports.
type proc struct {
	*testenv.Process
	cmd  *exec.Cmd
	logs output
	done <-chan struct{}
	// killed is set by a test that killed the process on purpose.
	killed bool
}

// output is a process's combined standard output and log, read whole.
type output string

func (o output) String() string {
	b, err := os.ReadFile(string(o))
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	return string(b)
}

// start runs the exporter with args in dir, with only the given EXPORTER_*
// variables set, and stops it with SIGTERM when the test ends.
func start(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXPORTER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), "exporter.log")
	tp, err := testenv.StartProcess("exporter "+strings.Join(args, " "), cmd, logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: tp, cmd: cmd, logs: output(logPath), done: tp.Exited()}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("exporter %v did not stop within 20s of SIGTERM", args)
		}
		if t.Failed() {
			t.Logf("exporter %v output:\n%s", args, lastLines(p.logs.String(), 40))
		} else if code := cmd.ProcessState.ExitCode(); code != 0 && !p.killed {
			t.Errorf("exporter %v exited %d after SIGTERM, want 0\n%s", args, code, lastLines(p.logs.String(), 40))
		}
	})
	return p
}

// skipShort skips an end-to-end test under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped under -short")
	}
}

// signal sends sig to the process and waits for it to exit. SIGKILL
// marks it killed on purpose, so its exit code is not held against it.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if sig == syscall.SIGKILL {
		p.killed = true
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("exporter exited early: %v", p.cmd.ProcessState)
		default:
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not ready within 30s", base)
}

// wantStatus checks that GET url answers want.
func wantStatus(t *testing.T, url string, want int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("GET %s = %d, want %d", url, resp.StatusCode, want)
	}
}

// callbacks records the bodies POSTed to it.
type callbacks struct {
	url string
	got chan map[string]any
}

func newCallbacks(t *testing.T) *callbacks {
	c := &callbacks{got: make(chan map[string]any, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			w.WriteHeader(400)
			return
		}
		c.got <- m
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/done"
	return c
}

// api calls a running exporter with a token.
type api struct {
	base, token string
}

func (a api) do(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (a api) postJSON(t *testing.T, path, body string) map[string]any {
	t.Helper()
	resp := a.do(t, "POST", path, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (a api) getJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	resp := a.do(t, "GET", path, "")
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitCompleted polls GET /jobs/{id} until the job is Completed, for at
// most 90 seconds.
func waitCompleted(t *testing.T, a api, id string) map[string]any {
	t.Helper()
	return waitCompletedWithin(t, a, id, 90*time.Second)
}

// waitCompletedWithin polls GET /jobs/{id} until the job is Completed, for
// at most timeout.
func waitCompletedWithin(t *testing.T, a api, id string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := -1.0
	for time.Now().Before(deadline) {
		j := a.getJSON(t, "/jobs/"+id)
		switch j["status"] {
		case "Completed":
			return j
		case "In-Progress":
			p, _ := j["percentage"].(float64)
			if p < last {
				t.Errorf("progress went back from %v to %v", last, p)
			}
			last = p
		default:
			t.Fatalf("job %s ended %v: %v", id, j["status"], j["reason"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s not Completed within %v", id, timeout)
	return nil
}

// downloadPackage fetches fileUri into the test's temp dir, with the token
// in the query as a browser's download link carries it.
func downloadPackage(t *testing.T, a api, uri string) string {
	t.Helper()
	resp, err := http.Get(uri + "?token=" + a.token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/geopackage+sqlite3" {
		t.Fatalf("GET %s = %d %s", uri, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	path := filepath.Join(t.TempDir(), "export.gpkg")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != resp.ContentLength {
		t.Fatalf("download %s: %d of %d bytes: %v", uri, n, resp.ContentLength, err)
	}
	return path
}

// openPackage opens a package of one tile table, closed when the test
// ends, and returns the table's name.
func openPackage(t *testing.T, path string) (*gpkg.Reader, string) {
	t.Helper()
	r, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tables, err := r.Tables(t.Context())
	if err != nil || len(tables) != 1 {
		t.Fatalf("Tables = %v, %v; want one", tables, err)
	}
	return r, tables[0]
}

// tileCount opens a package and counts its tiles by zoom.
func tileCount(t *testing.T, path string) (int64, map[grid.Zoom]int64) {
	t.Helper()
	r, table := openPackage(t, path)
	byZoom, err := r.CountByZoom(t.Context(), table)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range byZoom {
		n += c
	}
	return n, byZoom
}

const seedRequest = `{
  "dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
  "bbox": [34.811938017107494, 31.95475033759175, 34.82237261707599, 31.96426962177354],
  "targetResolution": 0.0000429153442382812,
  "callbackURLs": [%q],
  "crs": "EPSG:4326",
  "priority": 0
}`

// exportSeed runs the specification's example request through a running
// exporter at base and checks the package, the callback and the cache.
func exportSeed(t *testing.T, a api) string {
	t.Helper()
	cb := newCallbacks(t)
	created := a.postJSON(t, "/create", fmt.Sprintf(seedRequest, cb.url))
	if created["status"] != "In-Progress" {
		t.Fatalf("POST /create = %v, want In-Progress", created)
	}
	id := created["id"].(string)
	j := waitCompleted(t, a, id)
	result := j["result"].(map[string]any)
	uri := result["fileUri"].(string)

	path := downloadPackage(t, a, uri)
	sanitised := grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	want := grid.CountTiles(grid.Pyramid(sanitised, 14))
	if got, byZoom := tileCount(t, path); got != want || want != 18 {
		t.Errorf("package holds %d tiles (%v), want %d as the grid says", got, byZoom, want)
	}
	checkWithGDAL(t, path, sanitised, 14)

	select {
	case body := <-cb.got:
		if body["success"] != true || body["fileUri"] != uri || body["requestId"] != id || body["status"] != nil {
			t.Errorf("callback body = %v", body)
		}
	case <-time.After(30 * time.Second):
		t.Error("no callback within 30s")
	}

	again := a.postJSON(t, "/create", fmt.Sprintf(seedRequest, cb.url))
	if again["status"] != "Completed" || again["fileUri"] != uri || again["requestId"] != id {
		t.Errorf("identical request after completion = %v, want the cached package", again)
	}
	return path
}

func TestEndToEndSeparateProcesses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	redisAddr := testenv.RedisAddr(t)
	s3 := testenv.MinIO(t)
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	env := map[string]string{
		"EXPORTER_REDIS_URL":         "redis://" + redisAddr,
		"EXPORTER_S3_ENDPOINT":       s3.Endpoint,
		"EXPORTER_S3_BUCKET":         s3.Bucket + "-packages", // created by the exporter
		"EXPORTER_S3_ACCESS_KEY":     s3.AccessKey,
		"EXPORTER_S3_SECRET_KEY":     s3.SecretKey,
		"EXPORTER_HTTP_ADDR":         addr,
		"EXPORTER_HTTP_PUBLIC_URL":   base,
		"EXPORTER_LOG_FORMAT":        "json",
		"EXPORTER_AUTH_HS256_SECRET": string(e2eSecret),
		"EXPORTER_HTTP_RATE_LIMIT":   "0",
		// The test's callback receiver listens on loopback.
		"EXPORTER_HTTP_CALLBACK_ALLOW": "127.0.0.1/32",
	}
	dir := t.TempDir()
	trig := start(t, dir, env, "trigger")
	workerEnv := maps.Clone(env)
	workerEnv["EXPORTER_HTTP_ADDR"] = testenv.FreeAddr(t) // its health and metrics
	w := start(t, dir, workerEnv, "worker")
	waitReady(t, "http://"+workerEnv["EXPORTER_HTTP_ADDR"], w)
	// No runtime profiles without EXPORTER_HTTP_PPROF.
	wantStatus(t, "http://"+workerEnv["EXPORTER_HTTP_ADDR"]+"/debug/pprof/cmdline", http.StatusNotFound)
	waitReady(t, base, trig)
	exportSeed(t, api{base: base, token: joseToken(t, e2eSecret, "e2e-client", "client")})
	cleanupBucket(t, s3, env["EXPORTER_S3_BUCKET"])
}

func TestEndToEndAllInOne(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	// No configuration but the port, so parallel tests do not collide.
	p := start(t, dir, map[string]string{"EXPORTER_HTTP_ADDR": addr, "EXPORTER_HTTP_CALLBACK_ALLOW": "127.0.0.1/32", "EXPORTER_HTTP_RATE_LIMIT": "0"})
	base, token := waitURL(t, p)
	waitReady(t, base, p)
	a := api{base: base, token: token}
	exportSeed(t, a)
	if _, err := os.Stat(filepath.Join(dir, "data", "packages")); err != nil {
		t.Errorf("packages not kept in ./data: %v", err)
	}

	// The demo layer covers the world: a coastline far from the
	// specification's example, the Cape Peninsula, comes out as land and
	// sea in the package.
	checkCoastExport(t, a)

	// The region around the specification's example at zoom 9: a package
	// gdalinfo shows with several overview levels.
	created := a.postJSON(t, "/create", `{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","bbox":[34.2,29.4,35.9,33.4],
	  "targetResolution":0.001373291015625,"callbackURLs":[]}`)
	j := waitCompleted(t, a, created["id"].(string))
	path := downloadPackage(t, a, j["result"].(map[string]any)["fileUri"].(string))
	bbox := j["bbox"].([]any)
	extent := grid.BBox{MinX: bbox[0].(float64), MinY: bbox[1].(float64), MaxX: bbox[2].(float64), MaxY: bbox[3].(float64)}
	if got, want := j["tilesTotal"].(float64), float64(grid.CountTiles(grid.Pyramid(extent, 9))); got != want {
		t.Errorf("tilesTotal = %v, want %v", got, want)
	}
	if got, byZoom := tileCount(t, path); float64(got) != j["tilesTotal"].(float64) {
		t.Errorf("package holds %d tiles (%v), want %v", got, byZoom, j["tilesTotal"])
	}
	checkWithGDAL(t, path, extent, 9)
}

// checkCoastExport exports the Cape Peninsula at zoom 10 and checks that
// the zoom-9 tile over its tip shows both the demo map's water and land:
// a tenth of its pixels or more of each (about four fifths are sea).
func checkCoastExport(t *testing.T, a api) {
	t.Helper()
	created := a.postJSON(t, "/create", fmt.Sprintf(`{"dbId":%q,"bbox":[18.3,-34.4,18.6,-34.1],"targetResolution":%v,"callbackURLs":[]}`,
		catalog.DemoLayerID, grid.Zoom(10).Resolution()))
	j := waitCompleted(t, a, created["id"].(string))
	path := downloadPackage(t, a, j["result"].(map[string]any)["fileUri"].(string))
	r, table := openPackage(t, path)
	z := grid.Zoom(9)
	tip := z.Range(grid.BBox{MinX: 18.47, MinY: -34.36, MaxX: 18.4701, MaxY: -34.3599})
	data, err := r.ReadTile(t.Context(), table, grid.Tile{Zoom: z, Col: tip.MinCol, Row: tip.MinRow})
	if err != nil {
		t.Fatalf("the tile over the Cape's tip: %v", err)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// The map's water is (163, 199, 226); JPEG keeps it within a few
	// levels. Land is shaded green to brown, never that blue.
	water, all := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-163) < 12 && abs(int(g>>8)-199) < 12 && abs(int(bl>>8)-226) < 12 {
				water++
			}
			all++
		}
	}
	if water < all/10 || all-water < all/10 {
		t.Errorf("the zoom-9 tile over the Cape's tip has %d water pixels of %d; want a coast: a tenth or more each of water and land", water, all)
	}
}

func abs(v int) int { return max(v, -v) }

// checkWithGDAL runs GDAL's GeoPackage validator and gdalinfo on a
// package of every zoom 0..maxZoom over extent.
func checkWithGDAL(t *testing.T, path string, extent grid.BBox, maxZoom grid.Zoom) {
	t.Helper()
	gdal := gpkgtest.RequireGDAL(t)
	gdal.Validate(t, path)
	info := gdal.Info(t, path)
	res := maxZoom.Resolution()
	if info.DriverShortName != "GPKG" || len(info.Bands) != 4 || len(info.GeoTransform) != 6 ||
		!near(info.GeoTransform[0], extent.MinX) || !near(info.GeoTransform[3], extent.MaxY) || !near(info.GeoTransform[1], res) {
		t.Errorf("gdalinfo: driver %s, %d bands, geotransform %v; want GPKG RGBA at %v from (%v, %v)",
			info.DriverShortName, len(info.Bands), info.GeoTransform, res, extent.MinX, extent.MaxY)
	}
	var zooms []grid.Zoom
	for z := range maxZoom + 1 {
		zooms = append(zooms, z)
	}
	want := gpkgtest.ExpectedOverviews(extent, zooms)
	for i, b := range info.Bands {
		if len(b.Overviews) != want {
			t.Errorf("gdalinfo band %d lists %d overviews, want %d: one per zoom down to the first smaller than a tile", i+1, len(b.Overviews), want)
		}
	}
}

// near compares gdalinfo's numbers, which it prints to 12 significant digits.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// waitURL reads the URL and the token the exporter prints on start.
func waitURL(t *testing.T, p *proc) (url, token string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
				url = strings.Replace(u, "localhost", "127.0.0.1", 1)
			}
			if _, tok, ok := strings.Cut(sc.Text(), "Authorization: Bearer "); ok {
				token = tok
			}
		}
		if url != "" && token != "" {
			return url, token
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no URL and token printed within 30s; stdout: %q", p.logs.String())
	return "", ""
}

// e2eSecret signs the tokens of the separate-process test.
var e2eSecret = []byte("e2e-secret-0123456789abcdef012345")

// joseToken mints a token with go-jose, a JWT library the exporter does
// not use: an independent client.
func joseToken(t *testing.T, secret []byte, sub, role string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := josejwt.Signed(signer).Claims(map[string]any{"sub": sub, "role": role, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// cleanupBucket removes a bucket the exporter created.
func cleanupBucket(t *testing.T, s3 testenv.MinIOEnv, bucket string) {
	t.Helper()
	c := s3.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		t.Logf("remove bucket %s: %v", bucket, err)
	}
}
