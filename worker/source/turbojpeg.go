package source

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// JPEG decoding and encoding go through libjpeg-turbo's TurboJPEG API
// (Debian libturbojpeg0): on 1024 × 1024 metatiles it decodes about four
// times faster than image/jpeg and straight into RGBA, and it encodes a
// tile several times faster, which is the whole difference between a
// worker that keeps up with a WMS and one that does not (see
// docs/performance.md). No Go module wraps it that is kept up; the part
// used here is four calls. Images TurboJPEG cannot convert to RGBA (CMYK
// and YCCK JPEGs from print workflows) and tiles it finds corrupt go
// through image/jpeg, which either decodes them or names the error.

// errTurbo marks a TurboJPEG failure; callers fall back to image/jpeg.
var errTurbo = errors.New("turbojpeg")

// turboError returns TurboJPEG's message for the last failure on h.
func turboError(h C.tjhandle, op string) error {
	return fmt.Errorf("%w: %s: %s", errTurbo, op, C.GoString(C.tjGetErrorStr2(h)))
}

// turboDecode decodes a JPEG into an opaque *image.RGBA at the origin.
// Dimensions beyond maxImageSide are refused before any pixel is decoded.
func turboDecode(data []byte) (*image.RGBA, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty data", errTurbo)
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, fmt.Errorf("%w: init decompressor", errTurbo)
	}
	defer C.tjDestroy(h)
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	var w, ht, subsamp, colorspace C.int
	if C.tjDecompressHeader3(h, src, C.ulong(len(data)), &w, &ht, &subsamp, &colorspace) != 0 {
		return nil, turboError(h, "header")
	}
	if w <= 0 || ht <= 0 || w > maxImageSide || ht > maxImageSide {
		return nil, fmt.Errorf("%w: image is %d × %d pixels", errTurbo, w, ht)
	}
	if colorspace == C.TJCS_CMYK || colorspace == C.TJCS_YCCK {
		return nil, fmt.Errorf("%w: CMYK image", errTurbo)
	}
	m := image.NewRGBA(image.Rect(0, 0, int(w), int(ht)))
	// TJPF_RGBA fills the alpha byte with 0xff: the result is opaque RGBA
	// with no conversion pass. TJFLAG_FASTUPSAMPLE replicates chroma
	// within each block, as image/jpeg does, instead of smoothing it
	// across blocks: a tile cut from a metatile then holds nothing of its
	// neighbours, so a uniform no-data tile beside imagery stays uniform.
	// Warnings (a corrupt but decodable stream) fail too, so such tiles
	// get image/jpeg's verdict.
	if C.tjDecompress2(h, src, C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&m.Pix[0])), w, C.int(m.Stride), ht, C.TJPF_RGBA, C.TJFLAG_FASTUPSAMPLE) != 0 {
		return nil, turboError(h, "decode")
	}
	return m, nil
}

// turboEncode encodes the pixels of an *image.RGBA (alpha ignored, as
// image/jpeg ignores it for premultiplied RGBA) as a baseline 4:2:0 JPEG
// of the given quality.
func turboEncode(m *image.RGBA, quality int) ([]byte, error) {
	b := m.Rect
	if b.Empty() {
		return nil, fmt.Errorf("%w: empty image", errTurbo)
	}
	h := C.tjInitCompress()
	if h == nil {
		return nil, fmt.Errorf("%w: init compressor", errTurbo)
	}
	defer C.tjDestroy(h)
	pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y):]
	var out *C.uchar
	var size C.ulong
	if C.tjCompress2(h, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(b.Dx()), C.int(m.Stride), C.int(b.Dy()), C.TJPF_RGBA,
		&out, &size, C.TJSAMP_420, C.int(quality), 0) != 0 {
		if out != nil {
			C.tjFree(out)
		}
		return nil, turboError(h, "encode")
	}
	defer C.tjFree(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
