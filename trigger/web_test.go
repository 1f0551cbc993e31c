package trigger

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestWebRoutes checks that / serves the export tool's page and that every
// asset the page links is served from the embedded bundle with its type.
// Whether the bundle is up to date with trigger/web/src is checked by
// `npm run verify` in trigger/web (rebuild, then git diff on dist/), not here:
// it needs npm.
func TestWebRoutes(t *testing.T) {
	t.Parallel()
	s := &Server{}
	s.app = fiber.New(fiber.Config{ErrorHandler: s.handleError})
	s.webRoutes()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := s.app.Test(httptest.NewRequest(http.MethodGet, path, nil), -1)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: read body: %v", path, err)
		}
		return resp, string(b)
	}

	resp, page := get("/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(page, `<div id="map"`) || !strings.Contains(page, `id="export-form"`) {
		t.Errorf("GET / is not the export tool's page:\n%.300s", page)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("GET / has no %s header", h)
		}
	}

	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	links := regexp.MustCompile(`(?:src|href)="(app/[^"]+)"`).FindAllStringSubmatch(page, -1)
	seen := map[string]bool{}
	for _, m := range links {
		path := "/" + m[1]
		resp, body := get(path)
		ext := path[strings.LastIndex(path, "."):]
		seen[ext] = true
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want[ext] {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), want[ext])
		}
		if len(body) < 1000 {
			t.Errorf("GET %s: %d bytes, the bundle looks empty", path, len(body))
		}
	}
	if !seen[".js"] || !seen[".css"] {
		t.Errorf("the page links no script or no stylesheet under app/: %v", links)
	}

	for _, path := range []string{"/app/missing.js", "/app/app.map", "/app/..%2findex.html"} {
		if resp, body := get(path); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"message"`) {
			t.Errorf("GET %s = %d %s, want 404 with a message", path, resp.StatusCode, body)
		}
	}
}
