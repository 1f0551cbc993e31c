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
	"strconv"
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
	m, err := decodeMembers(body, fields)
	if err != nil {
		return ExportRequest{}, err
	}
	var (
		r    ExportRequest
		errs []FieldError
	)
	fail := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	w := struct{ BBox, TargetResolution json.RawMessage }{m["bbox"], m["targetResolution"]}
	r.DBID = decodeDBID(m["dbId"], fail)
	if len(w.BBox) == 0 {
		fail("bbox", "is required")
	} else if b, ok := decodeBBox(w.BBox, fail); ok {
		r.BBox = b
	}

	if len(w.TargetResolution) == 0 {
		fail("targetResolution", "is required")
	} else if res, reason := number(w.TargetResolution); reason != "" {
		fail("targetResolution", "%s", reason)
	} else if _, err := grid.ZoomForResolution(res); err != nil {
		// The grid's reason: not positive, coarser than zoom 0 or finer
		// than its finest zoom (which subnormal values such as 5e-324 are).
		fail("targetResolution", "%s", strings.TrimPrefix(err.Error(), grid.ErrResolution.Error()+": "))
	} else {
		r.TargetResolution = res
	}
	r.CallbackURLs, r.CRS, r.Priority = decodeShared(m, true, fail)
	if len(errs) > 0 {
		return ExportRequest{}, &ValidationError{Fields: errs}
	}
	return r, nil
}

// decodeMembers reads a request body: one JSON object whose members are
// all among accepted (matched exactly), or a *ValidationError.
func decodeMembers(body []byte, accepted []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	// A body that is one JSON value decodes as a decoder would decode it;
	// only a body that is not says why through the decoder.
	if json.Unmarshal(body, &m) != nil {
		m = nil
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&m); err != nil {
			return nil, decodeError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, invalid("", "malformed JSON: unexpected data after the request object")
		}
	}
	if m == nil {
		return nil, invalid("", "the request must be a JSON object")
	}
	var unknown []FieldError
	for k := range m {
		if !slices.Contains(accepted, k) {
			unknown = append(unknown, FieldError{Field: k, Reason: "unknown field; the accepted fields are " + strings.Join(accepted, ", ")})
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return nil, &ValidationError{Fields: unknown}
	}
	return m, nil
}

// present reports whether a member was given a value other than null.
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// decodeDBID reads the dbId member of /create and /export, reporting a
// problem through fail.
func decodeDBID(raw json.RawMessage, fail func(field, format string, a ...any)) (dbID string) {
	switch {
	case !present(raw):
		fail("dbId", "is required")
	case json.Unmarshal(raw, &dbID) != nil:
		fail("dbId", "must be a string")
	default:
		if _, err := uuid.Parse(dbID); err != nil || len(dbID) != 36 {
			fail("dbId", "%q is not a uuid", dbID)
		}
	}
	return dbID
}

// decodeShared reads the other members /create and /export share:
// callbackURLs (required by /create, optional for /export), crs and
// priority, reporting each problem through fail.
func decodeShared(m map[string]json.RawMessage, callbacksRequired bool, fail func(field, format string, a ...any)) (callbackURLs []string, crs string, priority int) {

	switch raw := m["callbackURLs"]; {
	case !present(raw) && callbacksRequired:
		fail("callbackURLs", "is required (an empty array is allowed)")
	case !present(raw):
	case json.Unmarshal(raw, &callbackURLs) != nil:
		fail("callbackURLs", "must be an array of URL strings")
	case len(callbackURLs) > maxCallbacks:
		fail("callbackURLs", "%d URLs given, at most %d allowed", len(callbackURLs), maxCallbacks)
	default:
		for i, u := range callbackURLs {
			if reason := checkCallbackURL(u); reason != "" {
				fail(fmt.Sprintf("callbackURLs[%d]", i), "%s", reason)
			}
		}
	}

	crs = job.CRS
	if raw := m["crs"]; present(raw) {
		if json.Unmarshal(raw, &crs) != nil {
			fail("crs", "must be a string")
		} else if crs != job.CRS {
			fail("crs", "%q is not supported; the only supported crs is %s", crs, job.CRS)
		}
	}

	// priority may be left out, but not given as null or as anything but a
	// number: that would silently mean the default.
	priority = job.DefaultPriority
	if raw := m["priority"]; len(raw) > 0 {
		p, reason := number(raw)
		switch {
		case reason != "":
			fail("priority", "%s", reason)
		case p != math.Trunc(p):
			fail("priority", "%v must be a whole number", p)
		case p < 0 || p > job.MaxPriority:
			fail("priority", "%v is outside 0..999999999", p)
		default:
			priority = int(p)
		}
	}
	return callbackURLs, crs, priority
}

// decodeBBox reads [minx, miny, maxx, maxy] and checks it, reporting each
// problem through fail; ok is false when there was one. Every member must
// be a number: a null is not taken as 0.
func decodeBBox(raw json.RawMessage, fail func(field, format string, a ...any)) (b grid.BBox, ok bool) {
	var elems []json.RawMessage
	if t := jsonType(raw); t != "an array" || json.Unmarshal(raw, &elems) != nil {
		fail("bbox", "must be an array of four numbers [minx, miny, maxx, maxy], got %s", t)
		return grid.BBox{}, false
	}
	if len(elems) != 4 {
		fail("bbox", "must be an array of four numbers [minx, miny, maxx, maxy], got an array of %d", len(elems))
		return grid.BBox{}, false
	}
	var v [4]float64
	ok = true
	for i, e := range elems {
		f, reason := number(e)
		if reason != "" {
			fail(fmt.Sprintf("bbox[%d]", i), "%s", reason)
			ok = false
		}
		v[i] = f
	}
	if !ok {
		return grid.BBox{}, false
	}
	b = grid.BBox{MinX: v[0], MinY: v[1], MaxX: v[2], MaxY: v[3]}
	if err := b.Validate(); err != nil {
		fail("bbox", "%s", strings.TrimPrefix(err.Error(), grid.ErrBBox.Error()+": "))
		return grid.BBox{}, false
	}
	return b, true
}

// jsonType names the JSON type of a raw value, for messages: null, a
// boolean, a string, an object, an array or a number.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a number"
}

// number reads raw, a syntactically valid JSON value, as a number. The
// reason says why it is not one; it is empty when it is.
func number(raw json.RawMessage) (float64, string) {
	if t := jsonType(raw); t != "a number" {
		return 0, "must be a number, got " + t
	}
	// raw is a JSON number, which ParseFloat reads as encoding/json does.
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil {
		return 0, fmt.Sprintf("must be a number within ±%v, got one beyond it", math.MaxFloat64)
	}
	return f, ""
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
