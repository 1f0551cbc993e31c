package source_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// pngHeader is the bit depth and colour type of a PNG file's IHDR.
func pngHeader(tb testing.TB, data []byte) (depth, colorType byte) {
	tb.Helper()
	if len(data) < 33 || string(data[12:16]) != "IHDR" {
		tb.Fatalf("not a PNG with IHDR first: % x", data[:min(len(data), 33)])
	}
	return data[24], data[25]
}

// samePixels fails unless got decodes to exactly the pixels that image/png's
// encoding of img decodes to.
func samePixels(tb testing.TB, img image.Image, got []byte) {
	tb.Helper()
	comparePixels(tb, img, got, false)
}

// comparePixels is samePixels, where with anyClear any two fully
// transparent pixels are equal.
func comparePixels(tb testing.TB, img image.Image, got []byte, anyClear bool) {
	tb.Helper()
	var ref bytes.Buffer
	if err := png.Encode(&ref, img); err != nil {
		tb.Fatal(err)
	}
	want, err := png.Decode(&ref)
	if err != nil {
		tb.Fatal(err)
	}
	have, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		tb.Fatalf("decode our PNG: %v", err)
	}
	if have.Bounds().Size() != want.Bounds().Size() {
		tb.Fatalf("size %v, want %v", have.Bounds().Size(), want.Bounds().Size())
	}
	wb, hb := want.Bounds(), have.Bounds()
	for y := range wb.Dy() {
		for x := range wb.Dx() {
			w := color.NRGBAModel.Convert(want.At(wb.Min.X+x, wb.Min.Y+y))
			h := color.NRGBAModel.Convert(have.At(hb.Min.X+x, hb.Min.Y+y))
			if w != h && !(anyClear && w.(color.NRGBA).A == 0 && h.(color.NRGBA).A == 0) {
				tb.Fatalf("pixel (%d, %d) = %v, want %v", x, y, h, w)
			}
		}
	}
}

// colors returns an image of w × h pixels painted at random with n distinct
// colours of the given alphas, deterministically.
func colors(w, h, n int, alphas ...uint8) *image.NRGBA {
	r := rand.New(rand.NewPCG(uint64(n), uint64(w)))
	pal := make([]color.NRGBA, n)
	for i := range pal {
		pal[i] = color.NRGBA{uint8(i), uint8(i/256*100 + 7), uint8(i * 13), alphas[i%len(alphas)]} // distinct for i < 512
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// Runs of a colour, as maps have, and every colour used.
			img.SetNRGBA(x, y, pal[((y*w+x)/3+r.IntN(2))%n])
		}
	}
	return img
}

func TestEncodePNG(t *testing.T) {
	t.Parallel()
	demo := render(t, newDemo(t, grid.BBox{}), grid.Tile{Zoom: 3, Col: 9, Row: 2})
	fewColours := render(t, newDemo(t, grid.BBox{}), grid.Tile{Zoom: 12, Col: 4000, Row: 1500}) // inland: shading barely varies
	translucent := image.NewRGBA(demo.Rect)
	for i := range translucent.Pix {
		// Premultiplied: colour bytes no larger than alpha.
		a := uint8(i / 4 % 251)
		translucent.Pix[i] = min(demo.Pix[i], a)
		if i%4 == 3 {
			translucent.Pix[i] = a
		}
	}
	gray := image.NewGray(demo.Rect)
	draw.Draw(gray, gray.Rect, demo, image.Point{}, draw.Src)
	sub := demo.SubImage(image.Rect(100, 50, 356, 306))
	half := image.NewRGBA(demo.Rect)
	draw.Draw(half, image.Rect(0, 0, 256, 128), demo, image.Point{}, draw.Src)

	tests := []struct {
		name      string
		img       image.Image
		depth     byte
		colorType byte
	}{
		{"opaque imagery is RGB", demo, 8, 2},
		{"a map of few colours is a palette", fewColours, 4, 3},
		{"translucent imagery is RGBA", translucent, 8, 6},
		{"partly empty imagery is RGBA", half, 8, 6},
		{"gray is a palette", gray, 8, 3},
		{"a sub-image", sub, 8, 2},
		{"one colour", image.NewRGBA(image.Rect(0, 0, 256, 256)), 1, 3},
		{"two colours", colors(256, 256, 2, 255), 1, 3},
		{"three colours with alpha", colors(256, 256, 3, 0, 255, 128), 2, 3},
		{"sixteen colours", colors(256, 256, 16, 255), 4, 3},
		{"seventeen colours", colors(256, 256, 17, 255, 40), 8, 3},
		{"256 colours", colors(256, 256, 256, 255, 255, 0), 8, 3},
		{"257 colours", colors(256, 256, 257, 255), 8, 2},
		{"257 colours with alpha", colors(256, 256, 257, 255, 10), 8, 6},
		{"odd width", colors(255, 3, 3, 255), 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, f, err := source.Encode(tc.img, source.PolicyPNG, 0)
			if err != nil || f != source.PNG {
				t.Fatalf("Encode = %v, %v", f, err)
			}
			if depth, ct := pngHeader(t, data); depth != tc.depth || ct != tc.colorType {
				t.Errorf("bit depth %d, colour type %d; want %d and %d", depth, ct, tc.depth, tc.colorType)
			}
			samePixels(t, tc.img, data)
		})
	}
}

