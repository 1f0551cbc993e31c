package source

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
)

// CheckLayer checks the settings of a catalog layer's source, as the kind
// of source it names needs them; pass it to catalog.New or catalog.Load.
// Each problem is an error naming the layer.
func CheckLayer(l catalog.Layer) error {
	var errs []error
	for _, msg := range sourceProblems(l.Source) {
		errs = append(errs, fmt.Errorf("layer %q: source: %s", l.ID, msg))
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with a source's settings, one message each.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// url adds what is wrong with the url u, and reports whether it is good.
func (p *problems) url(u string) bool {
	msg := urlProblem(u)
	if msg != "" {
		p.add("url %s", msg)
	}
	return msg == ""
}

// sourceProblems lists what is wrong with the settings of s.
func sourceProblems(s catalog.Source) []string {
	var p problems
	switch s.Kind {
	case catalog.SourceDemo:
	case catalog.SourceTileStore:
		if (s.Path == "") == (s.S3Prefix == "") {
			p.add("a tilestore needs exactly one of path and s3Prefix")
		}
	case catalog.SourceGeoPackage:
		if (s.Path == "") == (s.S3Key == "") {
			p.add("a gpkg needs exactly one of path and s3Key")
		}
	case catalog.SourceWMS:
		p.wms(s)
	case catalog.SourceWMTS:
		p.wmts(s)
	case catalog.SourceXYZ:
		p.url(s.URL)
		y, flipped := strings.Contains(s.URL, "{y}"), strings.Contains(s.URL, "{-y}")
		if !strings.Contains(s.URL, "{z}") || !strings.Contains(s.URL, "{x}") || y == flipped {
			p.add("xyz url needs {z}, {x} and one of {y} and {-y}")
		}
		if flipped && s.RowOrigin == "bottom" {
			p.add("xyz url with {-y} and rowOrigin bottom would flip rows twice")
		}
	default:
		p.add("kind %q is not one of %s", s.Kind, strings.Join(catalog.SourceKinds, ", "))
	}
	switch s.RowOrigin {
	case "", "top", "bottom":
	default:
		p.add("rowOrigin %q is not top or bottom", s.RowOrigin)
	}
	if !s.IsHTTP() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"url", s.URL != ""}, {"timeout", s.Timeout != 0}, {"connectTimeout", s.ConnectTimeout != 0},
			{"headerTimeout", s.HeaderTimeout != 0}, {"maxAttempts", s.MaxAttempts != 0}, {"concurrency", s.Concurrency != 0},
			{"notFound", s.NotFound != ""}, {"resample", s.Resample},
		} {
			if f.set {
				p.add("%s applies to wms, wmts and xyz, not %s", f.name, s.Kind)
			}
		}
	}
	for _, d := range []struct {
		name string
		v    catalog.Duration
	}{{"timeout", s.Timeout}, {"connectTimeout", s.ConnectTimeout}, {"headerTimeout", s.HeaderTimeout}} {
		if d.v < 0 {
			p.add("%s %v is negative", d.name, time.Duration(d.v))
		}
	}
	if s.MaxAttempts < 0 {
		p.add("maxAttempts %d: want at least 1", s.MaxAttempts)
	}
	if s.Concurrency < 0 || s.Concurrency > 256 {
		p.add("concurrency %d: want 1..256", s.Concurrency)
	}
	switch s.NotFound {
	case "", "nodata", "error":
	default:
		p.add("notFound %q is not nodata or error", s.NotFound)
	}
	if s.ZoomOffset < -int(grid.MaxZoom) || s.ZoomOffset > 64 {
		p.add("zoomOffset %d is out of range", s.ZoomOffset)
	}
	if s.NoDataTolerance < 0 || s.NoDataTolerance > 255 {
		p.add("noDataTolerance %d is not within 0..255", s.NoDataTolerance)
	}
	if s.NoDataTolerance != 0 && s.NoData == nil {
		p.add("noDataTolerance needs noData")
	}
	return p
}

