package source

/*
#cgo LDFLAGS: -lturbojpeg
#include <malloc.h>
#include <stdlib.h>
#include <turbojpeg.h>

// keep_freed_memory makes glibc serve allocations of up to 16 MiB from
// its heaps, keep up to 32 MiB freed at a heap's top, and use at most
// four heaps (arenas; by default up to eight per core, each keeping its
// own freed memory) (see init).
static void keep_freed_memory(void) {
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	mallopt(M_ARENA_MAX, 4);
}

// crop_tiles cuts a JPEG of cols × rows tiles of side px into its tiles
// without decoding it: one tjTransform call reads the source once and
// writes every crop. out[i] and sizes[i] receive tile i (row-major),
// allocated by TurboJPEG; the caller frees them with tjFree.
static int crop_tiles(tjhandle h, const unsigned char *src, unsigned long size, int cols, int rows, int px,
		unsigned char **out, unsigned long *sizes) {
	int n = cols * rows;
	tjtransform *t = calloc(n, sizeof(tjtransform));
	if (t == NULL) return -1;
	for (int i = 0; i < n; i++) {
		t[i].r.x = (i % cols) * px;
		t[i].r.y = (i / cols) * px;
		t[i].r.w = px;
		t[i].r.h = px;
		t[i].op = TJXOP_NONE;
		t[i].options = TJXOPT_CROP | TJXOPT_COPYNONE;
	}
	int rc = tjTransform(h, src, size, n, out, sizes, t, 0);
	free(t);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"

	"github.com/geoexport/exporter/internal/grid"
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

// init tunes the C allocator that TurboJPEG (and SQLite) use. glibc maps
// each allocation over its mmap threshold (128 KiB at first) afresh and
// unmaps it on free, and gives back the heap's freed top beyond its trim
// threshold: every metatile's coefficient arrays and output buffers (a
// few MB) are then new pages, each a page fault and a zeroing. On a
// virtual machine where a fault is costly that was most of a lossless
// crop: BenchmarkCropJPEGMetatile 43–48 ms per 1024 × 1024 metatile
// before, 4.6–6.4 ms after, and 75% of a WMS export's worker CPU
// (docs/performance.md). The cost is that up to 32 MiB per heap freed by
// C code stays with the process.
func init() { C.keep_freed_memory() }

// errTurbo marks a TurboJPEG failure; callers fall back to image/jpeg.
var errTurbo = errors.New("turbojpeg")

// turboError returns TurboJPEG's message for the last failure on h.
func turboError(h C.tjhandle, op string) error {
	return fmt.Errorf("%w: %s: %s", errTurbo, op, C.GoString(C.tjGetErrorStr2(h)))
}

// jpegHeader is what turboHeader reads of a JPEG.
type jpegHeader struct {
	src               *C.uchar
	size              C.ulong
	width, height     C.int
	subsamp, colorspc C.int
}

// turboHeader reads the header of the JPEG in data with handle h. CMYK
// and YCCK images are refused: tiles must be RGB or grey, and image/jpeg
// converts such images where they are to be decoded.
func turboHeader(h C.tjhandle, data []byte) (jpegHeader, error) {
	if len(data) == 0 {
		return jpegHeader{}, fmt.Errorf("%w: empty data", errTurbo)
	}
	j := jpegHeader{src: (*C.uchar)(unsafe.Pointer(&data[0])), size: C.ulong(len(data))}
	if C.tjDecompressHeader3(h, j.src, j.size, &j.width, &j.height, &j.subsamp, &j.colorspc) != 0 {
		return jpegHeader{}, turboError(h, "header")
	}
	if j.colorspc == C.TJCS_CMYK || j.colorspc == C.TJCS_YCCK {
		return jpegHeader{}, fmt.Errorf("%w: CMYK image", errTurbo)
	}
	return j, nil
}

// turboDecode decodes a JPEG into an opaque *image.RGBA at the origin.
// Dimensions beyond maxImageSide are refused before any pixel is decoded.
func turboDecode(data []byte) (*image.RGBA, error) {
	h := C.tjInitDecompress()
	if h == nil {
		return nil, fmt.Errorf("%w: init decompressor", errTurbo)
	}
	defer C.tjDestroy(h)
	j, err := turboHeader(h, data)
	if err != nil {
		return nil, err
	}
	w, ht := j.width, j.height
	if w <= 0 || ht <= 0 || w > maxImageSide || ht > maxImageSide {
		return nil, fmt.Errorf("%w: image is %d × %d pixels", errTurbo, w, ht)
	}
	m := image.NewRGBA(image.Rect(0, 0, int(w), int(ht)))
	// TJPF_RGBA fills the alpha byte with 0xff: the result is opaque RGBA
	// with no conversion pass. TJFLAG_FASTUPSAMPLE replicates chroma
	// within each block, as image/jpeg does, instead of smoothing it
	// across blocks: a tile cut from a metatile then holds nothing of its
	// neighbours, so a uniform no-data tile beside imagery stays uniform.
	// Warnings (a corrupt but decodable stream) fail too, so such tiles
	// get image/jpeg's verdict.
	if C.tjDecompress2(h, j.src, j.size, (*C.uchar)(unsafe.Pointer(&m.Pix[0])), w, C.int(m.Stride), ht, C.TJPF_RGBA, C.TJFLAG_FASTUPSAMPLE) != 0 {
		return nil, turboError(h, "decode")
	}
	return m, nil
}

// turboCrop cuts a JPEG metatile of cols × rows tiles into one JPEG per
// tile, row-major, without decoding or re-encoding: the DCT coefficients
// are copied, so the tiles are exactly the server's pixels and cost a
// fraction of a decode. Tile edges fall on block boundaries for every
// chroma subsampling (a tile is 256 pixels, a block at most 32). A JPEG
// of another size, in CMYK or YCCK (which tiles must not be), or that
// TurboJPEG cannot read fails with errTurbo; callers decode it instead.
func turboCrop(data []byte, cols, rows int) ([][]byte, error) {
	if cols < 1 || rows < 1 || cols > MaxMetatile || rows > MaxMetatile {
		return nil, fmt.Errorf("%w: %d × %d tiles to crop", errTurbo, cols, rows)
	}
	h := C.tjInitTransform()
	if h == nil {
		return nil, fmt.Errorf("%w: init transformer", errTurbo)
	}
	defer C.tjDestroy(h)
	j, err := turboHeader(h, data)
	if err != nil {
		return nil, err
	}
	if int(j.width) != cols*grid.TileSize || int(j.height) != rows*grid.TileSize {
		return nil, fmt.Errorf("%w: image is %d × %d pixels, want %d × %d", errTurbo, j.width, j.height, cols*grid.TileSize, rows*grid.TileSize)
	}
	n := cols * rows
	out := (*[MaxMetatile * MaxMetatile]*C.uchar)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.uchar)(nil)))))
	sizes := (*[MaxMetatile * MaxMetatile]C.ulong)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.ulong(0)))))
	if out == nil || sizes == nil {
		C.free(unsafe.Pointer(out))
		C.free(unsafe.Pointer(sizes))
		return nil, fmt.Errorf("%w: out of memory", errTurbo)
	}
	defer func() {
		for _, p := range out[:n] {
			if p != nil {
				C.tjFree(p)
			}
		}
		C.free(unsafe.Pointer(out))
		C.free(unsafe.Pointer(sizes))
	}()
	if C.crop_tiles(h, j.src, j.size, C.int(cols), C.int(rows), grid.TileSize, &out[0], &sizes[0]) != 0 {
		return nil, turboError(h, "crop")
	}
	tiles := make([][]byte, n)
	for i := range tiles {
		tiles[i] = C.GoBytes(unsafe.Pointer(out[i]), C.int(sizes[i]))
	}
	return tiles, nil
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
