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
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// webCSP confines the page to its own origin. OpenLayers sets inline
// styles on the elements it creates, and draws into canvases and data URLs.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// webRoutes serves the export tool at / and its assets at /app/{name}.
// Both are public: the page holds no data, and every API call it makes
// carries the user's token.
func (s *Server) webRoutes() {
	web := assets{files: webDist, dir: "web/dist", csp: webCSP}
	s.app.Get("/", func(c *fiber.Ctx) error { return web.serve(c, "index.html") })
	s.app.Get("/app/:name", func(c *fiber.Ctx) error { return web.serve(c, "app/"+c.Params("name")) })
}

// assets serves the files of an embedded page: its index.html and the
// assets it links, with the page's Content-Security-Policy.
type assets struct {
	files embed.FS
	dir   string
	csp   string
}

// serve answers with the file name of a.dir, or 404 when there is no such
// file or its type is not one of webTypes.
func (a assets) serve(c *fiber.Ctx, name string) error {
	typ, ok := webTypes[path.Ext(name)]
	if !ok || !fs.ValidPath(name) {
		return errorf(fiber.StatusNotFound, "no asset %q", path.Base(name))
	}
	data, err := a.files.ReadFile(a.dir + "/" + name)
	if err != nil {
		return errorf(fiber.StatusNotFound, "no asset %q", path.Base(name))
	}
	c.Set("Content-Security-Policy", a.csp)
	c.Set("X-Content-Type-Options", "nosniff")
	// The page is first opened with ?token=; keep it out of Referer.
	c.Set("Referrer-Policy", "no-referrer")
	// Names are not content-hashed: revalidate every time.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentType, typ)
	return c.Send(data)
}
