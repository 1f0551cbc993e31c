package source

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/draw"
	"math"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// The levels of github.com/klauspost/compress's zlib writer for PNG tiles.
// GDAL writes through libpng at zlib's level 6, as most tile servers do;
// klauspost's levels do not find what zlib's of the same number find, and
// not monotonically. On the bench's 552 imagery tiles (RGB, many colours)
// its level 6 wrote 52.5 MB against GDAL's 50.7, level 7 50.4 MB at 10 ms
// a tile against 5 (image/png at zlib's level 6: 49.9 MB, 18 ms); on the
// demo's 538 palette tiles level 6 wrote 139 KB (0.26× GDAL's), level 7
// 179 KB, level 8 139 KB and level 9 126 KB, but at 2.5 times level 6's
// time (1.06 ms against 0.43 for a demo tile of 12 colours).
const (
	// PNGLevel is the level of RGB and RGBA tiles: the lowest at which the
	// bench's imagery package is no larger than GDAL's.
	PNGLevel = 7
	// PNGPaletteLevel is the level of palette tiles, already far smaller
	// than GDAL's RGB(A) tiles of the same pixels.
	PNGPaletteLevel = 6
)

// The PNG writer is written here rather than taken from image/png because
// image/png compresses through compress/zlib, which at libpng's default
// level takes two to four times as long per tile as
// github.com/klauspost/compress at PNGLevel (a demo tile of 1,857
// colours: 25 ms for 49,808 bytes against 7.3 ms for 51,162), and
// because it never writes a palette for an image that is not already
// paletted. The format is the small part: a signature and four kinds of
// chunk (PNG specification, third edition, sections 5 and 11). What it
// writes, as libpng does by default:
//
//   - a tile of at most 256 distinct colours (alpha included) as a palette
//     image of the smallest bit depth that holds them, with a tRNS chunk
//     when some are not opaque, its rows unfiltered;
//   - any other opaque tile as 8-bit RGB, without an alpha channel;
//   - the rest as 8-bit RGBA, not premultiplied;
//   - RGB and RGBA rows with the filter whose output has the least sum of
//     absolute values, chosen per row;
//   - one IDAT chunk, compressed at PNGLevel (PNGPaletteLevel for a
//     palette).
//
// Every tile decodes to exactly the pixels image/png's encoding of the same
// image decodes to.

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// PNG colour types.
const (
	pngRGB     = 2
	pngPalette = 3
	pngRGBA    = 6
)

// PNG row filters.
const (
	filterNone = iota
	filterSub
	filterUp
	filterAverage
	filterPaeth
	nFilters
)

// pngState is the scratch of one encoding, pooled: a zlib writer holds
// several hundred KiB of tables. rgb writes RGB and RGBA tiles at
// PNGLevel, pal palette tiles at PNGPaletteLevel.
type pngState struct {
	rgb, pal *zlib.Writer
	idat     bytes.Buffer
	nrgba    []byte // the tile as non-premultiplied RGBA, 4 bytes a pixel
	rows     [nFilters][]byte
	cur      []byte // the raw row being filtered
	prev     []byte // the raw row above it
	palette  colorTable
}

var pngStates = sync.Pool{New: func() any {
	rgb, err := zlib.NewWriterLevel(nil, PNGLevel)
	if err != nil {
		panic(err) // a valid level
	}
	pal, err := zlib.NewWriterLevel(nil, PNGPaletteLevel)
	if err != nil {
		panic(err) // a valid level
	}
	return &pngState{rgb: rgb, pal: pal}
}}

// encodePNG appends img as a PNG file to buf.
func encodePNG(buf *bytes.Buffer, img image.Image) error {
	st := pngStates.Get().(*pngState)
	defer pngStates.Put(st)

	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	pix, opaque := st.toNRGBA(img)

	st.idat.Reset()
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	var plte, trns []byte
	var err error
	zw := st.rgb
	if n := st.palette.build(pix); n > 0 {
		depth := paletteDepth(n)
		ihdr[8], ihdr[9] = byte(depth), pngPalette
		plte, trns = st.palette.chunks()
		zw = st.pal
		zw.Reset(&st.idat)
		err = st.writePaletteRows(zw, pix, w, h, depth)
	} else {
		zw.Reset(&st.idat)
		ihdr[8], ihdr[9] = 8, pngRGBA
		bpp := 4
		if opaque {
			ihdr[9], bpp = pngRGB, 3
		}
		err = st.writeFilteredRows(zw, pix, w, h, bpp)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return err
	}

	buf.WriteString(pngSignature)
	writeChunk(buf, "IHDR", ihdr[:])
	if plte != nil {
		writeChunk(buf, "PLTE", plte)
	}
	if len(trns) > 0 {
		writeChunk(buf, "tRNS", trns)
	}
	writeChunk(buf, "IDAT", st.idat.Bytes())
	writeChunk(buf, "IEND", nil)
	return nil
}

