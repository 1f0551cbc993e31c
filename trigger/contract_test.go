package trigger_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/trigger"
)

func init() {
	// GET /docs answers text/html, which kin-openapi has no decoder for.
	// The registry is guarded by a lock and nothing else in this package
	// decodes HTML bodies.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	// The web tool's assets.
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
}

// canonicalUUID is what the server accepts as a uuid (uuid.Parse of a
// 36-character string): kin-openapi does not check `format: uuid` unless
// told how.
const canonicalUUID = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// contract is the OpenAPI document with a router over it, and the
// operations that requests have reached.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options

	mu  sync.Mutex
	hit map[string]map[int]bool // "GET /jobs/{id}" -> statuses answered
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	doc, err := trigger.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi document is invalid: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("gorillamux.NewRouter: %v", err)
	}
	return &contract{
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			AuthenticationFunc:    credentialPresent,
			IncludeResponseStatus: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(canonicalUUID)),
			},
		},
		hit: map[string]map[int]bool{},
	}
}

// credentialPresent accepts a security scheme when the request carries a
// credential where the scheme says. Whether the token is valid is the
// server's business (401), not the document's.
func credentialPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r, s := in.RequestValidationInput.Request, in.SecurityScheme
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "query":
		if r.URL.Query().Get(s.Name) != "" {
			return nil
		}
	}
	return in.NewError(nil)
}

// exchange is one request of the contract test and the status it must get.
type exchange struct {
	name         string
	method, path string
	body         string
	header       []string // as do takes them
	want         int
	// docRejects says the document itself rejects the request, so
	// ValidateRequest must fail; otherwise it must pass.
	docRejects bool
}

// request builds the request do sends for e, so that it can be validated.
func request(t *testing.T, e exchange) *http.Request {
	t.Helper()
	req := httptest.NewRequest(e.method, e.path, strings.NewReader(e.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+mint(t, "alice", "client"))
	for i := 0; i+1 < len(e.header); i += 2 {
		if e.header[i+1] == "" {
			req.Header.Del(e.header[i])
			continue
		}
		req.Header.Set(e.header[i], e.header[i+1])
	}
	return req
}

// check sends e through do and validates the request and the response
// (status, declared headers, body) against the document.
func (k *contract) check(t *testing.T, srv *trigger.Server, e exchange) (*http.Response, []byte) {
	t.Helper()
	in := k.requestInput(t, e)
	req, route, params := in.Request, in.Route, in.PathParams
	reqErr := openapi3filter.ValidateRequest(t.Context(), in)
	switch {
	case e.docRejects && reqErr == nil:
		t.Errorf("%s: the document accepts %s %s %s, want it rejected", e.name, e.method, e.path, e.body)
	case !e.docRejects && reqErr != nil:
		t.Errorf("%s: the document rejects %s %s: %v", e.name, e.method, e.path, reqErr)
	}

	resp, body := do(t, srv, e.method, e.path, e.body, e.header...)
	op := route.Method + " " + route.Path
	k.mu.Lock()
	if k.hit[op] == nil {
		k.hit[op] = map[int]bool{}
	}
	k.hit[op][resp.StatusCode] = true
	k.mu.Unlock()
	if resp.StatusCode != e.want {
		t.Errorf("%s: %s %s = %d %s, want %d", e.name, e.method, e.path, resp.StatusCode, body, e.want)
	}
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s: %s %s = %d, a status the document does not declare for %s %s",
			e.name, e.method, e.path, resp.StatusCode, route.Method, route.Path)
	}
	// ValidateResponse skips HEAD; validate its headers as if for GET, on
	// the HEAD operation, without a body.
	opts := k.opts
	if e.method == http.MethodHead {
		o := *k.opts
		o.ExcludeResponseBody = true
		opts = &o
		getReq := req.Clone(t.Context())
		getReq.Method = http.MethodGet
		in = &openapi3filter.RequestValidationInput{Request: getReq, PathParams: params, Route: route, Options: opts}
		if len(body) != 0 {
			t.Errorf("%s: HEAD %s has a %d byte body", e.name, e.path, len(body))
		}
	}
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts,
	}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(t.Context(), rin); err != nil {
		t.Errorf("%s: %s %s = %d %s does not match the document: %v", e.name, e.method, e.path, resp.StatusCode, body, err)
	}
	return resp, body
}

// run checks each exchange in order, as later ones may depend on state
// that earlier ones made, and returns the response bodies by name.
func (k *contract) run(t *testing.T, srv *trigger.Server, exchanges []exchange) map[string][]byte {
	t.Helper()
	bodies := make(map[string][]byte, len(exchanges))
	for _, e := range exchanges {
		_, bodies[e.name] = k.check(t, srv, e)
	}
	return bodies
}

