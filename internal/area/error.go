package area

import "fmt"

// Error is a refused region of interest: the feature at fault (Feature is
// its index, -1 when the collection as a whole is wrong), the member of
// that feature (Field, such as "geometry" or
// "properties.maxResolutionDeg"; empty for the collection), and why.
type Error struct {
	Feature int
	Field   string
	Reason  string
}

// Path names the offending member below the ROI: "features[2].geometry",
// or "" for the collection.
func (e *Error) Path() string {
	if e.Feature < 0 {
		return e.Field
	}
	p := fmt.Sprintf("features[%d]", e.Feature)
	if e.Field != "" {
		p += "." + e.Field
	}
	return p
}

func (e *Error) Error() string {
	if p := e.Path(); p != "" {
		return "area: " + p + ": " + e.Reason
	}
	return "area: " + e.Reason
}

func featureError(i int, field, format string, args ...any) *Error {
	return &Error{Feature: i, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TooManyTilesError is an area whose coverage holds more tiles than the
// limit CoverAtMost was given; Feature is the one whose tiles took it over.
type TooManyTilesError struct {
	Limit   int64
	Feature int
}

func (e *TooManyTilesError) Error() string {
	return fmt.Sprintf("area: holds more than %d tiles (over the limit from features[%d] on)", e.Limit, e.Feature)
}
