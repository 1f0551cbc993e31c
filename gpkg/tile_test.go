package gpkg_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/geoexport/exporter/gpkg"
)

// encodeJPEG encodes a w × h image with some detail: gray when gray is
// set, YCbCr 4:2:0 otherwise (what image/jpeg writes).
func encodeJPEG(t testing.TB, w, h int, gray bool) []byte {
	t.Helper()
	var m image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = byte(i * 7)
		}
		m = g
	} else {
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range c.Pix {
			c.Pix[i] = byte(i * 13)
		}
		m = c
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sofOffset returns the index of the first SOF0 marker in data.
func sofOffset(t testing.TB, data []byte) int {
	t.Helper()
	i := bytes.Index(data, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker in the encoded JPEG")
	}
	return i
}

func TestDecodeTileHeaderJPEG(t *testing.T) {
	t.Parallel()
	tile := encodeJPEG(t, 256, 256, false)
	sof := sofOffset(t, tile)
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(tile)) }

	tests := []struct {
		name    string
		data    []byte
		want    image.Point
		wantErr string // empty: no error
	}{
		{name: "ycbcr", data: tile, want: image.Pt(256, 256)},
		{name: "gray", data: encodeJPEG(t, 256, 256, true), want: image.Pt(256, 256)},
		{name: "not square", data: encodeJPEG(t, 300, 17, false), want: image.Pt(300, 17)},
		{name: "fill bytes and stray data before the frame", data: edit(func(b []byte) []byte {
			return append(append(b[:sof:sof], 0x12, 0x34, 0xff, 0x00, 0xff, 0xff, 0xff), b[sof+1:]...)
		}), want: image.Pt(256, 256)},
		{name: "restart marker before the frame", data: edit(func(b []byte) []byte {
			return append(append(b[:sof:sof], 0xff, 0xd3), b[sof:]...)
		}), want: image.Pt(256, 256)},
		{name: "progressive frame", data: edit(func(b []byte) []byte { b[sof+1] = 0xc2; return b }), want: image.Pt(256, 256)},
		{name: "only SOI", data: tile[:3], wantErr: "data ends before the frame header"},
		{name: "cut in the frame", data: tile[:sof+8], wantErr: "data ends before the frame header"},
		{name: "cut in a segment length", data: tile[:5], wantErr: "data ends before the frame header"},
		{name: "no SOI", data: append([]byte{0xff, 0xd8 ^ 1}, tile[2:]...), wantErr: "neither PNG nor JPEG"},
		{name: "lossless frame", data: edit(func(b []byte) []byte { b[sof+1] = 0xc3; return b }), wantErr: "unsupported frame type (SOF3)"},
		{name: "arithmetic frame", data: edit(func(b []byte) []byte { b[sof+1] = 0xc9; return b }), wantErr: "unsupported frame type (SOF9)"},
		{name: "12-bit precision", data: edit(func(b []byte) []byte { b[sof+4] = 12; return b }), wantErr: "unsupported precision 12 bits"},
		{name: "two components", data: edit(func(b []byte) []byte { b[sof+9] = 2; return b }), wantErr: "unsupported number of components 2"},
		{name: "count disagrees with the length", data: edit(func(b []byte) []byte { b[sof+9] = 1; return b }), wantErr: "frame header has the wrong length"},
		{name: "repeated component", data: edit(func(b []byte) []byte { b[sof+13] = b[sof+10]; return b }), wantErr: "repeated component identifier"},
		{name: "sampling factor 0", data: edit(func(b []byte) []byte { b[sof+11] = 0x10; return b }), wantErr: "bad sampling factor"},
		{name: "quantization table 4", data: edit(func(b []byte) []byte { b[sof+12] = 4; return b }), wantErr: "bad quantization table number"},
		{name: "short segment length", data: edit(func(b []byte) []byte { b[sof+2], b[sof+3] = 0, 1; return b }), wantErr: "short segment length"},
		{name: "scan before the frame", data: []byte{0xff, 0xd8, 0xff, 0xda, 0, 2}, wantErr: "missing SOF marker"},
		{name: "end before the frame", data: []byte{0xff, 0xd8, 0xff, 0xd9}, wantErr: "missing SOF marker"},
		{name: "unknown marker", data: []byte{0xff, 0xd8, 0xff, 0x42, 0, 2}, wantErr: "unknown marker 0x42"},
		{name: "unsupported marker", data: []byte{0xff, 0xd8, 0xff, 0xf0, 0, 2}, wantErr: "unsupported marker 0xf0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			format, size, err := gpkg.DecodeTileHeader(tt.data)
			if tt.wantErr != "" {
				if !errors.Is(err, gpkg.ErrTileFormat) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeTileHeader = %v, %v, want an ErrTileFormat error containing %q", size, err, tt.wantErr)
				}
				return
			}
			if err != nil || format != gpkg.JPEG || size != tt.want {
				t.Fatalf("DecodeTileHeader = %s, %v, %v, want jpeg, %v, nil", format, size, err, tt.want)
			}
		})
	}
}

// FuzzDecodeTileHeaderJPEG holds the JPEG header reader to image/jpeg:
// what jpeg.DecodeConfig reads, DecodeTileHeader reads with the same size.
// (The converse does not hold by design: jpegSize stops at the frame
// header and accepts subsampling ratios image/jpeg does not decode.)
func FuzzDecodeTileHeaderJPEG(f *testing.F) {
	f.Add(encodeJPEG(f, 256, 256, false))
	f.Add(encodeJPEG(f, 256, 256, true))
	f.Add(encodeJPEG(f, 31, 7, false))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 1, 0, 1, 0, 1, 1, 0x11, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		format, size, err := gpkg.DecodeTileHeader(data)
		if err != nil && !errors.Is(err, gpkg.ErrTileFormat) {
			t.Fatalf("DecodeTileHeader error %v does not wrap ErrTileFormat", err)
		}
		if !bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}) {
			return
		}
		cfg, stdErr := jpeg.DecodeConfig(bytes.NewReader(data))
		if stdErr != nil {
			return
		}
		if err != nil || format != gpkg.JPEG || size != image.Pt(cfg.Width, cfg.Height) {
			t.Fatalf("DecodeTileHeader = %s, %v, %v; jpeg.DecodeConfig read %d × %d", format, size, err, cfg.Width, cfg.Height)
		}
	})
}

// BenchmarkDecodeTileHeader compares reading a JPEG tile's size with
// image/jpeg's DecodeConfig, which the header reader replaces.
func BenchmarkDecodeTileHeader(b *testing.B) {
	tile := encodeJPEG(b, 256, 256, false)
	b.Run("jpegSize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := gpkg.DecodeTileHeader(tile); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("image-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.DecodeConfig(bytes.NewReader(tile)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
