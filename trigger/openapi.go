package trigger

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strings"

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

// docsTemplate renders the document for people: the description, every
// operation grouped by tag with its parameters, body and responses, and
// the schemas. The document itself is linked for tools.
var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px}
section.op{border-top:1px solid #ddd;padding:.5rem 0}
h3 code{font-size:1.05em}.m{display:inline-block;min-width:4.5em;font-weight:bold}
table{border-collapse:collapse;margin:.3rem 0 .8rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa}.public{color:#2a7a2a}.auth{color:#8a5a00}.muted{color:#666}
nav ul{columns:2}
</style></head>
<body>
<h1>{{.Title}} <small class="muted">{{.Version}}</small></h1>
{{template "blocks" .Description}}
<p>The machine-readable document is at <a href="openapi.json">/openapi.json</a>.</p>
<nav><h2>Operations</h2><ul>{{range .Groups}}{{range .Ops}}
<li><a href="#{{.Anchor}}"><code>{{.Method}} {{.Path}}</code></a> {{.Summary}}</li>{{end}}{{end}}</ul></nav>
{{range .Groups}}<h2>{{.Name}}</h2>{{with .Description}}<p>{{template "inline" .}}</p>{{end}}
{{range .Ops}}<section class="op" id="{{.Anchor}}">
<h3><code><span class="m">{{.Method}}</span>{{.Path}}</code></h3>
<p>{{.Summary}}{{if .Public}} <span class="public">Public.</span>{{else}} <span class="auth">Needs a token.</span>{{end}}</p>
{{with .Description}}<p>{{template "inline" .}}</p>{{end}}
{{with .Params}}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>
{{range .}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{template "type" .Type}}</td><td>{{template "inline" .Description}}</td></tr>
{{end}}</table>{{end}}
{{with .Body}}<p>Body: {{template "type" .}}</p>{{end}}
<table><tr><th>Status</th><th>Meaning</th><th>Body</th><th>Headers</th></tr>
{{range .Responses}}<tr><td><code>{{.Code}}</code></td><td>{{template "inline" .Description}}</td><td>{{range .Content}}<code>{{.Media}}</code> {{template "type" .Type}}<br>{{end}}</td><td>{{range .Headers}}<code>{{.}}</code> {{end}}</td></tr>
{{end}}</table></section>
{{end}}{{end}}
<h2>Schemas</h2>
{{range .Schemas}}<section class="op" id="schema-{{.Name}}"><h3><code>{{.Name}}</code></h3>
{{with .Description}}<p>{{template "inline" .}}</p>{{end}}
{{with .Type}}<p>{{template "type" .}}</p>{{end}}
{{with .Props}}<table><tr><th>Property</th><th>Type</th><th>Description</th></tr>
{{range .}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{template "type" .Type}}</td><td>{{template "inline" .Description}}</td></tr>
{{end}}</table>{{end}}</section>
{{end}}
</body></html>
{{define "type"}}{{range .}}{{if .Ref}}<a href="#schema-{{.Ref}}"><code>{{.Ref}}</code></a>{{else}}{{.Text}}{{end}}{{end}}{{end}}
{{define "blocks"}}{{range .}}{{if eq .Kind "h"}}<h2>{{template "inline" .Spans}}</h2>
{{else if eq .Kind "ul"}}<ul>{{range .Items}}<li>{{template "inline" .}}</li>{{end}}</ul>
{{else}}<p>{{template "inline" .Spans}}</p>
{{end}}{{end}}{{end}}
{{define "inline"}}{{range .}}{{if .Code}}<code>{{.Text}}</code>{{else}}{{.Text}}{{end}}{{end}}{{end}}`))

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
	if err := docsTemplate.Execute(&b, newDocsPage(doc)); err != nil {
		return nil, nil, fmt.Errorf("render docs page: %w", err)
	}
	return jsonDoc, b.Bytes(), nil
}

// docsPage is what the docs template shows: the document flattened into
// the order and the words a reader needs.
type docsPage struct {
	Title, Version string
	Description    []docsBlock
	Groups         []docsGroup
	Schemas        []docsSchema
}

// docsBlock is a heading, a paragraph or a list of the description.
type docsBlock struct {
	Kind  string // "h", "p" or "ul"
	Spans []docsSpan
	Items [][]docsSpan
}

// docsSpan is text, shown as code when it was `quoted`.
type docsSpan struct {
	Text string
	Code bool
}

// docsType describes a schema: text, and links to named schemas.
type docsType []docsTypePart

type docsTypePart struct{ Text, Ref string }

type docsGroup struct {
	Name        string
	Description []docsSpan
	Ops         []docsOp
}

type docsOp struct {
	Method, Path, Anchor string
	Summary              string
	Description          []docsSpan
	Public               bool
	Params               []docsParam
	Body                 docsType
	Responses            []docsResponse
}

type docsParam struct {
	Name, In    string
	Description []docsSpan
	Required    bool
	Type        docsType
}

type docsResponse struct {
	Code        string
	Description []docsSpan
	Content     []docsContent
	Headers     []string
}

type docsContent struct {
	Media string
	Type  docsType
}

type docsSchema struct {
	Name        string
	Description []docsSpan
	Type        docsType
	Props       []docsProp
}

type docsProp struct {
	Name        string
	Description []docsSpan
	Required    bool
	Type        docsType
}

// methodOrder orders a path's operations as people read them.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

func newDocsPage(doc *openapi3.T) docsPage {
	var p docsPage
	if doc.Info != nil {
		p.Title, p.Version, p.Description = doc.Info.Title, doc.Info.Version, docsBlocks(doc.Info.Description)
	}
	// Groups follow the document's tags, then any tag it does not declare.
	byTag := map[string]int{}
	group := func(name string) *docsGroup {
		i, ok := byTag[name]
		if !ok {
			i = len(p.Groups)
			byTag[name] = i
			p.Groups = append(p.Groups, docsGroup{Name: name})
		}
		return &p.Groups[i]
	}
	for _, t := range doc.Tags {
		group(t.Name).Description = docsSpans(t.Description)
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		ops := item.Operations()
		for _, method := range methodOrder {
			op := ops[method]
			if op == nil {
				continue
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			g := group(tag)
			g.Ops = append(g.Ops, newDocsOp(doc, method, path, item, op))
		}
	}
	p.Groups = slices.DeleteFunc(p.Groups, func(g docsGroup) bool { return len(g.Ops) == 0 })
	for _, g := range p.Groups {
		slices.SortStableFunc(g.Ops, func(a, b docsOp) int {
			if c := strings.Compare(a.Path, b.Path); c != 0 {
				return c
			}
			return slices.Index(methodOrder, a.Method) - slices.Index(methodOrder, b.Method)
		})
	}
	if doc.Components != nil {
		for _, name := range componentKeys(doc.Components.Schemas) {
			p.Schemas = append(p.Schemas, newDocsSchema(name, doc.Components.Schemas[name]))
		}
	}
	return p
}

func newDocsOp(doc *openapi3.T, method, path string, item *openapi3.PathItem, op *openapi3.Operation) docsOp {
	security := doc.Security
	if op.Security != nil {
		security = *op.Security
	}
	o := docsOp{
		Method: method, Path: path, Summary: op.Summary, Description: docsSpans(op.Description),
		Anchor: strings.ToLower(method) + strings.NewReplacer("/", "-", "{", "", "}", "", ".", "-").Replace(path),
		Public: len(security) == 0,
	}
	for _, ref := range slices.Concat(item.Parameters, op.Parameters) {
		if prm := ref.Value; prm != nil {
			o.Params = append(o.Params, docsParam{
				Name: prm.Name, In: prm.In, Description: docsSpans(prm.Description), Required: prm.Required, Type: schemaType(prm.Schema),
			})
		}
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		if mt := rb.Value.Content.Get("application/json"); mt != nil {
			o.Body = schemaType(mt.Schema)
		}
	}
	for _, code := range op.Responses.Keys() {
		r := op.Responses.Value(code).Value
		if r == nil {
			continue
		}
		dr := docsResponse{Code: code}
		if r.Description != nil {
			dr.Description = docsSpans(*r.Description)
		}
		for _, media := range componentKeys(r.Content) {
			dr.Content = append(dr.Content, docsContent{Media: media, Type: schemaType(r.Content[media].Schema)})
		}
		dr.Headers = componentKeys(r.Headers)
		o.Responses = append(o.Responses, dr)
	}
	return o
}

func newDocsSchema(name string, ref *openapi3.SchemaRef) docsSchema {
	ds := docsSchema{Name: name}
	s := ref.Value
	if s == nil {
		return ds
	}
	ds.Description = docsSpans(s.Description)
	if len(s.Properties) == 0 || len(s.AllOf) > 0 {
		ds.Type = schemaType(&openapi3.SchemaRef{Value: s})
	}
	// The properties of the schema and of its inline allOf members.
	parts := []*openapi3.Schema{s}
	for _, r := range s.AllOf {
		if r.Ref == "" && r.Value != nil {
			parts = append(parts, r.Value)
		}
	}
	for _, part := range parts {
		for _, prop := range componentKeys(part.Properties) {
			ps := part.Properties[prop]
			var desc []docsSpan
			if ps.Ref == "" && ps.Value != nil { // a referenced schema has its own section
				desc = docsSpans(ps.Value.Description)
			}
			ds.Props = append(ds.Props, docsProp{
				Name: prop, Description: desc, Required: slices.Contains(part.Required, prop), Type: schemaType(ps),
			})
		}
	}
	return ds
}

// schemaType names a schema: a link for a reference to a component, else
// its type, format, enum and bounds, recursing into items and combinators.
func schemaType(ref *openapi3.SchemaRef) docsType {
	if ref == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return docsType{{Ref: name}}
	}
	s := ref.Value
	if s == nil {
		return docsType{{Text: ref.Ref}}
	}
	var t docsType
	text := func(format string, a ...any) { t = append(t, docsTypePart{Text: fmt.Sprintf(format, a...)}) }
	combine := func(word string, refs openapi3.SchemaRefs) {
		text("%s ", word)
		for i, r := range refs {
			if i > 0 {
				text(", ")
			}
			t = append(t, schemaType(r)...)
		}
	}
	switch {
	case len(s.OneOf) > 0:
		combine("one of", s.OneOf)
	case len(s.AnyOf) > 0:
		combine("any of", s.AnyOf)
	case len(s.AllOf) > 0:
		combine("all of", s.AllOf)
		if len(s.Properties) > 0 {
			text(", and an object")
		}
	case s.Type.Is("array"):
		text("array")
		if s.MinItems > 0 || s.MaxItems != nil {
			text(" [%s]", bounds(float64(s.MinItems), s.MinItems > 0, s.MaxItems))
		}
		text(" of ")
		t = append(t, schemaType(s.Items)...)
	case s.Type != nil:
		text("%s", strings.Join(s.Type.Slice(), " or "))
	}
	if s.Format != "" {
		text(" (%s)", s.Format)
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		text(", one of %s", strings.Join(vals, ", "))
	}
	if s.Min != nil || s.Max != nil {
		lo := 0.0
		if s.Min != nil {
			lo = *s.Min
		}
		var hi *uint64
		if s.Max != nil {
			h := uint64(*s.Max)
			hi = &h
		}
		text(", %s", bounds(lo, s.Min != nil, hi))
	}
	if s.Pattern != "" {
		text(", matching %s", s.Pattern)
	}
	if s.Nullable {
		text(", or null")
	}
	if s.Default != nil {
		text(", default %v", s.Default)
	}
	return t
}

// bounds writes a closed range, open where a bound is absent.
func bounds(lo float64, hasLo bool, hi *uint64) string {
	switch {
	case hasLo && hi != nil:
		return fmt.Sprintf("%v..%d", lo, *hi)
	case hasLo:
		return fmt.Sprintf("at least %v", lo)
	case hi != nil:
		return fmt.Sprintf("at most %d", *hi)
	}
	return ""
}

// docsBlocks splits a description into headings ("## "), lists ("- ")
// and paragraphs, separated by blank lines. It reads only that much
// Markdown, and `code` spans.
func docsBlocks(md string) []docsBlock {
	var blocks []docsBlock
	for _, para := range strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n\n") {
		para = strings.TrimSpace(para)
		switch {
		case para == "":
		case strings.HasPrefix(para, "## "):
			heading, rest, _ := strings.Cut(para, "\n")
			blocks = append(blocks, docsBlock{Kind: "h", Spans: docsSpans(strings.TrimPrefix(heading, "## "))})
			blocks = append(blocks, docsBlocks(rest)...)
		case strings.HasPrefix(para, "- "):
			b := docsBlock{Kind: "ul"}
			for _, item := range strings.Split("\n"+para, "\n- ")[1:] {
				b.Items = append(b.Items, docsSpans(item))
			}
			blocks = append(blocks, b)
		default:
			blocks = append(blocks, docsBlock{Kind: "p", Spans: docsSpans(para)})
		}
	}
	return blocks
}

// docsSpans splits text at backquotes: odd pieces are code.
func docsSpans(text string) []docsSpan {
	text = strings.Join(strings.Fields(text), " ")
	parts := strings.Split(text, "`")
	if len(parts)%2 == 0 { // an unpaired backquote: show it as written
		return []docsSpan{{Text: text}}
	}
	spans := make([]docsSpan, 0, len(parts))
	for i, s := range parts {
		if s != "" {
			spans = append(spans, docsSpan{Text: s, Code: i%2 == 1})
		}
	}
	return spans
}

// componentKeys returns the sorted keys of a map of the document.
func componentKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
