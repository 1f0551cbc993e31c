package source_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// TestFormatPolicyAllows: which stored tiles a policy keeps as they are.
func TestFormatPolicyAllows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy    source.FormatPolicy
		png, jpeg bool
	}{
		{source.PolicyPNG, true, false},
		{source.PolicyJPEG, false, true},
		{source.PolicyMixed, true, true},
	} {
		if got := tc.policy.Allows(source.PNG); got != tc.png {
			t.Errorf("%s.Allows(PNG) = %v, want %v", tc.policy, got, tc.png)
		}
		if got := tc.policy.Allows(source.JPEG); got != tc.jpeg {
			t.Errorf("%s.Allows(JPEG) = %v, want %v", tc.policy, got, tc.jpeg)
		}
	}
}

func TestParseFormatPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    source.FormatPolicy
		wantErr string
	}{
		{name: "png", in: "png", want: source.PolicyPNG},
		{name: "jpeg", in: "jpeg", want: source.PolicyJPEG},
		{name: "mixed", in: "mixed", want: source.PolicyMixed},
		{name: "case and space", in: " Mixed\n", want: source.PolicyMixed},
		{name: "jpg is not a policy", in: "jpg", wantErr: `"jpg": want png, jpeg or mixed`},
		{name: "empty", in: "", wantErr: `"": want png, jpeg or mixed`},
		{name: "webp", in: "webp", wantErr: `"webp": want png, jpeg or mixed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := source.ParseFormatPolicy(tc.in)
			checkParse(t, "ParseFormatPolicy", tc.in, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseRowOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    source.RowOrigin
		wantErr string
	}{
		{name: "top", in: "top", want: source.RowOriginTop},
		{name: "bottom", in: "bottom", want: source.RowOriginBottom},
		{name: "case and space", in: " BOTTOM ", want: source.RowOriginBottom},
		{name: "tms is not an origin", in: "tms", wantErr: `"tms": want top or bottom`},
		{name: "empty", in: "", wantErr: `"": want top or bottom`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := source.ParseRowOrigin(tc.in)
			checkParse(t, "ParseRowOrigin", tc.in, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkParse[T comparable](tb testing.TB, fn, in string, got T, err error, want T, wantErr string) {
	tb.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			tb.Errorf("%s(%q) error = %v, want it to contain %q", fn, in, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		tb.Errorf("%s(%q) = %v, %v, want %v, nil", fn, in, got, err, want)
	}
}

// halfTransparent is an opaque tile whose right half is transparent.
func halfTransparent() *image.NRGBA {
	m := solid(color.NRGBA{R: 200, G: 100, B: 50, A: 255})
	for y := range 256 {
		for x := 128; x < 256; x++ {
			m.SetNRGBA(x, y, color.NRGBA{})
		}
	}
	return m
}

// gradient is an opaque RGBA tile with smooth colour, as JPEG likes it.
func gradient() *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			m.SetRGBA(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: 128, A: 255})
		}
	}
	return m
}

func TestEncode(t *testing.T) {
	t.Parallel()
	gray := image.NewGray(image.Rect(0, 0, 256, 256))
	tests := []struct {
		name   string
		img    image.Image
		policy source.FormatPolicy
		want   source.Format
	}{
		{name: "png policy opaque", img: gradient(), policy: source.PolicyPNG, want: source.PNG},
		{name: "png policy transparent", img: halfTransparent(), policy: source.PolicyPNG, want: source.PNG},
		{name: "jpeg policy opaque", img: gradient(), policy: source.PolicyJPEG, want: source.JPEG},
		{name: "jpeg policy transparent", img: halfTransparent(), policy: source.PolicyJPEG, want: source.JPEG},
		{name: "mixed opaque rgba", img: gradient(), policy: source.PolicyMixed, want: source.JPEG},
		{name: "mixed opaque nrgba", img: solid(color.NRGBA{R: 9, G: 99, B: 199, A: 255}), policy: source.PolicyMixed, want: source.JPEG},
		{name: "mixed one translucent pixel", img: withPixel(gradient(), 255, 255, color.RGBA{A: 254}), policy: source.PolicyMixed, want: source.PNG},
		{name: "mixed transparent", img: halfTransparent(), policy: source.PolicyMixed, want: source.PNG},
		{name: "mixed gray", img: gray, policy: source.PolicyMixed, want: source.JPEG},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, f, err := source.Encode(tc.img, tc.policy, 0)
			if err != nil {
				t.Fatalf("Encode(%s): %v", tc.policy, err)
			}
			if f != tc.want {
				t.Errorf("Encode(%s) format = %s, want %s", tc.policy, f, tc.want)
			}
			if detected, _ := gpkg.DetectFormat(data); detected != f {
				t.Errorf("Encode(%s) returned %s bytes labelled %s", tc.policy, detected, f)
			}
			decoded, _, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("decode Encode(%s) output: %v", tc.policy, err)
			}
			if f == source.PNG {
				// PNG is lossless: every pixel comes back.
				if diff := cmp.Diff(nrgbaPixels(tc.img), nrgbaPixels(decoded)); diff != "" {
					t.Errorf("PNG round trip (-want +got):\n%s", diff)
				}
				return
			}
			if b := decoded.Bounds(); b != tc.img.Bounds() {
				t.Errorf("JPEG bounds = %v, want %v", b, tc.img.Bounds())
			}
		})
	}
}

func TestEncodeJPEGQuality(t *testing.T) {
	t.Parallel()
	img := gradient()
	sizes := map[int]int{}
	for _, q := range []int{0, 10, source.DefaultJPEGQuality, 100} {
		data, f, err := source.Encode(img, source.PolicyJPEG, q)
		if err != nil || f != source.JPEG {
			t.Fatalf("Encode(jpeg, %d) = %s, %v, want jpeg", q, f, err)
		}
		sizes[q] = len(data)
	}
	if sizes[0] != sizes[source.DefaultJPEGQuality] {
		t.Errorf("quality 0 gave %d bytes, quality %d gave %d, want the same", sizes[0], source.DefaultJPEGQuality, sizes[source.DefaultJPEGQuality])
	}
	if !(sizes[10] < sizes[source.DefaultJPEGQuality] && sizes[source.DefaultJPEGQuality] < sizes[100]) {
		t.Errorf("JPEG sizes by quality = %v, want them to grow with quality", sizes)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		img     image.Image
		policy  source.FormatPolicy
		quality int
		wantErr string
	}{
		{name: "unknown policy", img: gradient(), policy: "webp", wantErr: `"webp": want png, jpeg or mixed`},
		{name: "empty policy", img: gradient(), policy: "", wantErr: `"": want png, jpeg or mixed`},
		{name: "quality too high", img: gradient(), policy: source.PolicyMixed, quality: 101, wantErr: "jpeg quality 101"},
		{name: "quality negative", img: gradient(), policy: source.PolicyPNG, quality: -1, wantErr: "jpeg quality -1"},
		{name: "nil image", img: nil, policy: source.PolicyPNG, wantErr: "empty image"},
		{name: "empty bounds", img: image.NewRGBA(image.Rectangle{}), policy: source.PolicyPNG, wantErr: "empty image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, f, err := source.Encode(tc.img, tc.policy, tc.quality)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Encode(%s, %d) = %d bytes, %s, %v, want an error containing %q", tc.policy, tc.quality, len(data), f, err, tc.wantErr)
			}
		})
	}
}

// TestEncodeConcurrent shares the pooled buffers between goroutines; the
// race detector and the byte comparison catch a buffer handed out twice.
func TestEncodeConcurrent(t *testing.T) {
	t.Parallel()
	imgs := []image.Image{gradient(), halfTransparent(), solid(color.NRGBA{B: 255, A: 255})}
	want := make([][]byte, len(imgs))
	for i, img := range imgs {
		data, _, err := source.Encode(img, source.PolicyMixed, 0)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		want[i] = data
	}
	done := make(chan error)
	const goroutines = 4
	for g := range goroutines {
		go func() {
			for n := range 6 {
				i := (g + n) % len(imgs)
				data, _, err := source.Encode(imgs[i], source.PolicyMixed, 0)
				if err == nil && !bytes.Equal(data, want[i]) {
					err = fmt.Errorf("goroutine %d: image %d encoded differently", g, i)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range goroutines {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestIsEmptyIsOpaque(t *testing.T) {
	t.Parallel()
	odd := image.Rect(0, 0, 3, 2) // an odd width leaves one pixel after the 8-byte words
	palette := color.Palette{color.NRGBA{}, color.NRGBA{R: 255, A: 255}}
	tests := []struct {
		name       string
		img        image.Image
		wantEmpty  bool
		wantOpaque bool
	}{
		{name: "new rgba", img: image.NewRGBA(odd), wantEmpty: true},
		{name: "new nrgba", img: image.NewNRGBA(odd), wantEmpty: true},
		{name: "nrgba colour without alpha", img: fillNRGBA(odd, color.NRGBA{R: 255, G: 255, B: 255}), wantEmpty: true},
		{name: "opaque rgba", img: fillRGBA(odd, color.RGBA{A: 255}), wantOpaque: true},
		{name: "opaque nrgba", img: fillNRGBA(odd, color.NRGBA{G: 7, A: 255}), wantOpaque: true},
		{name: "rgba last pixel visible", img: withPixel(image.NewRGBA(odd), 2, 1, color.RGBA{A: 1}), wantEmpty: false},
		{name: "rgba last pixel translucent", img: withPixel(fillRGBA(odd, color.RGBA{A: 255}), 2, 1, color.RGBA{A: 128}), wantOpaque: false},
		{name: "rgba first pixel transparent", img: withPixel(fillRGBA(odd, color.RGBA{A: 255}), 0, 0, color.RGBA{})},
		{name: "translucent everywhere", img: fillNRGBA(odd, color.NRGBA{R: 1, A: 128})},
		{
			// A sub-image shares its parent's stride; the parent's transparent
			// pixels outside it must not count.
			name:       "opaque sub-image of transparent parent",
			img:        fillRGBA(image.Rect(1, 1, 4, 3), color.RGBA{A: 255}).SubImage(image.Rect(2, 1, 3, 3)),
			wantOpaque: true,
		},
		{
			name:      "empty sub-image of opaque parent",
			img:       withPixel(withPixel(fillNRGBA(image.Rect(0, 0, 5, 4), color.NRGBA{A: 255}), 3, 2, color.NRGBA{}), 3, 1, color.NRGBA{}).SubImage(image.Rect(3, 1, 4, 3)),
			wantEmpty: true,
		},
		{name: "demo tile", img: render(t, newDemo(t, grid.BBox{}), grid.Tile{Zoom: 2, Col: 3, Row: 1}), wantOpaque: true},
		{name: "gray", img: image.NewGray(odd), wantOpaque: true},
		{name: "paletted transparent", img: image.NewPaletted(odd, palette), wantEmpty: true},
		{name: "paletted mixed", img: withPixel(image.NewPaletted(odd, palette), 1, 1, palette[1])},
		{name: "zero size", img: image.NewRGBA(image.Rectangle{}), wantEmpty: true, wantOpaque: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := source.IsEmpty(tc.img); got != tc.wantEmpty {
				t.Errorf("IsEmpty(%T %v) = %v, want %v", tc.img, tc.img.Bounds(), got, tc.wantEmpty)
			}
			if got := source.IsOpaque(tc.img); got != tc.wantOpaque {
				t.Errorf("IsOpaque(%T %v) = %v, want %v", tc.img, tc.img.Bounds(), got, tc.wantOpaque)
			}
		})
	}
}

func BenchmarkEncodePNG(b *testing.B) {
	benchmarkEncode(b, source.PolicyPNG)
}

func BenchmarkEncodeJPEG(b *testing.B) {
	benchmarkEncode(b, source.PolicyJPEG)
}

func benchmarkEncode(b *testing.B, policy source.FormatPolicy) {
	img := render(b, newDemo(b, grid.BBox{}), grid.Tile{Zoom: 3, Col: 9, Row: 2})
	var size int
	b.ReportAllocs()
	for b.Loop() {
		data, _, err := source.Encode(img, policy, 0)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes/tile")
}

func BenchmarkIsOpaque(b *testing.B) {
	img := render(b, newDemo(b, grid.BBox{}), grid.Tile{Zoom: 3, Col: 9, Row: 2})
	b.ReportAllocs()
	for b.Loop() {
		if !source.IsOpaque(img) {
			b.Fatal("demo tile not opaque")
		}
	}
}

func fillRGBA(r image.Rectangle, c color.RGBA) *image.RGBA {
	m := image.NewRGBA(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func fillNRGBA(r image.Rectangle, c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func withPixel[M interface{ Set(x, y int, c color.Color) }](m M, x, y int, c color.Color) M {
	m.Set(x, y, c)
	return m
}

// nrgbaPixels lists m's pixels as non-premultiplied colours, row by row.
func nrgbaPixels(m image.Image) []color.NRGBA {
	b := m.Bounds()
	out := make([]color.NRGBA, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out = append(out, color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA))
		}
	}
	return out
}
