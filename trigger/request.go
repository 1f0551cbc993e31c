package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

// Limits on a request's callbacks.
const (
	maxCallbacks   = 32
	maxCallbackLen = 2048
)

// ExportRequest is a decoded, syntactically valid POST /create body.
type ExportRequest struct {
	DBID             string
	BBox             grid.BBox
	TargetResolution float64
	CallbackURLs     []string
	CRS              string
	Priority         int
}

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field  string
	Reason string
}

// ValidationError lists every problem found in a request. It answers 400.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		if f.Field == "" {
			parts[i] = f.Reason
		} else {
			parts[i] = f.Field + ": " + f.Reason
		}
	}
	return strings.Join(parts, "; ")
}

func invalid(field, format string, a ...any) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Reason: fmt.Sprintf(format, a...)}}}
}

// fields are the accepted members of a POST /create body.
var fields = []string{"dbId", "bbox", "targetResolution", "callbackURLs", "crs", "priority"}

// DecodeExportRequest parses and checks a POST /create body against the
// contract: every problem found is reported in one *ValidationError.
// Member names are matched exactly. Checks that need the catalog (layer,
// resolution limit, footprint) come later.
func DecodeExportRequest(body []byte) (ExportRequest, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return ExportRequest{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ExportRequest{}, invalid("", "malformed JSON: unexpected data after the request object")
	}
	if m == nil {
		return ExportRequest{}, invalid("", "the request must be a JSON object")
	}
	var unknown []FieldError
	for k := range m {
		if !slices.Contains(fields, k) {
			unknown = append(unknown, FieldError{Field: k, Reason: "unknown field; the accepted fields are " + strings.Join(fields, ", ")})
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return ExportRequest{}, &ValidationError{Fields: unknown}
	}
	w := struct{ DBID, BBox, TargetResolution, CallbackURLs, CRS, Priority json.RawMessage }{
		m["dbId"], m["bbox"], m["targetResolution"], m["callbackURLs"], m["crs"], m["priority"],
	}
	var (
		r    ExportRequest
		errs []FieldError
	)
	fail := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	present := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

	switch {
	case !present(w.DBID):
		fail("dbId", "is required")
	case json.Unmarshal(w.DBID, &r.DBID) != nil:
		fail("dbId", "must be a string")
	default:
		if _, err := uuid.Parse(r.DBID); err != nil || len(r.DBID) != 36 {
			fail("dbId", "%q is not a uuid", r.DBID)
		}
	}

	var bbox []float64
	switch {
	case !present(w.BBox):
		fail("bbox", "is required")
	case json.Unmarshal(w.BBox, &bbox) != nil || len(bbox) != 4:
		fail("bbox", "must be an array of four numbers [minx, miny, maxx, maxy]")
	default:
		r.BBox = grid.BBox{MinX: bbox[0], MinY: bbox[1], MaxX: bbox[2], MaxY: bbox[3]}
		if err := r.BBox.Validate(); err != nil {
			fail("bbox", "%s", strings.TrimPrefix(err.Error(), grid.ErrBBox.Error()+": "))
		}
	}

	switch {
	case !present(w.TargetResolution):
		fail("targetResolution", "is required")
	case json.Unmarshal(w.TargetResolution, &r.TargetResolution) != nil:
		fail("targetResolution", "must be a number")
	case !(r.TargetResolution > 0) || math.IsInf(r.TargetResolution, 0):
		fail("targetResolution", "%v must be a positive number of degrees per pixel", r.TargetResolution)
	case r.TargetResolution > grid.Resolution0*(1+1e-9):
		fail("targetResolution", "%v is coarser than zoom 0 (%v degrees per pixel)", r.TargetResolution, grid.Resolution0)
	}

	switch {
	case !present(w.CallbackURLs):
		fail("callbackURLs", "is required (an empty array is allowed)")
	case json.Unmarshal(w.CallbackURLs, &r.CallbackURLs) != nil:
		fail("callbackURLs", "must be an array of URL strings")
	case len(r.CallbackURLs) > maxCallbacks:
		fail("callbackURLs", "%d URLs given, at most %d allowed", len(r.CallbackURLs), maxCallbacks)
	default:
		for i, u := range r.CallbackURLs {
			if reason := checkCallbackURL(u); reason != "" {
				fail(fmt.Sprintf("callbackURLs[%d]", i), "%s", reason)
			}
		}
	}

	r.CRS = job.CRS
	if present(w.CRS) {
		if json.Unmarshal(w.CRS, &r.CRS) != nil {
			fail("crs", "must be a string")
		} else if r.CRS != job.CRS {
			fail("crs", "%q is not supported; the only supported crs is %s", r.CRS, job.CRS)
		}
	}

	r.Priority = job.DefaultPriority
	if present(w.Priority) {
		var p float64
		switch {
		case json.Unmarshal(w.Priority, &p) != nil:
			fail("priority", "must be a number")
		case p != math.Trunc(p):
			fail("priority", "%v must be a whole number", p)
		case p < 0 || p > 999_999_999:
			fail("priority", "%v is outside 0..999999999", p)
		default:
			r.Priority = int(p)
		}
	}
	if len(errs) > 0 {
		return ExportRequest{}, &ValidationError{Fields: errs}
	}
	return r, nil
}

func checkCallbackURL(s string) string {
	if len(s) > maxCallbackLen {
		return fmt.Sprintf("URL longer than %d characters", maxCallbackLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must be an absolute http or https URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return fmt.Sprintf("%q must not carry credentials", s)
	}
	return ""
}

// decodeError turns an encoding/json error into a ValidationError that
// names the field where it can.
func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return invalid("", "malformed JSON: the body is empty")
	case errors.As(err, &syntax):
		return invalid("", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "malformed JSON: the body ends early")
	case errors.As(err, &typ):
		return invalid("", "the request must be a JSON object")
	}
	return invalid("", "malformed JSON: %v", err)
}