// member returns the member at path (keys of nested objects) of a JSON
// object body, and whether it is there.
func member(t *testing.T, body []byte, path ...string) (any, bool) {
	t.Helper()
	var v any = decode[map[string]any](t, body)
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// operations lists "METHOD /path" for every operation of the document.
func (k *contract) operations() []string {
	var ops []string
	for path, item := range k.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func replace(s string, pairs ...string) string { return strings.NewReplacer(pairs...).Replace(s) }

func bearer(t *testing.T, sub, role string) string { return "Bearer " + mint(t, sub, role) }

// putPackage stores content at key, as a worker stores a package.
func putPackage(t *testing.T, b *bundle, key string, content []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "p.gpkg")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.files.PutFile(t.Context(), key, src, trigger.ContentTypeGeoPackage); err != nil {
		t.Fatal(err)
	}
}

const (
	unknownUUID = "00000000-0000-4000-8000-000000000000"
	seedBBox    = "[34.811938017107494, 31.95475033759175, 34.82237261707599, 31.96426962177354]"
)

// TestContract sends requests for every route, with valid and each kind of
// invalid input, and checks both sides of each exchange against the
// OpenAPI document. Then it checks that every operation of the document
// was reached.
func TestContract(t *testing.T) {
	t.Parallel()
	k := loadContract(t)
	// Not covered: 413. fasthttp enforces BodyLimit while it reads the
	// request, and app.Test then returns "body size exceeds the given
	// limit" as an error instead of the response. TestServeOverTCP checks
	// the 413 over TCP.
	t.Run("exchanges", func(t *testing.T) {
		t.Run("main", func(t *testing.T) {
			t.Parallel()
			contractMain(t, k)
		})
		t.Run("rate limited", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.RateLimit, c.RateBurst = 1, 1 })
			k.run(t, srv, []exchange{
				{name: "within the limit", method: "GET", path: "/layers", want: 200},
				{name: "over the limit", method: "GET", path: "/layers", want: 429},
				{name: "create over the limit", method: "POST", path: "/create", body: seedBody, want: 429},
				{name: "another subject has its own budget", method: "GET", path: "/layers", want: 200,
					header: []string{"Authorization", bearer(t, "bob", "client")}},
			})
		})
		t.Run("quota", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.QuotaBytes = 1 })
			bodies := k.run(t, srv, []exchange{
				{name: "estimate shows the quota", method: "POST", path: "/estimate", body: seedBody, want: 200},
				{name: "dry run shows the quota", method: "POST", path: "/create?dryRun=true", body: seedBody, want: 200},
				{name: "export larger than the quota", method: "POST", path: "/create", body: seedBody, want: 507},
			})
			for _, name := range []string{"estimate shows the quota", "dry run shows the quota"} {
				if left, ok := member(t, bodies[name], "quotaAvailableBytes"); !ok || left != 1.0 {
					t.Errorf("%s: quotaAvailableBytes = %v, want the whole quota of 1: %s", name, left, bodies[name])
				}
			}
		})
		t.Run("broker down", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
				dead := redis.NewClient(&redis.Options{Addr: testenv.RefusingAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
				t.Cleanup(func() { dead.Close() })
				d.Jobs = job.NewStore(dead, "test", nil)
			})
			k.run(t, srv, []exchange{
				{name: "create", method: "POST", path: "/create", body: seedBody, want: 503},
				{name: "list", method: "GET", path: "/jobs", want: 503},
				{name: "get", method: "GET", path: "/jobs/" + unknownUUID, want: 503},
				{name: "cancel", method: "DELETE", path: "/jobs/" + unknownUUID, want: 503},
				{name: "task status", method: "GET", path: "/taskStatus/" + unknownUUID, want: 503},
			})
		})
		t.Run("export", func(t *testing.T) {
			t.Parallel()
			contractExport(t, k)
		})
		t.Run("eta", func(t *testing.T) {
			t.Parallel()
			contractETA(t, k)
		})
		t.Run("export over the quota", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.QuotaBytes = 1 })
			k.run(t, srv, []exchange{
				{name: "export larger than the quota", method: "POST", path: "/export", body: exportBody(areaROI, ""), want: 507},
				{name: "storage of the quota", method: "GET", path: "/storage", want: 200},
			})
		})
		t.Run("broker down with a quota", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(c *trigger.Config, d *trigger.Deps) {
				c.QuotaBytes = 1 << 30
				dead := redis.NewClient(&redis.Options{Addr: testenv.RefusingAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
				t.Cleanup(func() { dead.Close() })
				d.Jobs = job.NewStore(dead, "test", nil)
			})
			k.run(t, srv, []exchange{
				{name: "estimate reads the quota", method: "POST", path: "/estimate", body: seedBody, want: 503},
			})
		})
		t.Run("monitoring", func(t *testing.T) {
			t.Parallel()
			srv, _ := setupMonitoring(t, false)
			operator := []string{"Authorization", bearer(t, "ops", "operator")}
			noAuth := []string{"Authorization", ""}
			k.run(t, srv, []exchange{
				{name: "monitoring as an operator", method: "GET", path: "/monitoring", want: 200, header: operator},
				{name: "monitoring with the token parameter", method: "GET", path: "/monitoring?token=" + mint(t, "ops", "operator"), want: 200, header: noAuth},
				{name: "monitoring as a client", method: "GET", path: "/monitoring", want: 403},
				{name: "monitoring without a token", method: "GET", path: "/monitoring", want: 401, header: noAuth, docRejects: true},
				{name: "monitoring page", method: "GET", path: "/monitoring/queues", want: 200, header: operator},
				{name: "monitoring asset", method: "GET", path: "/monitoring/favicon.ico", want: 200, header: operator},
				{name: "monitoring page as a client", method: "GET", path: "/monitoring/queues", want: 403},
				{name: "monitoring page without a token", method: "GET", path: "/monitoring/queues", want: 401, header: noAuth, docRejects: true},
			})
		})
		t.Run("preview sources", func(t *testing.T) {
			t.Parallel()
			srv, _, _, _ := setupPreview(t, 300*time.Millisecond, 2)
			k.run(t, srv, []exchange{
				{name: "stored tile", method: "GET", path: tilePath(storeLayer, inside(1)), want: 200},
				{name: "tile the store lacks", method: "GET", path: tilePath(storeLayer, inside(0)), want: 200},
				{name: "source fails", method: "GET", path: tilePath(brokenLayer, inside(0)), want: 502},
				{name: "source too slow", method: "GET", path: tilePath(slowLayer, inside(0)), want: 504},
			})
		})
		t.Run("not ready", func(t *testing.T) {
			t.Parallel()
			srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
				d.Ready = func(context.Context) error { return errors.New("redis down") }
			})
			k.run(t, srv, []exchange{
				{name: "readyz", method: "GET", path: "/readyz", want: 503},
				{name: "healthz", method: "GET", path: "/healthz", want: 200},
			})
		})
		t.Run("storage fault", func(t *testing.T) {
			t.Parallel()
			for _, debug := range []bool{false, true} {
				srv, _ := setup(t, func(c *trigger.Config, d *trigger.Deps) {
					c.Debug = debug
					d.Files = faultyFiles{err: errors.New("disk on fire")}
				})
				k.run(t, srv, []exchange{
					{name: fmt.Sprintf("get, debug %v", debug), method: "GET", path: "/downloads/x.gpkg", want: 500},
					{name: fmt.Sprintf("head, debug %v", debug), method: "HEAD", path: "/downloads/x.gpkg", want: 500},
				})
			}
		})
	})

	if testing.Short() {
		return // the exchanges need Redis and were skipped
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, op := range k.operations() {
		if len(k.hit[op]) == 0 {
			t.Errorf("the document declares %s but no request of the test reached it", op)
			continue
		}
		codes := slices.Sorted(maps.Keys(k.hit[op]))
		t.Logf("%s answered %v", op, codes)
	}
}

