package gpkg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// jpegSize reads the size of a JPEG image from its frame header (SOF),
// walking the markers before it the way image/jpeg does: fill bytes and
// stray data between segments are skipped, a restart marker has no
// length, and an image that reaches its scan or its end without a frame is
// refused.
//
// It is written here rather than calling jpeg.DecodeConfig because that
// allocates a whole decoder, 13.6 KB, for every call: about 10 µs per tile,
// and every stored tile's header is read twice on its way into a package
// (by the source that checks it and by the writer that puts it). This
// reads the same bytes without allocating.
//
// It refuses what image/jpeg refuses in a frame header: a precision other
// than 8 bits, a component count other than 1, 3 or 4 or one that
// disagrees with the segment's length, repeated component identifiers,
// sampling factors outside 1–4 and quantization table numbers over 3, and
// the lossless, hierarchical and arithmetic-coded frames. It does not
// apply image/jpeg's narrower list of chroma subsampling ratios, which
// libjpeg (and so GDAL) does not share, and does not read the segments
// after the frame header.
func jpegSize(data []byte) (image.Point, error) {
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return image.Point{}, errors.New("missing SOI marker")
	}
	for i := 2; ; {
		// Skip to the next 0xff that starts a marker (stray data and
		// "\xff\x00" are ignored), then past its fill bytes.
		for i < len(data) && data[i] != 0xff {
			i++
		}
		for i < len(data) && data[i] == 0xff {
			i++
		}
		if i >= len(data) {
			return image.Point{}, errJPEGEnd
		}
		marker := data[i]
		i++
		switch {
		case marker == 0x00, 0xd0 <= marker && marker <= 0xd7: // escaped 0xff, RSTn
			continue
		case marker == 0xd9: // EOI
			return image.Point{}, errors.New("missing SOF marker")
		}
		if i+2 > len(data) {
			return image.Point{}, errJPEGEnd
		}
		n := int(binary.BigEndian.Uint16(data[i:])) - 2
		i += 2
		if n < 0 {
			return image.Point{}, errors.New("short segment length")
		}
		switch {
		case marker == 0xc0, marker == 0xc1, marker == 0xc2: // SOF0–2: baseline, extended, progressive
			if i+n > len(data) {
				return image.Point{}, errJPEGEnd
			}
			return jpegFrame(data[i : i+n])
		case marker == 0xda: // SOS
			return image.Point{}, errors.New("missing SOF marker")
		case marker == 0xc4, marker == 0xdb, marker == 0xdd, // DHT, DQT, DRI
			0xe0 <= marker && marker <= 0xef, marker == 0xfe: // APPn, COM
			i += n
		case 0xc0 <= marker && marker <= 0xcf:
			return image.Point{}, fmt.Errorf("unsupported frame type (SOF%d)", marker-0xc0)
		case marker < 0xc0:
			return image.Point{}, fmt.Errorf("unknown marker %#02x", marker)
		default:
			return image.Point{}, fmt.Errorf("unsupported marker %#02x", marker)
		}
	}
}

var errJPEGEnd = errors.New("data ends before the frame header")

// jpegFrame checks a frame header's body (after its length) and returns
// the image's size.
func jpegFrame(b []byte) (image.Point, error) {
	if len(b) < 6 {
		return image.Point{}, errors.New("short frame header")
	}
	nComp := int(b[5])
	switch {
	case b[0] != 8:
		return image.Point{}, fmt.Errorf("unsupported precision %d bits", b[0])
	case nComp != 1 && nComp != 3 && nComp != 4:
		return image.Point{}, fmt.Errorf("unsupported number of components %d", nComp)
	case len(b) != 6+3*nComp:
		return image.Point{}, errors.New("frame header has the wrong length")
	}
	for c := range nComp {
		id, hv, tq := b[6+3*c], b[7+3*c], b[8+3*c]
		for prev := range c {
			if b[6+3*prev] == id {
				return image.Point{}, errors.New("repeated component identifier")
			}
		}
		if h, v := hv>>4, hv&0x0f; h < 1 || h > 4 || v < 1 || v > 4 {
			return image.Point{}, errors.New("bad sampling factor")
		}
		if tq > 3 {
			return image.Point{}, errors.New("bad quantization table number")
		}
	}
	h := int(binary.BigEndian.Uint16(b[1:]))
	w := int(binary.BigEndian.Uint16(b[3:]))
	return image.Pt(w, h), nil
}
