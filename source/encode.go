package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"
	"sync"
)

// FormatPolicy says how rendered tiles are encoded.
type FormatPolicy string

// Format policies a layer may set.
const (
	// PolicyPNG encodes every tile as PNG.
	PolicyPNG FormatPolicy = "png"
	// PolicyJPEG encodes every tile as JPEG. JPEG has no alpha channel:
	// transparent pixels become black and translucent ones darker. Use
	// PolicyMixed for layers whose tiles can be partly transparent.
	PolicyJPEG FormatPolicy = "jpeg"
	// PolicyMixed encodes fully opaque tiles as JPEG and every other tile as
	// PNG, so transparency survives where it is used and opaque imagery
	// stays small.
	PolicyMixed FormatPolicy = "mixed"
)

// DefaultJPEGQuality is the JPEG quality Encode uses when given 0.
const DefaultJPEGQuality = 85

// ParseFormatPolicy parses "png", "jpeg" or "mixed" (any case, surrounding
// space ignored).
func ParseFormatPolicy(s string) (FormatPolicy, error) {
	switch p := FormatPolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case PolicyPNG, PolicyJPEG, PolicyMixed:
		return p, nil
	}
	return "", fmt.Errorf("source: unknown format policy %q: want png, jpeg or mixed", s)
}

// Allows reports whether a stored tile of format f may be kept as it is
// under p: png keeps only PNG tiles, jpeg only JPEG ones, and mixed
// either (a JPEG tile is opaque; a PNG one may be, which mixed allows).
func (p FormatPolicy) Allows(f Format) bool {
	switch p {
	case PolicyPNG:
		return f == PNG
	case PolicyJPEG:
		return f == JPEG
	}
	return f == PNG || f == JPEG
}

// Validate reports whether p is one of the defined policies.
func (p FormatPolicy) Validate() error {
	switch p {
	case PolicyPNG, PolicyJPEG, PolicyMixed:
		return nil
	}
	return fmt.Errorf("source: unknown format policy %q: want png, jpeg or mixed", string(p))
}

// Encode encodes img under policy and returns the bytes and their format.
// jpegQuality is 1..100, or 0 for DefaultJPEGQuality; it is checked even
// when the tile ends up as PNG, so a bad setting shows on the first tile.
// PNG tiles are written as libpng's defaults would write them (see
// encodePNG): a palette when a tile has at most 256 colours, no alpha
// channel when it is opaque. Encode is safe for concurrent use and
// the returned slice belongs to the caller.
func Encode(img image.Image, policy FormatPolicy, jpegQuality int) ([]byte, Format, error) {
	if err := policy.Validate(); err != nil {
		return nil, "", err
	}
	if jpegQuality == 0 {
		jpegQuality = DefaultJPEGQuality
	}
	if jpegQuality < 1 || jpegQuality > 100 {
		return nil, "", fmt.Errorf("source: jpeg quality %d: want 1..100, or 0 for %d", jpegQuality, DefaultJPEGQuality)
	}
	if img == nil || img.Bounds().Empty() {
		return nil, "", errors.New("source: encode empty image")
	}

	f := PNG
	switch policy {
	case PolicyJPEG:
		f = JPEG
	case PolicyMixed:
		if IsOpaque(img) {
			f = JPEG
		}
	}

	var view image.Image
	if f == JPEG {
		view = jpegView(img)
		if m, ok := view.(*image.RGBA); ok {
			if data, err := turboEncode(m, jpegQuality); err == nil {
				return data, JPEG, nil
			}
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuf(buf)
	buf.Reset()
	var err error
	if f == JPEG {
		err = jpeg.Encode(buf, view, &jpeg.Options{Quality: jpegQuality})
	} else {
		err = encodePNG(buf, img)
	}
	if err != nil {
		return nil, "", fmt.Errorf("source: encode %s: %w", f, err)
	}
	return bytes.Clone(buf.Bytes()), f, nil
}

// bufPool holds output buffers; the result is copied out, so a buffer sized
// for one tile serves the next without growing again.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps buffers grown by an unusually large image out of the
// pool.
const maxPooledBuf = 4 << 20

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

// jpegView returns img in a form image/jpeg encodes without per-pixel
// interface calls. An opaque *image.NRGBA has the same bytes as an
// *image.RGBA, so it is viewed as one without copying.
func jpegView(img image.Image) image.Image {
	if m, ok := img.(*image.NRGBA); ok && IsOpaque(m) {
		return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	}
	return img
}

// IsEmpty reports whether every pixel of img is fully transparent: such a
// tile carries no data and is not written. An image with empty bounds is
// empty.
func IsEmpty(img image.Image) bool {
	return allAlpha(img, 0x00)
}

// IsOpaque reports whether every pixel of img is fully opaque, so that the
// tile can be stored as JPEG without losing anything but detail. An image
// with empty bounds is opaque.
func IsOpaque(img image.Image) bool {
	switch m := img.(type) {
	case *image.RGBA, *image.NRGBA:
		// scanned by allAlpha, faster than their Opaque methods
	case interface{ Opaque() bool }:
		return m.Opaque()
	}
	return allAlpha(img, 0xff)
}

// allAlpha reports whether every pixel of img has the alpha want (0x00 or
// 0xff), scanning the bytes of RGBA and NRGBA images directly.
func allAlpha(img image.Image, want byte) bool {
	switch m := img.(type) {
	case *image.RGBA:
		return scanAlpha(m.Pix, m.Stride, m.Rect, want)
	case *image.NRGBA:
		return scanAlpha(m.Pix, m.Stride, m.Rect, want)
	}
	want16 := uint32(want) * 0x101
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != want16 {
				return false
			}
		}
	}
	return true
}

// scanAlpha reports whether every alpha byte of the 4-byte pixels in r is
// want (0x00 or 0xff). It tests two pixels per 8-byte load.
func scanAlpha(pix []byte, stride int, r image.Rectangle, want byte) bool {
	const alphaMask = 0xff000000_ff000000
	wantWord := uint64(0)
	if want == 0xff {
		wantWord = alphaMask
	}
	w := r.Dx() * 4
	for y := 0; y < r.Dy(); y++ {
		row := pix[y*stride : y*stride+w]
		for len(row) >= 8 {
			if binary.LittleEndian.Uint64(row)&alphaMask != wantWord {
				return false
			}
			row = row[8:]
		}
		if len(row) == 4 && row[3] != want {
			return false
		}
	}
	return true
}