// TestEncodePNGSize compares sizes with image/png on the demo's tiles: a
// tile of many colours is much smaller than at image/png's fastest level
// and close to its default level, one of few colours much smaller than
// either.
func TestEncodePNGSize(t *testing.T) {
	t.Parallel()
	demo := newDemo(t, grid.BBox{})
	for _, tc := range []struct {
		tile                 grid.Tile
		ofFastest, ofDefault int // the most, in percent of image/png's size
	}{
		{grid.Tile{Zoom: 3, Col: 10, Row: 1}, 85, 107},   // Black Sea to the Caspian: coasts, borders, shading
		{grid.Tile{Zoom: 8, Col: 100, Row: 100}, 75, 75}, // open Atlantic
		{grid.Tile{Zoom: 12, Col: 4000, Row: 1500}, 75, 75},
	} {
		img := render(t, demo, tc.tile)
		data, _, err := source.Encode(img, source.PolicyPNG, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []struct {
			level png.CompressionLevel
			pct   int
		}{{png.BestSpeed, tc.ofFastest}, {png.DefaultCompression, tc.ofDefault}} {
			var b bytes.Buffer
			if err := (&png.Encoder{CompressionLevel: ref.level}).Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			if len(data)*100 > b.Len()*ref.pct {
				t.Errorf("tile %v: %d bytes, more than %d %% of image/png's %d at level %d", tc.tile, len(data), ref.pct, b.Len(), ref.level)
			}
		}
	}
}

// TestEncodePNGReadByGDAL has GDAL read each kind of PNG the encoder
// writes and checks the pixels it reads.
func TestEncodePNGReadByGDAL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("gdal_translate"); err != nil {
		t.Fatalf("gdal_translate not found: run make tools (%v)", err)
	}
	dir := t.TempDir()
	for i, img := range []image.Image{
		render(t, newDemo(t, grid.BBox{}), grid.Tile{Zoom: 3, Col: 9, Row: 2}),
		colors(256, 256, 3, 0, 255, 128),
		colors(256, 256, 17, 255, 40),
		colors(256, 256, 257, 255, 10),
	} {
		data, _, err := source.Encode(img, source.PolicyPNG, 0)
		if err != nil {
			t.Fatal(err)
		}
		in, out := filepath.Join(dir, fmt.Sprint(i, ".png")), filepath.Join(dir, fmt.Sprint(i, ".out.png"))
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// -expand rgba makes GDAL resolve the palette and transparency.
		if b, err := exec.Command("gdal_translate", "-q", "-of", "PNG", "-expand", "rgba", in, out).CombinedOutput(); err != nil {
			if b2, err2 := exec.Command("gdal_translate", "-q", "-of", "PNG", in, out).CombinedOutput(); err2 != nil {
				t.Fatalf("gdal_translate %d: %v %s %s", i, err, b, b2)
			}
		}
		back, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		comparePixels(t, img, back, true) // GDAL clears transparent pixels
	}
}

func FuzzEncodePNG(f *testing.F) {
	f.Add(uint8(3), uint8(2), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(16), uint8(16), bytes.Repeat([]byte{0, 0, 0, 0, 255, 255, 255, 255}, 100))
	f.Add(uint8(1), uint8(1), []byte{10, 20, 30, 40})
	f.Fuzz(func(t *testing.T, w, h uint8, pix []byte) {
		if w == 0 || h == 0 || len(pix) == 0 {
			return
		}
		w, h = w%64+1, h%64+1 // small, for many runs a second
		n := int(w) * int(h) * 4
		img := image.NewRGBA(image.Rect(0, 0, int(w), int(h)))
		for i := range n {
			img.Pix[i] = pix[i%len(pix)]
		}
		for i := 0; i < n; i += 4 { // premultiplied: colour ≤ alpha
			a := img.Pix[i+3]
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = min(img.Pix[i], a), min(img.Pix[i+1], a), min(img.Pix[i+2], a)
		}
		nrgba := image.NewNRGBA(img.Rect)
		copy(nrgba.Pix, pix[:min(len(pix), n)])
		for _, m := range []image.Image{img, nrgba} {
			data, _, err := source.Encode(m, source.PolicyPNG, 0)
			if err != nil {
				t.Fatal(err)
			}
			samePixels(t, m, data)
		}
	})
}

// BenchmarkPNGEncoders compares the exporter's PNG tiles with image/png's at
// its fastest level (what tiles were written with before) and at its
// default level, in time and bytes, on a tile of many colours and one of
// few.
func BenchmarkPNGEncoders(b *testing.B) {
	demo := newDemo(b, grid.BBox{})
	for _, tc := range []struct {
		name string
		tile grid.Tile
	}{{"many-colours", grid.Tile{Zoom: 3, Col: 9, Row: 2}}, {"few-colours", grid.Tile{Zoom: 12, Col: 4000, Row: 1500}}} {
		img := render(b, demo, tc.tile)
		b.Run(tc.name+"/exporter", func(b *testing.B) {
			var size int
			for b.Loop() {
				data, _, err := source.Encode(img, source.PolicyPNG, 0)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size), "bytes/tile")
		})
		for _, ref := range []struct {
			name  string
			level png.CompressionLevel
		}{{"image-png-fastest", png.BestSpeed}, {"image-png-default", png.DefaultCompression}} {
			b.Run(tc.name+"/"+ref.name, func(b *testing.B) {
				enc := png.Encoder{CompressionLevel: ref.level}
				var buf bytes.Buffer
				for b.Loop() {
					buf.Reset()
					if err := enc.Encode(&buf, img); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "bytes/tile")
			})
		}
	}
}
