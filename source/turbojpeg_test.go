package source_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// noisyImage is a w × h opaque image with gradients and noise, about as
// costly to code as aerial imagery.
func noisyImage(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(3, 4))
	for y := range h {
		for x := range w {
			n := byte(rng.IntN(24))
			m.SetRGBA(x, y, color.RGBA{R: byte(x) + n, G: byte(y) + n, B: byte(x+y) + n, A: 0xff})
		}
	}
	return m
}

// maxDiff is the largest difference of any colour channel between a and b.
func maxDiff(a, b image.Image) int {
	d := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			for _, p := range [][2]uint32{{ar, br}, {ag, bg}, {ab, bb}} {
				d = max(d, int(absDiff(uint8(p[0]>>8), uint8(p[1]>>8))))
			}
		}
	}
	return d
}

// TestJPEGDecodeMatchesImageJPEG checks that metatiles decoded through
// libjpeg-turbo are the pixels image/jpeg decodes, within the rounding of
// two IDCTs, and cut into opaque tiles.
func TestJPEGDecodeMatchesImageJPEG(t *testing.T) {
	t.Parallel()
	data := encodeJPEG(t, noisyImage(512, 512))
	want, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tiles, err := source.CutMetatile(data, 2, 2)
	if err != nil || len(tiles) != 4 {
		t.Fatalf("CutMetatile = %d tiles, %v", len(tiles), err)
	}
	for i, tile := range tiles {
		if _, ok := tile.(*image.RGBA); !ok || !source.IsOpaque(tile) {
			t.Errorf("tile %d is a %T, opaque %v; want an opaque *image.RGBA", i, tile, source.IsOpaque(tile))
		}
		x0, y0 := i%2*grid.TileSize, i/2*grid.TileSize
		sub := want.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(x0, y0, x0+grid.TileSize, y0+grid.TileSize))
		shifted := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
		for y := range grid.TileSize {
			for x := range grid.TileSize {
				shifted.Set(x, y, sub.At(x0+x, y0+y))
			}
		}
		// Two IDCTs and colour conversions round differently: a few levels
		// on single pixels, under one level on average.
		if d, mean := maxDiff(tile, shifted), meanDiff(tile, shifted); d > 6 || mean > 1 {
			t.Errorf("tile %d differs from image/jpeg's decoding by up to %d levels, %.2f on average", i, d, mean)
		}
	}
}

// TestJPEGDecodeFallbacks covers the JPEGs libjpeg-turbo does not turn
// into RGBA: CMYK (from print workflows; image/jpeg converts it), grey
// (it converts), and broken streams (both refuse; the error names the
// data as invalid).
func TestJPEGDecodeFallbacks(t *testing.T) {
	t.Parallel()
	cmyk, err := os.ReadFile("testdata/cmyk.jpg") // 256 × 256, CMYK (10, 200, 30, 0), written by PIL
	if err != nil {
		t.Fatal(err)
	}
	grey := image.NewGray(image.Rect(0, 0, 256, 256))
	for i := range grey.Pix {
		grey.Pix[i] = byte(i)
	}
	good := encodeJPEG(t, noisyImage(256, 256))
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr bool
	}{
		{name: "cmyk", data: cmyk},
		{name: "grey", data: encodeJPEG(t, grey)},
		{name: "truncated", data: good[:len(good)/2], wantErr: true},
		{name: "header only", data: good[:200], wantErr: true},
		{name: "garbage after the marker", data: append([]byte{0xff, 0xd8, 0xff}, bytes.Repeat([]byte{0x5a}, 500)...), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tiles, err := source.CutMetatile(tc.data, 1, 1)
			if tc.wantErr {
				if !errors.Is(err, source.ErrInvalidData) {
					t.Errorf("CutMetatile = %v, want ErrInvalidData", err)
				}
				return
			}
			if err != nil || len(tiles) != 1 {
				t.Fatalf("CutMetatile = %d tiles, %v", len(tiles), err)
			}
			ref, err := jpeg.Decode(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(tiles[0], ref); d > 6 {
				t.Errorf("decoded tile differs from image/jpeg's by up to %d levels", d)
			}
		})
	}
}

