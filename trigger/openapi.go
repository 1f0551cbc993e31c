package trigger

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"

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

// docsRoutes serves the document at /openapi.json and a page for people at
// /docs. Both are public.
func (s *Server) docsRoutes() {
	s.app.Get("/openapi.json", func(c *fiber.Ctx) error {
		return c.Type("json").Send(s.openapiJSON)
	})
	s.app.Get("/docs", func(c *fiber.Ctx) error {
		return c.Type("html").Send(s.docsHTML)
	})
}

// docsTemplate renders the document for people: every route with its
// summary, and the document itself for tools.
var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Info.Title}} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code{background:#f3f3f3;padding:0 .2em}section{border-top:1px solid #ddd;padding:.5rem 0}</style></head>
<body><h1>{{.Info.Title}} {{.Info.Version}}</h1><p>{{.Info.Description}}</p>
<p>The machine-readable document is at <a href="openapi.json">/openapi.json</a>.</p>
{{range $path, $item := .Paths.Map}}{{range $method, $op := $item.Operations}}
<section><h2><code>{{$method}} {{$path}}</code></h2><p>{{$op.Summary}}</p>{{with $op.Description}}<p>{{.}}</p>{{end}}
<ul>{{range $code, $resp := $op.Responses.Map}}<li><code>{{$code}}</code> {{with $resp.Value}}{{with .Description}}{{.}}{{end}}{{end}}</li>{{end}}</ul></section>
{{end}}{{end}}</body></html>`))

// renderDocs prepares /openapi.json and /docs from the embedded document.
func renderDocs() (jsonDoc, page []byte, err error) {
	doc, err := LoadOpenAPI()
	if err != nil {
		return nil, nil, err
	}
	if jsonDoc, err = doc.MarshalJSON(); err != nil {
		return nil, nil, fmt.Errorf("encode openapi document: %w", err)
	}
	var b bytes.Buffer
	if err := docsTemplate.Execute(&b, doc); err != nil {
		return nil, nil, fmt.Errorf("render docs page: %w", err)
	}
	return jsonDoc, b.Bytes(), nil
}
