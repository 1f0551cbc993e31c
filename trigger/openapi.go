package trigger

import (
	"embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
)

// OpenAPIYAML is the API's OpenAPI 3 document: the specification's /create
// contract with its schemas unchanged, plus every other route.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// LoadOpenAPI parses and validates the embedded document.
func LoadOpenAPI() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	return doc, nil
}

// docsDist is the interactive API reference: Swagger UI, bundled offline
// from the pinned swagger-ui-dist package with our page and its start-up
// script. It is built with npm and committed, so building the binary needs
// no npm; trigger/apidocs/README.md says how to rebuild it.
//
//go:embed apidocs/dist
var docsDist embed.FS

// docsCSP confines the reference to its own origin: Swagger UI fetches
// /openapi.json and, when the reader tries an operation, this server's
// routes. It sets inline styles and draws data-URL images.
const docsCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// docsRoutes serves the document at /openapi.json, the reference at /docs
// and its assets at /docs/{name}. All are public: the page holds no data,
// and a request tried from it carries a token only when the reader gives
// one with Authorize.
func (s *Server) docsRoutes() {
	s.app.Get("/openapi.json", func(c *fiber.Ctx) error {
		return c.Type("json").Send(s.openapiJSON)
	})
	docs := assets{files: docsDist, dir: "apidocs/dist", csp: docsCSP}
	s.app.Get("/docs", func(c *fiber.Ctx) error { return docs.serve(c, "index.html") })
	s.app.Get("/docs/:name", func(c *fiber.Ctx) error { return docs.serve(c, c.Params("name")) })
}

// openapiJSON is the embedded document as JSON, for /openapi.json.
func openapiJSON() ([]byte, error) {
	doc, err := LoadOpenAPI()
	if err != nil {
		return nil, err
	}
	b, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode openapi document: %w", err)
	}
	return b, nil
}