// TestJPEGEncode checks that tiles encoded through libjpeg-turbo decode
// with image/jpeg to the image given, for an RGBA tile and for an opaque
// NRGBA one (viewed as RGBA), and that a sub-image is encoded from its
// own pixels.
func TestJPEGEncode(t *testing.T) {
	t.Parallel()
	big := noisyImage(512, 512)
	sub := big.SubImage(image.Rect(256, 256, 512, 512)).(*image.RGBA)
	nrgba := &image.NRGBA{Pix: sub.Pix, Stride: sub.Stride, Rect: sub.Rect}
	for name, img := range map[string]image.Image{"rgba": noisyImage(256, 256), "sub-image": sub, "opaque nrgba": nrgba} {
		data, f, err := source.Encode(img, source.PolicyJPEG, 90)
		if err != nil || f != source.JPEG {
			t.Fatalf("%s: Encode = %s, %v", name, f, err)
		}
		got, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/jpeg cannot read the tile: %v", name, err)
		}
		if got.Bounds().Dx() != 256 || got.Bounds().Dy() != 256 {
			t.Fatalf("%s: tile is %v", name, got.Bounds())
		}
		ref := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for y := range 256 {
			for x := range 256 {
				ref.Set(x, y, img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y))
			}
		}
		// libjpeg-turbo keeps the image as well as image/jpeg does at the
		// same quality.
		var goJPEG bytes.Buffer
		if err := jpeg.Encode(&goJPEG, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		goGot, err := jpeg.Decode(&goJPEG)
		if err != nil {
			t.Fatal(err)
		}
		if mean, goMean := meanDiff(got, ref), meanDiff(goGot, ref); mean > goMean+0.5 {
			t.Errorf("%s: mean error %.2f levels after a round trip, image/jpeg's %.2f", name, mean, goMean)
		}
	}
}

// meanDiff is the mean difference of the colour channels of a and b,
// both at the origin.
func meanDiff(a, b image.Image) float64 {
	var sum, n int
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			sum += int(absDiff(uint8(ar>>8), uint8(br>>8))) + int(absDiff(uint8(ag>>8), uint8(bg>>8))) + int(absDiff(uint8(ab>>8), uint8(bb>>8)))
			n += 3
		}
	}
	return float64(sum) / float64(n)
}

// TestJPEGCropRefuses covers the answers the lossless cut leaves to the
// decoder: a layout it cannot hold, a size that is not the layout's, CMYK
// and data that is not a JPEG.
func TestJPEGCropRefuses(t *testing.T) {
	t.Parallel()
	cmyk, err := os.ReadFile("testdata/cmyk.jpg")
	if err != nil {
		t.Fatal(err)
	}
	meta := encodeJPEG(t, noisyImage(512, 256))
	for _, tc := range []struct {
		name       string
		data       []byte
		cols, rows int
	}{
		{name: "no tiles", data: meta, cols: 0, rows: 1},
		{name: "beyond the largest metatile", data: meta, cols: source.MaxMetatile + 1, rows: 1},
		{name: "wrong layout", data: meta, cols: 1, rows: 2},
		{name: "cmyk", data: cmyk, cols: 1, rows: 1},
		{name: "png", data: encodePNG(t, noisyImage(256, 256)), cols: 1, rows: 1},
		{name: "empty", cols: 1, rows: 1},
	} {
		if tiles, err := source.CropMetatile(tc.data, tc.cols, tc.rows); err == nil {
			t.Errorf("%s: CropMetatile = %d tiles, want an error", tc.name, len(tiles))
		}
	}
	tiles, err := source.CropMetatile(meta, 2, 1)
	if err != nil || len(tiles) != 2 {
		t.Fatalf("CropMetatile(2 × 1) = %d tiles, %v", len(tiles), err)
	}
}

// BenchmarkDecodeJPEGMetatile decodes a 1024 × 1024 JPEG answer and cuts
// it into 16 tiles: the client's work for one 4 × 4 WMS metatile.
func BenchmarkDecodeJPEGMetatile(b *testing.B) {
	data := encodeJPEG(b, noisyImage(1024, 1024))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if tiles, err := source.CutMetatile(data, 4, 4); err != nil || len(tiles) != 16 {
			b.Fatalf("CutMetatile = %d tiles, %v", len(tiles), err)
		}
	}
}

// BenchmarkEncodeJPEGTile encodes one opaque 256 × 256 tile of imagery.
func BenchmarkEncodeJPEGTile(b *testing.B) {
	img := noisyImage(256, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := source.Encode(img, source.PolicyJPEG, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCropJPEGMetatile cuts a 1024 × 1024 JPEG answer into 16 JPEG
// tiles without decoding: what replaces decode, cut and encode for a WMS
// answering JPEG.
func BenchmarkCropJPEGMetatile(b *testing.B) {
	data := encodeJPEG(b, noisyImage(1024, 1024))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if tiles, err := source.CropMetatile(data, 4, 4); err != nil || len(tiles) != 16 {
			b.Fatalf("CropMetatile = %d tiles, %v", len(tiles), err)
		}
	}
}