// contractMain walks one server through the life of two jobs: every route,
// the three ways to pass a token, each kind of bad input.
func contractMain(t *testing.T, k *contract) {
	srv, b := setup(t)
	operator := bearer(t, "ops", "operator")
	noAuth := []string{"Authorization", ""}

	k.run(t, srv, []exchange{
		{name: "healthz", method: "GET", path: "/healthz", want: 200, header: noAuth},
		{name: "readyz", method: "GET", path: "/readyz", want: 200, header: noAuth},
		{name: "openapi.json", method: "GET", path: "/openapi.json", want: 200, header: noAuth},
		{name: "docs", method: "GET", path: "/docs", want: 200, header: noAuth},
		{name: "web page", method: "GET", path: "/", want: 200, header: noAuth},
		{name: "web asset", method: "GET", path: "/app/app.js", want: 200, header: noAuth},
		{name: "no such asset", method: "GET", path: "/app/nope.js", want: 404, header: noAuth},
		{name: "docs asset", method: "GET", path: "/docs/swagger-ui-bundle.js", want: 200, header: noAuth},
		{name: "no such docs asset", method: "GET", path: "/docs/nope.js", want: 404, header: noAuth},

		{name: "metrics as a client", method: "GET", path: "/metrics", want: 403},
		{name: "metrics as an operator", method: "GET", path: "/metrics", want: 200, header: []string{"Authorization", operator}},
		{name: "metrics without a token", method: "GET", path: "/metrics", want: 401, header: noAuth, docRejects: true},

		{name: "layers", method: "GET", path: "/layers", want: 200},
		{name: "layers with x-api-key", method: "GET", path: "/layers", want: 200,
			header: []string{"Authorization", "", "X-Api-Key", mint(t, "alice", "client")}},
		{name: "layers with a token of no known role", method: "GET", path: "/layers", want: 403,
			header: []string{"Authorization", bearer(t, "eve", "nobody")}},
		{name: "layers with a garbage token", method: "GET", path: "/layers", want: 401,
			header: []string{"Authorization", "Bearer garbage"}},
		{name: "layers with a token signed by someone else", method: "GET", path: "/layers", want: 401,
			header: []string{"Authorization", "Bearer " + foreignToken(t)}},
		{name: "layers with basic auth", method: "GET", path: "/layers", want: 401,
			header: []string{"Authorization", "Basic YWxpY2U6cHc="}, docRejects: true},
		{name: "jobs without a token", method: "GET", path: "/jobs", want: 401, header: noAuth, docRejects: true},
		{name: "create without a token", method: "POST", path: "/create", body: seedBody, want: 401, header: noAuth, docRejects: true},
		{name: "create with an expired token", method: "POST", path: "/create", body: seedBody, want: 401,
			header: []string{"Authorization", "Bearer " + expiredToken(t)}},
		{name: "create with a token of no known role", method: "POST", path: "/create", body: seedBody, want: 403,
			header: []string{"Authorization", bearer(t, "eve", "nobody")}},

		{name: "estimate", method: "POST", path: "/estimate", body: seedBody, want: 200},
		{name: "estimate of an unknown layer", method: "POST", path: "/estimate", want: 404,
			body: replace(seedBody, "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", unknownUUID)},
		{name: "estimate of malformed JSON", method: "POST", path: "/estimate", body: `{"dbId":`, want: 400, docRejects: true},
		{name: "dry run", method: "POST", path: "/create?dryRun=true", body: seedBody, want: 200},
		{name: "dry run of a bad bbox", method: "POST", path: "/create?dryRun=true", want: 400,
			body: replace(seedBody, seedBBox, "[35, 32, 34, 31]")},
	})

	// Preview tiles of the demo layer.
	tile := tilePath(demoLayer, inside(0))
	resp, _ := k.check(t, srv, exchange{name: "preview tile", method: "GET", path: tile, want: 200})
	k.run(t, srv, []exchange{
		{name: "preview tile not modified", method: "GET", path: tile, want: 304, header: []string{"If-None-Match", resp.Header.Get("ETag")}},
		{name: "preview tile with the token parameter", method: "GET", path: tile + "?token=" + mint(t, "alice", "client"), want: 200, header: noAuth},
		{name: "preview tile without a token", method: "GET", path: tile, want: 401, header: noAuth, docRejects: true},
		{name: "preview tile with a token of no known role", method: "GET", path: tile, want: 403, header: []string{"Authorization", bearer(t, "eve", "nobody")}},
		{name: "preview tile of a bad layer id", method: "GET", path: "/layers/nope/tiles/0/1/0", want: 400, docRejects: true},
		{name: "preview tile of a bad zoom", method: "GET", path: "/layers/" + demoLayer + "/tiles/23/0/0", want: 400, docRejects: true},
		{name: "preview tile of a fractional column", method: "GET", path: "/layers/" + demoLayer + "/tiles/1/0.5/0", want: 400, docRejects: true},
		{name: "preview tile beyond the columns", method: "GET", path: "/layers/" + demoLayer + "/tiles/0/2/0", want: 400},
		{name: "preview tile of an unknown layer", method: "GET", path: tilePath(unknownUUID, inside(0)), want: 404},
		{name: "preview tile beyond the layer's zooms", method: "GET", path: "/layers/" + demoLayer + "/tiles/19/0/0", want: 404},
		{name: "preview tile outside the footprint", method: "GET", path: "/layers/" + demoLayer + "/tiles/8/0/0", want: 404},
	})

	// Bad input to POST /create.
	bad := []struct {
		name       string
		body       string
		want       int
		docRejects bool
	}{
		{"malformed JSON", `{"dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",`, 400, true},
		{"empty body", ``, 400, true},
		{"not an object", `[1, 2]`, 400, true},
		// exportGetMap does not forbid other members; the server does.
		{"unknown field", replace(seedBody, `"priority": 0`, `"priority": 0, "format": "png"`), 400, false},
		{"missing fields", `{"dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8"}`, 400, true},
		{"dbId not a uuid", replace(seedBody, "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "nope"), 400, true},
		{"dbId a number", replace(seedBody, `"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8"`, "7"), 400, true},
		{"unknown dbId", replace(seedBody, "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", unknownUUID), 404, false},
		{"bbox of three numbers", replace(seedBody, seedBBox, "[34.8, 31.9, 34.9]"), 400, true},
		{"bbox of strings", replace(seedBody, seedBBox, `["a", "b", "c", "d"]`), 400, true},
		{"bbox min above max", replace(seedBody, seedBBox, "[35, 32, 34, 31]"), 400, false},
		{"bbox outside the world", replace(seedBody, seedBBox, "[-181, 0, 1, 1]"), 400, false},
		{"bbox outside the footprint", replace(seedBody, seedBBox, "[10, 31.95, 11, 31.96]"), 400, false},
		{"bbox with too many tiles", replace(seedBody, seedBBox, "[34.2, 29.4, 35.9, 33.4]"), 400, false},
		{"resolution not a number", replace(seedBody, "0.0000429153442382812", `"fine"`), 400, true},
		{"resolution negative", replace(seedBody, "0.0000429153442382812", "-1"), 400, false},
		{"resolution coarser than zoom 0", replace(seedBody, "0.0000429153442382812", "2"), 400, false},
		{"resolution finer than the layer", replace(seedBody, "0.0000429153442382812", "0.0000001"), 400, false},
		{"callbackURLs not an array", replace(seedBody, `["http://example.getmap.com/callback", "http://example.getmap.com/callback2"]`, `"http://a.test"`), 400, true},
		{"callback not http", replace(seedBody, "http://example.getmap.com/callback2", "ftp://example.getmap.com/cb"), 400, false},
		{"crs not supported", replace(seedBody, "EPSG:4326", "EPSG:3857"), 400, true},
		{"priority negative", replace(seedBody, `"priority": 0`, `"priority": -1`), 400, true},
		{"priority fractional", replace(seedBody, `"priority": 0`, `"priority": 1.5`), 400, false},
	}
	var exchanges []exchange
	for _, tc := range bad {
		exchanges = append(exchanges, exchange{name: "create: " + tc.name, method: "POST", path: "/create", body: tc.body, want: tc.want, docRejects: tc.docRejects})
	}
	k.run(t, srv, exchanges)

	// The first job: created, joined, completed, served from cache.
	_, body := k.check(t, srv, exchange{name: "create", method: "POST", path: "/create", body: seedBody, want: 200})
	first := decode[created](t, body)
	_, body = k.check(t, srv, exchange{name: "create again joins", method: "POST", path: "/create?dryRun=false", body: seedBody, want: 200})
	if got := decode[created](t, body); got.ID != first.ID {
		t.Fatalf("second POST /create = job %s, want the running job %s", got.ID, first.ID)
	}
	// The second job, a different bbox: bob joins it.
	secondBody := replace(seedBody, seedBBox, "[34.85, 31.95, 34.86, 31.96]")
	_, body = k.check(t, srv, exchange{name: "create another", method: "POST", path: "/create", body: secondBody, want: 200})
	second := decode[created](t, body)
	if second.ID == first.ID {
		t.Fatalf("a different bbox joined job %s", first.ID)
	}
	bob := []string{"Authorization", bearer(t, "bob", "client")}
	k.check(t, srv, exchange{name: "bob joins", method: "POST", path: "/create", body: secondBody, want: 200, header: bob})

	bodies := k.run(t, srv, []exchange{
		{name: "list", method: "GET", path: "/jobs", want: 200},
		{name: "list a page", method: "GET", path: "/jobs?limit=1", want: 200},
		{name: "list the last page", method: "GET", path: "/jobs?limit=1&offset=1", want: 200},
		{name: "list by status", method: "GET", path: "/jobs?status=In-Progress", want: 200},
		{name: "list as x-api-key", method: "GET", path: "/jobs", want: 200,
			header: []string{"Authorization", "", "X-Api-Key", mint(t, "alice", "client")}},
		{name: "list an unknown status", method: "GET", path: "/jobs?status=Bogus", want: 400, docRejects: true},
		{name: "list limit 0", method: "GET", path: "/jobs?limit=0", want: 400, docRejects: true},
		{name: "list limit above 500", method: "GET", path: "/jobs?limit=501", want: 400, docRejects: true},
		{name: "list limit not a number", method: "GET", path: "/jobs?limit=ten", want: 400, docRejects: true},
		{name: "list offset negative", method: "GET", path: "/jobs?offset=-1", want: 400, docRejects: true},

		{name: "get", method: "GET", path: "/jobs/" + first.ID, want: 200},
		{name: "get as an operator", method: "GET", path: "/jobs/" + first.ID, want: 200, header: []string{"Authorization", operator}},
		{name: "get another's job", method: "GET", path: "/jobs/" + first.ID, want: 404, header: bob},
		{name: "get an unknown job", method: "GET", path: "/jobs/" + unknownUUID, want: 404},
		{name: "get a bad id", method: "GET", path: "/jobs/nope", want: 400, docRejects: true},
		{name: "task status", method: "GET", path: "/taskStatus/" + first.ID, want: 200},
		{name: "task status of an unknown job", method: "GET", path: "/taskStatus/" + unknownUUID, want: 404},
		{name: "task status of a bad id", method: "GET", path: "/taskStatus/nope", want: 400, docRejects: true},

		{name: "cancel as a joiner", method: "DELETE", path: "/jobs/" + second.ID, want: 403, header: bob},
		{name: "cancel", method: "DELETE", path: "/jobs/" + second.ID, want: 200},
		{name: "cancel twice", method: "DELETE", path: "/jobs/" + second.ID, want: 409},
		{name: "cancel as an operator", method: "DELETE", path: "/jobs/" + second.ID, want: 409, header: []string{"Authorization", operator}},
		{name: "cancel an unknown job", method: "DELETE", path: "/jobs/" + unknownUUID, want: 404},
		{name: "cancel a bad id", method: "DELETE", path: "/jobs/nope", want: 400, docRejects: true},
		{name: "get a cancelled job", method: "GET", path: "/jobs/" + second.ID, want: 200},
		{name: "task status of a cancelled job", method: "GET", path: "/taskStatus/" + second.ID, want: 200},
		{name: "list cancelled", method: "GET", path: "/jobs?status=Cancelled", want: 200},
	})
	// The shapes the document allows were produced, not only allowed.
	if next, ok := member(t, bodies["list a page"], "nextOffset"); next != 1.0 || !ok {
		t.Errorf("GET /jobs?limit=1 of two jobs: nextOffset = %v, want 1", next)
	}
	if next, ok := member(t, bodies["list the last page"], "nextOffset"); next != nil || !ok {
		t.Errorf("GET /jobs?limit=1&offset=1 of two jobs: nextOffset = %v, want null", next)
	}
	if _, ok := member(t, bodies["get"], "result"); ok {
		t.Errorf("GET /jobs/{id} of a running job has a result: %s", bodies["get"])
	}
	if fromCache, _ := member(t, bodies["get"], "fromCache"); fromCache != false {
		t.Errorf("GET /jobs/{id} of a job the caller created: fromCache = %v, want false: %s", fromCache, bodies["get"])
	}
	if success, _ := member(t, bodies["get a cancelled job"], "result", "success"); success != false {
		t.Errorf("GET /jobs/{id} of a cancelled job: result.success = %v, want false: %s", success, bodies["get a cancelled job"])
	}

	// The worker finishes the first job.
	running, err := b.jobs.Get(t.Context(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := b.jobs.Complete(t.Context(), first.ID, job.Result{FileKey: job.PackageKey(first.ID, running.Spec.PackageName), FileSize: 1000, SHA256: strings.Repeat("0f", 32), TilesStored: 18}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Its callbacks were told, one of them in vain.
	for i, d := range []job.Delivery{
		{Outcome: job.DeliveryDelivered, Code: 200, Attempts: 1},
		{Outcome: job.DeliveryFailed, Code: 502, Error: "bad gateway", Attempts: 3},
	} {
		d.Callback, d.At = job.Callback{URL: fmt.Sprintf("http://cb%d.test/", i), BBox: []float64{34.8, 31.9, 34.9, 32}}, time.Now()
		if err := b.jobs.RecordDelivery(t.Context(), first.ID, d); err != nil {
			t.Fatal(err)
		}
	}
	content := []byte(strings.Repeat("0123456789", 100))
	putPackage(t, b, j.FileKey, content)
	// carol asks for the same tiles: her first request of the job is
	// answered from its package.
	carol := []string{"Authorization", bearer(t, "carol", "client")}
	_, body = k.check(t, srv, exchange{name: "create served from cache", method: "POST", path: "/create", want: 200,
		body: replace(seedBody, "34.811938017107494", "34.8119"), header: carol})
	hit := decode[map[string]any](t, body)
	uri, _ := hit["fileUri"].(string)
	download, ok := strings.CutPrefix(uri, "http://exporter.test")
	if hit["status"] != "Completed" || !ok {
		t.Fatalf("POST /create after completion = %s, want a naiveCacheJobResponse with a fileUri", body)
	}
	bodies = k.run(t, srv, []exchange{
		{name: "get a completed job", method: "GET", path: "/jobs/" + first.ID, want: 200},
		{name: "get a job served from the cache", method: "GET", path: "/jobs/" + first.ID, want: 200, header: carol},
		{name: "task status of a completed job", method: "GET", path: "/taskStatus/" + first.ID, want: 200},
		{name: "list completed", method: "GET", path: "/jobs?status=Completed", want: 200, header: carol},
		{name: "cancel a completed job", method: "DELETE", path: "/jobs/" + first.ID, want: 409},

		{name: "download the fileUri", method: "GET", path: download, want: 200},
		{name: "download with the token parameter", method: "GET", path: download + "?token=" + mint(t, "alice", "client"), want: 200, header: noAuth},
		{name: "download a range", method: "GET", path: download, want: 206, header: []string{"Range", "bytes=10-19"}},
		{name: "download a suffix range", method: "GET", path: download, want: 206, header: []string{"Range", "bytes=-5"}},
		{name: "download a range past the end", method: "GET", path: download, want: 416, header: []string{"Range", "bytes=5000-6000"}},
		{name: "download with a stale If-Range", method: "GET", path: download, want: 200, header: []string{"Range", "bytes=0-0", "If-Range", `"stale"`}},
		{name: "download a missing package", method: "GET", path: "/downloads/" + first.ID + "/missing.gpkg", want: 404},
		{name: "download a package stored before per-job paths", method: "GET", path: "/downloads/missing.gpkg", want: 404},
		{name: "download from a job id that is no uuid", method: "GET", path: "/downloads/nope/x.gpkg", want: 404, docRejects: true},
		{name: "download a name that is no package", method: "GET", path: "/downloads/p.txt", want: 404, docRejects: true},
		{name: "download a hidden name", method: "GET", path: "/downloads/.hidden.gpkg", want: 404, docRejects: true},
		{name: "download without a token", method: "GET", path: download, want: 401, header: noAuth, docRejects: true},
		{name: "head", method: "HEAD", path: download, want: 200},
		{name: "head a range", method: "HEAD", path: download, want: 206, header: []string{"Range", "bytes=0-99"}},
		{name: "head a range past the end", method: "HEAD", path: download, want: 416, header: []string{"Range", "bytes=5000-"}},
		{name: "head a missing package", method: "HEAD", path: "/downloads/" + first.ID + "/missing.gpkg", want: 404},
		{name: "head a missing package stored before per-job paths", method: "HEAD", path: "/downloads/missing.gpkg", want: 404},
		{name: "head without a token", method: "HEAD", path: download, want: 401, header: noAuth, docRejects: true},
	})
	if fromCache, _ := member(t, bodies["get a completed job"], "fromCache"); fromCache != false {
		t.Errorf("GET /jobs/{id} of a completed job the caller created: fromCache = %v, want false: %s", fromCache, bodies["get a completed job"])
	}
	if fromCache, _ := member(t, bodies["get a job served from the cache"], "fromCache"); fromCache != true {
		t.Errorf("GET /jobs/{id} after the caller was served from the cache: fromCache = %v, want true: %s", fromCache, bodies["get a job served from the cache"])
	}
	if jobs, _ := member(t, bodies["list completed"], "jobs"); len(asSlice(jobs)) != 1 || asSlice(jobs)[0].(map[string]any)["fromCache"] != true {
		t.Errorf("GET /jobs?status=Completed after the caller was served from the cache: %s, want the one job with fromCache true", bodies["list completed"])
	}
	if sum, _ := member(t, bodies["get a completed job"], "sha256"); sum != strings.Repeat("0f", 32) {
		t.Errorf("GET /jobs/{id} of a completed job: sha256 = %v, want the package's digest: %s", sum, bodies["get a completed job"])
	}
	if success, _ := member(t, bodies["get a completed job"], "result", "success"); success != true {
		t.Errorf("GET /jobs/{id} of a completed job: result.success = %v, want true: %s", success, bodies["get a completed job"])
	}
	if cbs, _ := member(t, bodies["get a completed job"], "callbacks"); len(asSlice(cbs)) != 2 {
		t.Errorf("GET /jobs/{id} of a completed job: callbacks = %v, want the two deliveries", cbs)
	}
	if got := bodies["download the fileUri"]; string(got) != string(content) {
		t.Errorf("GET %s = %d bytes, want the package's %d", download, len(got), len(content))
	}
}

// contractExport walks one server through an /export job: the area
// request, its estimate, status and bad input, the cached answer and the
// metadata download.
func contractExport(t *testing.T, k *contract) {
	srv, b := setup(t)
	_, body := k.check(t, srv, exchange{name: "export", method: "POST", path: "/export", body: exportBody(areaROI, ""), want: 200})
	id, _ := member(t, body, "jobId")
	jobID, _ := id.(string)
	k.run(t, srv, []exchange{
		{name: "export again joins", method: "POST", path: "/export", body: exportBody(areaROIRedigitised, ""), want: 200},
		{name: "estimate an area", method: "POST", path: "/estimate", body: exportBody(areaROI, ""), want: 200},
		{name: "estimate a bad area", method: "POST", path: "/estimate", body: exportBody(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Polygon","coordinates":[[[35,31],[35.1,31]]]}}]}`, ""), want: 400},
		{name: "export of an unknown layer", method: "POST", path: "/export", want: 404,
			body: replace(exportBody(areaROI, ""), "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", unknownUUID)},
		{name: "export outside the footprint", method: "POST", path: "/export", want: 400,
			body: exportBody(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Polygon","coordinates":[[[10,10],[11,10],[11,11],[10,10]]]}}]}`, "")},
		{name: "export with an unknown field", method: "POST", path: "/export", body: exportBody(areaROI, `,"bbox":[1,2,3,4]`), want: 400, docRejects: true},
		{name: "export of a Point", method: "POST", path: "/export", want: 400, docRejects: true,
			body: exportBody(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Point","coordinates":[35,31]}}]}`, "")},
		{name: "export status", method: "GET", path: "/export/" + jobID + "/status", want: 200},
		{name: "export status of an unknown job", method: "GET", path: "/export/" + unknownUUID + "/status", want: 404},
		{name: "export status of a bad id", method: "GET", path: "/export/nope/status", want: 400, docRejects: true},
		{name: "storage", method: "GET", path: "/storage", want: 200},
	})
	j, err := b.jobs.Get(t.Context(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	key := job.PackageKey(jobID, j.Spec.PackageName)
	if _, _, err := b.jobs.Complete(t.Context(), jobID, job.Result{FileKey: key, FileSize: 1000, MetadataSize: 13}, time.Hour); err != nil {
		t.Fatal(err)
	}
	putPackage(t, b, key, []byte(strings.Repeat("0123456789", 100)))
	putPackage(t, b, job.MetadataFileKey(key), []byte(`{"jobId":"x"}`))
	_, body = k.check(t, srv, exchange{name: "export served from cache", method: "POST", path: "/export", body: exportBody(areaROIRedigitised, ""), want: 200})
	meta, _ := member(t, body, "links", "metadataURI")
	uri, _ := meta.(string)
	k.run(t, srv, []exchange{
		{name: "download the metadataURI", method: "GET", path: strings.TrimPrefix(uri, "http://exporter.test"), want: 200},
		{name: "export status of a completed job", method: "GET", path: "/export/" + jobID + "/status", want: 200},
	})
}

// contractETA: a job with progress enough for an estimate answers
// etaSeconds on GET /jobs/{id} and on its /export status; one without
// does not.
func contractETA(t *testing.T, k *contract) {
	srv, b := setup(t)
	// 19 × 10 tiles at zoom 14 and the pyramid above them.
	_, body := k.check(t, srv, exchange{name: "create a larger export", method: "POST", path: "/create", want: 200,
		body: replace(seedBody, seedBBox, "[34.80, 31.90, 35.00, 32.00]")})
	id := decode[created](t, body).ID
	_, before := k.check(t, srv, exchange{name: "no eta before progress", method: "GET", path: "/jobs/" + id, want: 200})
	// The first progress report came 10 seconds ago with 20 tiles done;
	// 200 are done now.
	now := time.Now()
	ago := job.NewStore(b.rdb, "test", func() time.Time { return now.Add(-10 * time.Second) })
	if err := ago.SetProgress(t.Context(), id, "0", 20); err != nil {
		t.Fatal(err)
	}
	if err := b.jobs.SetProgress(t.Context(), id, "0", 200); err != nil {
		t.Fatal(err)
	}
	bodies := k.run(t, srv, []exchange{
		{name: "eta of a job under way", method: "GET", path: "/jobs/" + id, want: 200},
		{name: "eta in the export status", method: "GET", path: "/export/" + id + "/status", want: 200},
	})
	j, err := b.jobs.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	// 180 tiles in 10 s; the rest at that rate, give or take the time the
	// requests took.
	want := float64(j.Spec.TilesTotal-200) / 18
	for _, name := range []string{"eta of a job under way", "eta in the export status"} {
		if eta, _ := member(t, bodies[name], "etaSeconds"); eta == nil || eta.(float64) < want-1 || eta.(float64) > want+1 {
			t.Errorf("%s: etaSeconds = %v, want about %.0f: %s", name, eta, want, bodies[name])
		}
	}
	if eta, ok := member(t, before, "etaSeconds"); ok {
		t.Errorf("GET /jobs/{id} before any progress: etaSeconds = %v, want none", eta)
	}
}

// foreignToken is a well-formed token signed with a key the server does
// not know.
func foreignToken(t *testing.T) string {
	t.Helper()
	key, err := auth.NewHS256Key([]byte("another secret of thirty-two bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(key, auth.MintClaims{Subject: "mallory", Role: "operator", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// expiredToken is a token of alice that expired an hour ago.
func expiredToken(t *testing.T) string {
	t.Helper()
	key, err := auth.NewHS256Key(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(key, auth.MintClaims{Subject: "alice", Role: "client", TTL: time.Hour, Now: time.Now().Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestContractRoutes checks the document against the server's routes: every
// fiber route has an operation in the document. TestContract checks the
// other direction.
func TestContractRoutes(t *testing.T) {
	t.Parallel()
	k := loadContract(t)
	srv, _ := setup(t)
	documented := map[string]bool{}
	for _, op := range k.operations() {
		documented[op] = true
	}
	for _, r := range srv.App().GetRoutes(true) {
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "{"+p+"}", 1)
		}
		op := r.Method + " " + path
		// fiber registers HEAD for every GET route; the document lists HEAD
		// only where it means something different from GET without a body.
		if r.Method == http.MethodHead && documented["GET "+path] {
			continue
		}
		if !documented[op] {
			t.Errorf("the server routes %s (fiber %s %s), the document does not", op, r.Method, r.Path)
		}
	}
	// TestDocsInBrowser checks that /docs shows each one.
}

// TestContractSeedDiscriminator shows why the document departs from the
// specification: the specification's 200 response of POST /create, a oneOf
// with discriminator propertyName response, rejects both responses it
// describes, because neither has a response member. The discriminator on
// CommonResponse, reached through allOf, selects nothing and is harmless.
func TestContractSeedDiscriminator(t *testing.T) {
	t.Parallel()
	doc, err := trigger.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	seed200 := &openapi3.Schema{
		OneOf:         openapi3.SchemaRefs{schemas["createGpkgJobResponse"], schemas["naiveCacheJobResponse"]},
		Discriminator: &openapi3.Discriminator{PropertyName: "response"},
	}
	ours := doc.Paths.Find("/create").Post.Responses.Status(200).Value.Content.Get("application/json").Schema.Value
	responses := map[string]map[string]any{
		"createGpkgJobResponse": {
			"status": "In-Progress", "id": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
			"taskIds": []any{"0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71"},
		},
		"naiveCacheJobResponse": {
			"status": "Completed", "fileUri": "http://exporter.test/downloads/p.gpkg", "expirationTime": "2030-01-02",
			"fileSize": 4096.0, "dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "packageName": "p",
			"bbox": []any{34.8, 31.9, 34.9, 32.0}, "targetResolution": 0.0000429153442382812,
			"requestId": "0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71", "success": true,
		},
	}
	for name, v := range responses {
		if err := seed200.VisitJSON(v); err == nil || !strings.Contains(err.Error(), `discriminator property "response"`) {
			t.Errorf("the specification's 200 schema on a %s = %v, want the missing discriminator error", name, err)
		}
		if err := ours.VisitJSON(v); err != nil {
			t.Errorf("the document's 200 schema on a %s = %v, want nil", name, err)
		}
		// Through allOf, with CommonResponse's discriminator in place.
		if err := schemas[name].Value.VisitJSON(v); err != nil {
			t.Errorf("components.schemas.%s on a valid response = %v, want nil", name, err)
		}
		if schemas["CommonResponse"].Value.Discriminator == nil {
			t.Errorf("CommonResponse lost the specification's discriminator")
		}
	}
}

// TestHTTPEdgeCases checks corners of the document and of HTTP where a
// server is easily wrong: a dryRun that is not a boolean, unsatisfiable,
// unreadable and multiple byte ranges, and If-None-Match.
func TestHTTPEdgeCases(t *testing.T) {
	t.Parallel()
	k := loadContract(t)
	srv, b := setup(t)
	putPackage(t, b, "packages/p.gpkg", []byte(strings.Repeat("0123456789", 100)))

	t.Run("dryRun not a boolean", func(t *testing.T) {
		// create reads dryRun with c.QueryBool, which treats anything
		// strconv.ParseBool rejects as false: a client that meant a dry run
		// gets a real job, and its quota reservation.
		e := exchange{method: "POST", path: "/create?dryRun=yes", body: seedBody}
		if err := openapi3filter.ValidateRequest(t.Context(), k.requestInput(t, e)); err == nil {
			t.Fatal("the document accepts dryRun=yes, want it rejected")
		}
		resp, body := do(t, srv, e.method, e.path, e.body)
		if resp.StatusCode != 400 {
			t.Errorf("POST /create?dryRun=yes = %d %s, want 400", resp.StatusCode, body)
		}
	})
	t.Run("empty suffix range", func(t *testing.T) {
		// RFC 9110 section 14.1.3: a suffix-length of 0 is unsatisfiable.
		resp, _ := do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", "bytes=-0")
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */1000" {
			t.Errorf("GET with Range: bytes=-0 = %d, Content-Range %q; want 416, bytes */1000", resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	})
	for _, rng := range []string{"items=0-1", "bytes=abc", "bytes=0-1,5-6"} {
		t.Run("range "+rng, func(t *testing.T) {
			// RFC 9110 section 14.2: a Range of an unknown unit MUST be
			// ignored, an invalid one may be; 416 is only for a valid range
			// set that misses the representation. Several satisfiable
			// ranges may be served as one 200.
			resp, body := do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", rng)
			if resp.StatusCode != 200 || len(body) != 1000 {
				t.Errorf("GET with Range: %s = %d, %d bytes; want 200, 1000 bytes", rng, resp.StatusCode, len(body))
			}
		})
	}
	t.Run("If-None-Match", func(t *testing.T) {
		// download's doc comment promises 304 for If-None-Match on the ETag.
		resp, _ := do(t, srv, "GET", "/downloads/p.gpkg", "")
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("GET /downloads/p.gpkg has no ETag")
		}
		resp, body := do(t, srv, "GET", "/downloads/p.gpkg", "", "If-None-Match", etag)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("GET with If-None-Match: %s = %d, %d bytes; want 304, none", etag, resp.StatusCode, len(body))
		}
	})
}

// requestInput routes e's request for ValidateRequest.
func (k *contract) requestInput(t *testing.T, e exchange) *openapi3filter.RequestValidationInput {
	t.Helper()
	req := request(t, e)
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s has no operation in the document: %v", e.method, e.path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: k.opts}
}
