package trigger

import (
	"embed"
	"io/fs"
	"path"

	"github.com/gofiber/fiber/v2"
)

// webDist is the built export tool: index.html and its assets under app/.
// It is built from trigger/web/src with npm and committed, so building the
// binary needs no npm; trigger/web/README.md says how to rebuild it.
//
//go:embed web/dist
var webDist embed.FS

// webTypes are the content types of the tool's assets, by extension.
var webTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
}

// webCSP confines the page to its own origin. OpenLayers sets inline
// styles on the elements it creates, and draws into canvases and data URLs.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// webRoutes serves the export tool at / and its assets at /app/{name}.
// Both are public: the page holds no data, and every API call it makes
// carries the user's token.
func (s *Server) webRoutes() {
	index, err := webDist.ReadFile("web/dist/index.html")
	if err != nil {
		panic("trigger: the embedded web tool has no index.html: " + err.Error())
	}
	headers := func(c *fiber.Ctx) {
		c.Set("Content-Security-Policy", webCSP)
		c.Set("X-Content-Type-Options", "nosniff")
		// The page is first opened with ?token=; keep it out of Referer.
		c.Set("Referrer-Policy", "no-referrer")
		// Names are not content-hashed: revalidate every time.
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	s.app.Get("/", func(c *fiber.Ctx) error {
		headers(c)
		c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
		return c.Send(index)
	})
	s.app.Get("/app/:name", func(c *fiber.Ctx) error {
		name := c.Params("name")
		typ, ok := webTypes[path.Ext(name)]
		if !ok || !fs.ValidPath(name) {
			return errorf(fiber.StatusNotFound, "no asset %q", name)
		}
		data, err := webDist.ReadFile("web/dist/app/" + name)
		if err != nil {
			return errorf(fiber.StatusNotFound, "no asset %q", name)
		}
		headers(c)
		c.Set(fiber.HeaderContentType, typ)
		return c.Send(data)
	})
}
