package trigger

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
)

// SeedBody gives seedBody to the package's external tests.
const SeedBody = seedBody

// seedBody is the example request of the specification.
const seedBody = `{
  "dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
  "bbox": [34.811938017107494, 31.95475033759175, 34.82237261707599, 31.96426962177354],
  "targetResolution": 0.0000429153442382812,
  "callbackURLs": ["http://example.getmap.com/callback", "http://example.getmap.com/callback2"],
  "crs": "EPSG:4326",
  "priority": 0
}`

func TestDecodeExportRequestSeed(t *testing.T) {
	t.Parallel()
	got, err := DecodeExportRequest([]byte(seedBody))
	if err != nil {
		t.Fatalf("DecodeExportRequest(seed) = %v", err)
	}
	want := ExportRequest{
		DBID:             "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
		BBox:             grid.BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354},
		TargetResolution: 0.0000429153442382812,
		CallbackURLs:     []string{"http://example.getmap.com/callback", "http://example.getmap.com/callback2"},
		CRS:              "EPSG:4326",
		Priority:         0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeExportRequest(seed) mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeExportRequestDefaults(t *testing.T) {
	t.Parallel()
	got, err := DecodeExportRequest([]byte(`{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","bbox":[0,0,1,1],"targetResolution":0.1,"callbackURLs":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.CRS != "EPSG:4326" || got.Priority != 1000 || len(got.CallbackURLs) != 0 {
		t.Errorf("defaults: crs %q priority %d callbacks %v; want EPSG:4326, 1000, none", got.CRS, got.Priority, got.CallbackURLs)
	}
}

// with replaces (or, with a nil value, removes) one member of the seed.
func with(t *testing.T, field string, value any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(seedBody), &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, field)
	} else {
		m[field] = value
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type raw string

func (r raw) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestDecodeExportRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  func(t *testing.T) string
		field string
		want  string // in the message
	}{
		{"empty body", func(*testing.T) string { return "" }, "", "body is empty"},
		{"malformed JSON", func(*testing.T) string { return `{"dbId": ` }, "", "malformed JSON"},
		{"syntax error", func(*testing.T) string { return `{"dbId" "x"}` }, "", "malformed JSON at byte"},
		{"not an object", func(*testing.T) string { return `[1,2]` }, "", "must be a JSON object"},
		{"null", func(*testing.T) string { return `null` }, "", "must be a JSON object"},
		{"trailing data", func(*testing.T) string { return seedBody + `{}` }, "", "unexpected data after"},
		{"unknown field", func(t *testing.T) string { return with(t, "zoom", 3) }, "zoom", "unknown field"},
		{"wrong case is unknown", func(t *testing.T) string { return with(t, "DBID", "x") }, "DBID", "unknown field"},
		{"missing dbId", func(t *testing.T) string { return with(t, "dbId", nil) }, "dbId", "is required"},
		{"bad uuid", func(t *testing.T) string { return with(t, "dbId", "not-a-uuid") }, "dbId", "is not a uuid"},
		{"uuid without dashes", func(t *testing.T) string { return with(t, "dbId", "ef03ca54c68e4ca8843250ae5ad7a7f8") }, "dbId", "is not a uuid"},
		{"dbId number", func(t *testing.T) string { return with(t, "dbId", 5) }, "dbId", "must be a string"},
		{"missing bbox", func(t *testing.T) string { return with(t, "bbox", nil) }, "bbox", "is required"},
		{"bbox three numbers", func(t *testing.T) string { return with(t, "bbox", []float64{1, 2, 3}) }, "bbox", "four numbers [minx, miny, maxx, maxy], got an array of 3"},
		{"bbox five numbers", func(t *testing.T) string { return with(t, "bbox", []float64{1, 2, 3, 4, 5}) }, "bbox", "got an array of 5"},
		{"bbox null", func(t *testing.T) string { return with(t, "bbox", raw("null")) }, "bbox", "four numbers [minx, miny, maxx, maxy], got null"},
		{"bbox string", func(t *testing.T) string { return with(t, "bbox", "1,2,3,4") }, "bbox", "four numbers [minx, miny, maxx, maxy], got a string"},
		{"bbox object", func(t *testing.T) string { return with(t, "bbox", raw(`{"minx":1}`)) }, "bbox", "got an object"},
		{"bbox strings", func(t *testing.T) string { return with(t, "bbox", []string{"1", "2", "3", "4"}) }, "bbox[0]", "must be a number, got a string"},
		// A null member was once read as 0, exporting a larger area.
		{"bbox null minx", func(t *testing.T) string { return with(t, "bbox", raw(`[null, 31.9, 34.82, 31.96]`)) }, "bbox[0]", "must be a number, got null"},
		{"bbox null maxy", func(t *testing.T) string { return with(t, "bbox", raw(`[34.81, 31.9, 34.82, null]`)) }, "bbox[3]", "must be a number, got null"},
		{"bbox boolean", func(t *testing.T) string { return with(t, "bbox", raw(`[34.81, true, 34.82, 31.96]`)) }, "bbox[1]", "must be a number, got a boolean"},
		{"bbox nested array", func(t *testing.T) string { return with(t, "bbox", raw(`[34.81, 31.9, [34.82], 31.96]`)) }, "bbox[2]", "must be a number, got an array"},
		{"bbox nested object", func(t *testing.T) string { return with(t, "bbox", raw(`[34.81, 31.9, {}, 31.96]`)) }, "bbox[2]", "must be a number, got an object"},
		{"bbox member out of range", func(t *testing.T) string { return with(t, "bbox", raw(`[1e400, 31.9, 34.82, 31.96]`)) }, "bbox[0]", "must be a number within ±1.7976931348623157e+308"},
		{"bbox min equals max", func(t *testing.T) string { return with(t, "bbox", []float64{1, 2, 1, 4}) }, "bbox", "minx 1 must be less than maxx 1"},
		{"bbox min above max y", func(t *testing.T) string { return with(t, "bbox", []float64{1, 5, 2, 4}) }, "bbox", "miny 5 must be less than maxy 4"},
		{"bbox longitude out of range", func(t *testing.T) string { return with(t, "bbox", []float64{-190, 0, 1, 1}) }, "bbox", "longitude must be within [-180, 180]"},
		{"bbox latitude out of range", func(t *testing.T) string { return with(t, "bbox", []float64{0, 0, 1, 90.5}) }, "bbox", "latitude must be within [-90, 90]"},
		{"missing resolution", func(t *testing.T) string { return with(t, "targetResolution", nil) }, "targetResolution", "is required"},
		{"resolution null", func(t *testing.T) string { return with(t, "targetResolution", raw("null")) }, "targetResolution", "must be a number, got null"},
		{"resolution string", func(t *testing.T) string { return with(t, "targetResolution", "0.1") }, "targetResolution", "must be a number, got a string"},
		{"resolution boolean", func(t *testing.T) string { return with(t, "targetResolution", true) }, "targetResolution", "must be a number, got a boolean"},
		{"resolution array", func(t *testing.T) string { return with(t, "targetResolution", []float64{0.1}) }, "targetResolution", "must be a number, got an array"},
		{"resolution object", func(t *testing.T) string { return with(t, "targetResolution", raw(`{"value":0.1}`)) }, "targetResolution", "must be a number, got an object"},
		{"resolution zero", func(t *testing.T) string { return with(t, "targetResolution", 0) }, "targetResolution", "0 is not a positive finite number"},
		{"resolution negative", func(t *testing.T) string { return with(t, "targetResolution", -1) }, "targetResolution", "-1 is not a positive finite number"},
		{"resolution coarser than zoom 0", func(t *testing.T) string { return with(t, "targetResolution", 1.5) }, "targetResolution", "1.5 is coarser than zoom 0 (0.703125"},
		{"resolution finer than zoom 22", func(t *testing.T) string { return with(t, "targetResolution", 1e-8) }, "targetResolution", "1e-08 is finer than zoom 22 (1.6763806343078613e-07)"},
		// Subnormal resolutions once wrapped to a negative zoom and panicked.
		{"resolution subnormal 1e-309", func(t *testing.T) string { return with(t, "targetResolution", raw("1e-309")) }, "targetResolution", "1e-309 is finer than zoom 22"},
		{"resolution subnormal 5e-324", func(t *testing.T) string { return with(t, "targetResolution", raw("5e-324")) }, "targetResolution", "5e-324 is finer than zoom 22"},
		{"resolution underflows to zero", func(t *testing.T) string { return with(t, "targetResolution", raw("1e-400")) }, "targetResolution", "0 is not a positive finite number"},
		{"resolution out of range", func(t *testing.T) string { return with(t, "targetResolution", raw("1e400")) }, "targetResolution", "must be a number within"},
		{"missing callbacks", func(t *testing.T) string { return with(t, "callbackURLs", nil) }, "callbackURLs", "is required"},
		{"callbacks not array", func(t *testing.T) string { return with(t, "callbackURLs", "http://a.test") }, "callbackURLs", "must be an array"},
		{"callback relative", func(t *testing.T) string { return with(t, "callbackURLs", []string{"/cb"}) }, "callbackURLs[0]", "absolute http or https URL"},
		{"callback ftp", func(t *testing.T) string {
			return with(t, "callbackURLs", []string{"http://ok.test", "ftp://a.test/x"})
		}, "callbackURLs[1]", "absolute http or https URL"},
		{"callback no host", func(t *testing.T) string { return with(t, "callbackURLs", []string{"http:///x"}) }, "callbackURLs[0]", "has no host"},
		{"callback unparsable", func(t *testing.T) string { return with(t, "callbackURLs", []string{"http://a b.test/%zz"}) }, "callbackURLs[0]", "is not a URL"},
		{"callback credentials", func(t *testing.T) string { return with(t, "callbackURLs", []string{"http://u:p@a.test/"}) }, "callbackURLs[0]", "must not carry credentials"},
		{"callback too long", func(t *testing.T) string {
			return with(t, "callbackURLs", []string{"http://a.test/" + strings.Repeat("x", 3000)})
		}, "callbackURLs[0]", "longer than 2048"},
		{"too many callbacks", func(t *testing.T) string {
			urls := make([]string, 40)
			for i := range urls {
				urls[i] = "http://a.test/"
			}
			return with(t, "callbackURLs", urls)
		}, "callbackURLs", "at most 32"},
		{"crs other", func(t *testing.T) string { return with(t, "crs", "EPSG:3857") }, "crs", `"EPSG:3857" is not supported`},
		{"crs number", func(t *testing.T) string { return with(t, "crs", 4326) }, "crs", "must be a string"},
		{"priority negative", func(t *testing.T) string { return with(t, "priority", -1) }, "priority", "outside 0..999999999"},
		{"priority too large", func(t *testing.T) string { return with(t, "priority", 1_000_000_000) }, "priority", "outside 0..999999999"},
		{"priority fraction", func(t *testing.T) string { return with(t, "priority", 1.5) }, "priority", "whole number"},
		{"priority string", func(t *testing.T) string { return with(t, "priority", "high") }, "priority", "must be a number, got a string"},
		{"priority null", func(t *testing.T) string { return with(t, "priority", raw("null")) }, "priority", "must be a number, got null"},
		{"priority boolean", func(t *testing.T) string { return with(t, "priority", false) }, "priority", "must be a number, got a boolean"},
		{"priority array", func(t *testing.T) string { return with(t, "priority", []int{1}) }, "priority", "must be a number, got an array"},
		{"priority object", func(t *testing.T) string { return with(t, "priority", raw("{}")) }, "priority", "must be a number, got an object"},
		{"priority huge exponent", func(t *testing.T) string { return with(t, "priority", raw("1e400")) }, "priority", "must be a number within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body(t)
			_, err := DecodeExportRequest([]byte(body))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("DecodeExportRequest(%.80s) = %v, want *ValidationError", body, err)
			}
			found := false
			for _, f := range verr.Fields {
				if f.Field == tc.field && strings.Contains(f.Reason, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("DecodeExportRequest(%.80s) = %q, want field %q with %q", body, verr.Error(), tc.field, tc.want)
			}
		})
	}
}

func TestDecodeExportRequestReportsEveryField(t *testing.T) {
	t.Parallel()
	_, err := DecodeExportRequest([]byte(`{"dbId":"x","bbox":[1],"targetResolution":-1,"callbackURLs":["nope"],"crs":"x","priority":-5}`))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v, want *ValidationError", err)
	}
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	want := []string{"dbId", "bbox", "targetResolution", "callbackURLs[0]", "crs", "priority"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeExportRequestReportsEveryNonNumber(t *testing.T) {
	t.Parallel()
	_, err := DecodeExportRequest([]byte(`{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","bbox":[null,"1",3,{}],"targetResolution":null,"callbackURLs":[],"priority":[5]}`))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v, want *ValidationError", err)
	}
	want := []FieldError{
		{Field: "bbox[0]", Reason: "must be a number, got null"},
		{Field: "bbox[1]", Reason: "must be a number, got a string"},
		{Field: "bbox[3]", Reason: "must be a number, got an object"},
		{Field: "targetResolution", Reason: "must be a number, got null"},
		{Field: "priority", Reason: "must be a number, got an array"},
	}
	if diff := cmp.Diff(want, verr.Fields); diff != "" {
		t.Errorf("fields mismatch (-want +got):\n%s", diff)
	}
}

// FuzzDecodeExportRequest checks that decoding never panics, that an
// accepted request satisfies the contract's invariants, and that encoding
// it again decodes to the same request.
func FuzzDecodeExportRequest(f *testing.F) {
	f.Add([]byte(seedBody))
	f.Add([]byte(`{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","bbox":[-180,-90,180,90],"targetResolution":0.703125,"callbackURLs":[]}`))
	f.Add([]byte(`{"bbox":[1e308,-1e308,NaN,0]}`))
	f.Add([]byte(`{"priority":999999999.0000001}`))
	f.Add([]byte(`[]`))
	// Subnormal resolutions once wrapped to a negative zoom downstream.
	f.Add([]byte(strings.Replace(seedBody, "0.0000429153442382812", "1e-309", 1)))
	f.Add([]byte(strings.Replace(seedBody, "0.0000429153442382812", "5e-324", 1)))
	f.Add([]byte(strings.Replace(seedBody, "0.0000429153442382812", "1e-400", 1)))
	// A null bbox member was once read as 0.
	f.Add([]byte(strings.Replace(seedBody, "[34.811938017107494,", "[null,", 1)))
	f.Add([]byte(strings.Replace(seedBody, `"priority": 0`, `"priority": null`, 1)))
	f.Add([]byte(strings.Replace(seedBody, `"priority": 0`, `"priority": true`, 1)))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeExportRequest(body)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		if verr := r.BBox.Validate(); verr != nil || !grid.World.Contains(r.BBox) {
			t.Fatalf("accepted bbox %v: %v", r.BBox, verr)
		}
		if !(r.TargetResolution > 0) || r.TargetResolution > grid.Resolution0*(1+1e-9) || math.IsInf(r.TargetResolution, 0) {
			t.Fatalf("accepted resolution %v", r.TargetResolution)
		}
		if z, err := grid.ZoomForResolution(r.TargetResolution); err != nil || !z.Valid() {
			t.Fatalf("accepted resolution %v: zoom %d, %v", r.TargetResolution, z, err)
		}
		if r.Priority < 0 || r.Priority > 999_999_999 || r.CRS != "EPSG:4326" {
			t.Fatalf("accepted priority %d crs %q", r.Priority, r.CRS)
		}
		// Numeric members were numbers in the body: nothing else (null
		// above all) is taken as a number.
		var generic map[string]any
		if err := json.Unmarshal(body, &generic); err != nil {
			t.Fatalf("accepted body does not decode generically: %v", err)
		}
		numeric := []any{generic["targetResolution"]}
		if p, ok := generic["priority"]; ok {
			numeric = append(numeric, p)
		}
		bbox, _ := generic["bbox"].([]any)
		numeric = append(numeric, bbox...)
		for _, v := range numeric {
			if _, ok := v.(float64); !ok {
				t.Fatalf("accepted %v (%T) as a number in %s", v, v, body)
			}
		}
		again, err := json.Marshal(map[string]any{
			"dbId": r.DBID, "bbox": r.BBox.Slice(), "targetResolution": r.TargetResolution,
			"callbackURLs": r.CallbackURLs, "crs": r.CRS, "priority": r.Priority,
		})
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeExportRequest(again)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}

func BenchmarkDecodeExportRequest(b *testing.B) {
	body := []byte(seedBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeExportRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