// wms adds what is wrong with the settings of a wms source.
func (p *problems) wms(s catalog.Source) {
	if p.url(s.URL) && strings.ContainsAny(s.URL, "{}") {
		p.add("a wms url is not a template")
	}
	switch s.Version {
	case "", "1.1.1", "1.3.0":
	default:
		p.add("version %q is not 1.1.1 or 1.3.0", s.Version)
	}
	if len(s.Layers) == 0 {
		p.add("a wms needs layers")
	}
	for _, l := range s.Layers {
		if l == "" || strings.Contains(l, ",") {
			p.add("layer %q: want a name without commas", l)
		}
	}
	if len(s.Styles) != 0 && len(s.Styles) != len(s.Layers) {
		p.add("%d styles for %d layers: want one per layer, or none", len(s.Styles), len(s.Layers))
	}
	jpeg, msg := checkFormat(s.Format)
	if msg != "" {
		p.add("%s", msg)
	}
	if jpeg && s.Transparent != nil && *s.Transparent {
		p.add("format image/jpeg cannot be transparent")
	}
	*p = append(*p, reservedParams(s.Params, wmsReserved)...)
	if s.Metatile != nil {
		if len(s.Metatile) != 2 {
			p.add("metatile: want [columns, rows], got %d numbers", len(s.Metatile))
		}
		for _, n := range s.Metatile {
			if n < 1 || n > MaxMetatile {
				p.add("metatile %v: want sides of 1..%d tiles", s.Metatile, MaxMetatile)
				break
			}
		}
	}
	if s.ZoomOffset != 0 {
		p.add("zoomOffset applies to wmts and xyz")
	}
}

// wmts adds what is wrong with the settings of a wmts source.
func (p *problems) wmts(s catalog.Source) {
	p.url(s.URL)
	if strings.Contains(s.URL, "{TileMatrix}") {
		if !strings.Contains(s.URL, "{TileRow}") || !strings.Contains(s.URL, "{TileCol}") {
			p.add("a wmts url template needs {TileMatrix}, {TileRow} and {TileCol}")
		}
		if strings.Contains(s.URL, "{Layer}") && s.Layer == "" {
			p.add("the wmts url template has {Layer} but no layer is set")
		}
		if strings.Contains(s.URL, "{TileMatrixSet}") && s.TileMatrixSet == "" {
			p.add("the wmts url template has {TileMatrixSet} but no tileMatrixSet is set")
		}
		if len(s.Params) > 0 {
			p.add("params apply to wmts kvp, not to a url template")
		}
	} else {
		if strings.ContainsAny(s.URL, "{}") {
			p.add("a wmts url template needs {TileMatrix}, {TileRow} and {TileCol}")
		}
		if s.Layer == "" || s.TileMatrixSet == "" {
			p.add("wmts kvp needs layer and tileMatrixSet")
		}
		*p = append(*p, reservedParams(s.Params, wmtsReserved)...)
	}
	if f := s.TileMatrixFormat; f != "" {
		verbs := strings.Count(strings.ReplaceAll(f, "%%", ""), "%")
		if v := fmt.Sprintf(f, 7); verbs != 1 || strings.Contains(v, "%!") || !strings.Contains(v, "7") {
			p.add("tileMatrixFormat %q: want one %%d, such as %%02d or EPSG:4326:%%d", f)
		}
	}
	if _, msg := checkFormat(s.Format); msg != "" {
		p.add("%s", msg)
	}
}

// checkFormat reports whether f is JPEG, and what is wrong with it.
func checkFormat(f string) (jpeg bool, msg string) {
	switch lf := strings.ToLower(strings.TrimSpace(f)); {
	case lf == "" || strings.HasPrefix(lf, "image/png"):
		return false, ""
	case lf == "image/jpeg":
		return true, ""
	}
	return false, fmt.Sprintf("format %q is not image/png or image/jpeg", f)
}

func reservedParams(params map[string]string, reserved []string) []string {
	var out []string
	for k := range params {
		for _, r := range reserved {
			if strings.EqualFold(k, r) {
				out = append(out, fmt.Sprintf("params: %s is set by the source", k))
			}
		}
	}
	slices.Sort(out)
	return out
}