// writeChunk appends one chunk: length, type, data and the CRC of type and
// data.
func writeChunk(buf *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	buf.Write(n[:])
	start := buf.Len()
	buf.WriteString(typ)
	buf.Write(data)
	binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(buf.Bytes()[start:]))
	buf.Write(n[:])
}

// toNRGBA returns the pixels of img as non-premultiplied RGBA rows of
// exactly 4 × width bytes, and whether every pixel is opaque. An
// *image.NRGBA whose rows are contiguous is used as it is.
func (st *pngState) toNRGBA(img image.Image) ([]byte, bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if m, ok := img.(*image.NRGBA); ok && m.Stride == 4*w {
		pix := m.Pix[:4*w*h]
		return pix, scanAlpha(pix, 4*w, image.Rect(0, 0, w, h), 0xff)
	}
	st.nrgba = grow(st.nrgba, 4*w*h)
	pix := st.nrgba
	if m, ok := img.(*image.RGBA); ok {
		opaque := true
		for y := range h {
			src := m.Pix[(y)*m.Stride : y*m.Stride+4*w]
			dst := pix[y*4*w : (y+1)*4*w]
			for i := 0; i < len(src); i += 4 {
				r, g, bl, a := src[i], src[i+1], src[i+2], src[i+3]
				if a != 0xff {
					opaque = false
					r, g, bl = unpremultiply(r, a), unpremultiply(g, a), unpremultiply(bl, a)
				}
				dst[i], dst[i+1], dst[i+2], dst[i+3] = r, g, bl, a
			}
		}
		return pix, opaque
	}
	dst := &image.NRGBA{Pix: pix, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return pix, scanAlpha(pix, 4*w, dst.Rect, 0xff)
}

// unpremultiply converts a premultiplied 8-bit channel as
// color.NRGBAModel does, so that the tile decodes to what image/png's
// encoding of it decodes to.
func unpremultiply(c, a byte) byte {
	if a == 0 {
		return 0
	}
	return byte((uint32(c) * 0x101 * 0xffff / (uint32(a) * 0x101)) >> 8)
}

// writePaletteRows writes each row to zw as palette indices of depth bits,
// unfiltered.
func (st *pngState) writePaletteRows(zw *zlib.Writer, pix []byte, w, h, depth int) error {
	rowLen := 1 + (w*depth+7)/8
	st.cur = grow(st.cur, rowLen)
	row := st.cur
	perByte := 8 / depth
	for y := range h {
		clear(row)
		row[0] = filterNone
		src := pix[y*4*w : (y+1)*4*w]
		for x := range w {
			idx := st.palette.index(binary.LittleEndian.Uint32(src[4*x:]))
			shift := uint(8 - depth - (x%perByte)*depth)
			row[1+x/perByte] |= idx << shift
		}
		if _, err := zw.Write(row); err != nil {
			return err
		}
	}
	return nil
}

// writeFilteredRows writes to zw each row of bpp bytes a pixel (3: RGB from the
// RGBA pixels, 4: RGBA) with the filter that minimises the sum of the
// absolute values of its output bytes.
func (st *pngState) writeFilteredRows(zw *zlib.Writer, pix []byte, w, h, bpp int) error {
	n := w * bpp
	for f := range st.rows {
		st.rows[f] = grow(st.rows[f], 1+n)
		st.rows[f][0] = byte(f)
	}
	st.cur, st.prev = grow(st.cur, n), grow(st.prev, n)
	cur, prev := st.cur, st.prev
	clear(prev)
	for y := range h {
		src := pix[y*4*w : (y+1)*4*w]
		if bpp == 4 {
			copy(cur, src)
		} else {
			for x := range w {
				copy(cur[3*x:3*x+3], src[4*x:4*x+3])
			}
		}
		// Paeth first: on imagery it wins most rows, and the others then
		// stop as soon as they pass its sum.
		best, bestSum := filterPaeth, filterRow(filterPaeth, st.rows[filterPaeth][1:], cur, prev, bpp, math.MaxInt)
		for _, f := range [...]int{filterUp, filterSub, filterAverage, filterNone} {
			if s := filterRow(f, st.rows[f][1:], cur, prev, bpp, bestSum); s < bestSum {
				best, bestSum = f, s
			}
		}
		if _, err := zw.Write(st.rows[best]); err != nil {
			return err
		}
		cur, prev = prev, cur
	}
	return nil
}

// filterRow writes filter f of row cur, whose previous row is prev, to out
// and returns the sum of the absolute values of the output bytes read as
// signed (libpng's measure), or a sum of at least limit as soon as it
// reaches limit.
func filterRow(f int, out, cur, prev []byte, bpp, limit int) int {
	sum := 0
	switch f {
	case filterNone:
		for _, v := range cur {
			sum += absByte(v)
			if sum >= limit {
				return sum
			}
		}
		copy(out, cur)
	case filterSub:
		for i := range bpp {
			out[i] = cur[i]
			sum += absByte(out[i])
		}
		for i := bpp; i < len(cur); i++ {
			out[i] = cur[i] - cur[i-bpp]
			sum += absByte(out[i])
			if sum >= limit {
				return sum
			}
		}
	case filterUp:
		for i := range cur {
			out[i] = cur[i] - prev[i]
			sum += absByte(out[i])
			if sum >= limit {
				return sum
			}
		}
	case filterAverage:
		for i := range bpp {
			out[i] = cur[i] - prev[i]/2
			sum += absByte(out[i])
		}
		for i := bpp; i < len(cur); i++ {
			out[i] = cur[i] - byte((int(cur[i-bpp])+int(prev[i]))/2)
			sum += absByte(out[i])
			if sum >= limit {
				return sum
			}
		}
	case filterPaeth:
		for i := range bpp {
			out[i] = cur[i] - prev[i] // paeth(0, up, 0) is up
			sum += absByte(out[i])
		}
		for i := bpp; i < len(cur); i++ {
			out[i] = cur[i] - paeth(cur[i-bpp], prev[i], prev[i-bpp])
			sum += absByte(out[i])
			if sum >= limit {
				return sum
			}
		}
	}
	return sum
}

// paeth is the Paeth predictor of the PNG specification, section 9.4, of
// left a, up b and up-left c.
func paeth(a, b, c byte) byte {
	pa := int(b) - int(c) // |p - a|, where p = a + b - c
	pb := int(a) - int(c) // |p - b|
	pc := absInt(pa + pb) // |p - c|
	pa, pb = absInt(pa), absInt(pb)
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}

// absInt is |x|, without a branch.
func absInt(x int) int {
	m := x >> (strconv.IntSize - 1)
	return (x ^ m) - m
}

// absByte is |v| of a byte read as a signed value.
func absByte(v byte) int { return absInt(int(int8(v))) }

// grow returns b resized to n bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// paletteDepth is the smallest PNG bit depth that indexes n colours.
func paletteDepth(n int) int {
	switch {
	case n <= 2:
		return 1
	case n <= 4:
		return 2
	case n <= 16:
		return 4
	}
	return 8
}

// colorTable maps the colours of a tile of at most 256 colours to
// palette indices: an open-addressed table of the pixels' RGBA words.
type colorTable struct {
	keys   [1024]uint32
	vals   [1024]uint8
	used   [1024]bool
	colors []uint32 // by index; translucent colours first, for a short tRNS
}

// build indexes the colours of pix and returns their number, or 0 when
// there are more than 256.
func (p *colorTable) build(pix []byte) int {
	clear(p.used[:])
	p.colors = p.colors[:0]
	last, lastKnown := uint32(0), false
	for i := 0; i < len(pix); i += 4 {
		c := binary.LittleEndian.Uint32(pix[i:])
		if lastKnown && c == last {
			continue // runs of one colour are the common case
		}
		last, lastKnown = c, true
		if _, ok := p.lookup(c); ok {
			continue
		}
		if len(p.colors) == 256 {
			return 0
		}
		p.insert(c)
		p.colors = append(p.colors, c)
	}
	// Translucent colours first, so that tRNS can stop after the last.
	partitionTranslucentFirst(p.colors)
	for i, c := range p.colors {
		slot, _ := p.lookup(c)
		p.vals[slot] = uint8(i)
	}
	return len(p.colors)
}

func partitionTranslucentFirst(colors []uint32) {
	j := 0
	for i, c := range colors {
		if c>>24 != 0xff {
			colors[i], colors[j] = colors[j], colors[i]
			j++
		}
	}
}

func (p *colorTable) slot(c uint32) int {
	return int((c * 0x9e3779b1) >> 22) // 10 bits
}

func (p *colorTable) lookup(c uint32) (int, bool) {
	for s := p.slot(c); ; s = (s + 1) & 1023 {
		if !p.used[s] {
			return s, false
		}
		if p.keys[s] == c {
			return s, true
		}
	}
}

func (p *colorTable) insert(c uint32) {
	s, _ := p.lookup(c)
	p.keys[s], p.used[s] = c, true
}

func (p *colorTable) index(c uint32) byte {
	s, _ := p.lookup(c)
	return p.vals[s]
}

// chunks returns the PLTE and tRNS data of the palette; tRNS is empty when
// every colour is opaque.
func (p *colorTable) chunks() (plte, trns []byte) {
	plte = make([]byte, 0, 3*len(p.colors))
	for _, c := range p.colors {
		plte = append(plte, byte(c), byte(c>>8), byte(c>>16))
		if a := byte(c >> 24); a != 0xff {
			trns = append(trns, a)
		}
	}
	return plte, trns
}
