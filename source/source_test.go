package source_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/geoexport/exporter/source"
)

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		data   []byte
		want   source.Format
		wantOK bool
	}{
		{name: "png", data: encodePNG(t, solid(color.NRGBA{R: 1, A: 255})), want: source.PNG, wantOK: true},
		{name: "jpeg", data: encodeJPEG(t, solid(color.NRGBA{G: 1, A: 255})), want: source.JPEG, wantOK: true},
		{name: "png signature only", data: []byte("\x89PNG\r\n\x1a\n"), want: source.PNG, wantOK: true},
		{name: "truncated png signature", data: []byte("\x89PNG\r\n"), wantOK: false},
		{name: "jpeg soi without marker", data: []byte{0xff, 0xd8}, wantOK: false},
		{name: "gif", data: []byte("GIF89a"), wantOK: false},
		{name: "text", data: []byte("<html>not found</html>"), wantOK: false},
		{name: "empty", data: nil, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := source.DetectFormat(tc.data)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("DetectFormat(%q) = %q, %v, want %q, %v", tc.data, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestFormatString(t *testing.T) {
	t.Parallel()
	for f, want := range map[source.Format]string{source.PNG: "png", source.JPEG: "jpeg", "": "unknown"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%q).String() = %q, want %q", string(f), got, want)
		}
	}
}

// solid returns a 256 × 256 NRGBA tile filled with c.
func solid(c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

func encodePNG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		tb.Fatalf("png.Encode: %v", err)
	}
	return buf.Bytes()
}

func encodeJPEG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, nil); err != nil {
		tb.Fatalf("jpeg.Encode: %v", err)
	}
	return buf.Bytes()
}
