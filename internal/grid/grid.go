package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// TileSize is the width and height of every tile in pixels.
const TileSize = 256

// MaxZoom is the finest zoom level the grid defines.
const MaxZoom Zoom = 22

// Resolution0 is the size of one pixel at zoom 0, in degrees.
const Resolution0 = 0.703125

// resolutionTolerance is the relative slack allowed when a resolution is
// mapped to a zoom, so that truncated decimal forms of the table values
// (0.0000429153442382812 for zoom 14) map to their level and not the next
// coarser one.
const resolutionTolerance = 1e-9

// edgeTolerance is the fraction of a tile by which a bbox edge may miss a
// tile boundary and still be taken as lying on it. It absorbs the rounding of
// decimal coordinates without ever adding a tile of real data.
const edgeTolerance = 1e-9

// World is the extent of the grid, and of EPSG:4326.
var World = BBox{MinX: -180, MinY: -90, MaxX: 180, MaxY: 90}

// Errors returned by this package.
var (
	ErrResolution = errors.New("grid: resolution out of range")
	ErrBBox       = errors.New("grid: invalid bbox")
	ErrNoOverlap  = errors.New("grid: bbox does not intersect footprint")
)

// Zoom is a zoom level of the grid, 0 ≤ z ≤ MaxZoom.
type Zoom int

// Valid reports whether z is a level of the grid.
func (z Zoom) Valid() bool { return z >= 0 && z <= MaxZoom }

// Resolution is the size of one pixel at z, in degrees.
func (z Zoom) Resolution() float64 { return math.Ldexp(Resolution0, -int(z)) }

// TileDegrees is the width and height of one tile at z, in degrees.
func (z Zoom) TileDegrees() float64 { return z.Resolution() * TileSize }

// MatrixWidth is the number of tile columns at z.
func (z Zoom) MatrixWidth() int64 { return int64(2) << uint(z) }

// MatrixHeight is the number of tile rows at z.
func (z Zoom) MatrixHeight() int64 { return int64(1) << uint(z) }

// FlipRow converts a row counted from the north to one counted from the
// south and back (TMS and GeoPackage conventions).
func (z Zoom) FlipRow(row int64) int64 { return z.MatrixHeight() - 1 - row }

// ZoomForResolution maps a target resolution in degrees per pixel to the
// finest zoom whose pixels are no finer than res, as the reference service
// does: z = floor(log2(Resolution0 / res)), with a relative tolerance so
// that truncated table values land on their own level. A resolution
// between two levels maps to the coarser one. It fails with ErrResolution when res is
// not a positive finite number, is coarser than zoom 0 or finer than MaxZoom;
// a zoom it returns is always Valid.
func ZoomForResolution(res float64) (Zoom, error) {
	if math.IsNaN(res) || math.IsInf(res, 0) || res <= 0 {
		return 0, fmt.Errorf("%w: %v is not a positive finite number", ErrResolution, res)
	}
	ratio := Resolution0 / res * (1 + resolutionTolerance)
	if ratio < 1 {
		return 0, fmt.Errorf("%w: %v is coarser than zoom 0 (%v)", ErrResolution, res, Resolution0)
	}
	// For a tiny res (a subnormal such as 5e-324) the ratio overflows to
	// +Inf, and converting +Inf to an integer wraps. Compare the level as a
	// float, so only levels of the grid are ever converted.
	level := math.Floor(math.Log2(ratio))
	if !(level <= float64(MaxZoom)) {
		return 0, fmt.Errorf("%w: %v is finer than zoom %d (%v)", ErrResolution, res, MaxZoom, MaxZoom.Resolution())
	}
	return Zoom(level), nil
}

// BBox is a rectangle in degrees: [MinX, MinY, MaxX, MaxY], lower left then
// upper right.
type BBox struct {
	MinX, MinY, MaxX, MaxY float64
}

// Slice returns b as [minx, miny, maxx, maxy].
func (b BBox) Slice() []float64 { return []float64{b.MinX, b.MinY, b.MaxX, b.MaxY} }

// String formats b as "minx,miny,maxx,maxy" with the shortest exact decimals.
func (b BBox) String() string {
	return fmt.Sprintf("%v,%v,%v,%v", b.MinX, b.MinY, b.MaxX, b.MaxY)
}

// Validate checks that b is finite, lies within World and has a positive
// width and height. Errors wrap ErrBBox and say which edge is wrong.
func (b BBox) Validate() error {
	for i, v := range b.Slice() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: coordinate %d is not a finite number", ErrBBox, i)
		}
	}
	switch {
	case b.MinX < -180 || b.MaxX > 180:
		return fmt.Errorf("%w: longitude must be within [-180, 180], got minx %v, maxx %v", ErrBBox, b.MinX, b.MaxX)
	case b.MinY < -90 || b.MaxY > 90:
		return fmt.Errorf("%w: latitude must be within [-90, 90], got miny %v, maxy %v", ErrBBox, b.MinY, b.MaxY)
	case b.MinX >= b.MaxX:
		return fmt.Errorf("%w: minx %v must be less than maxx %v", ErrBBox, b.MinX, b.MaxX)
	case b.MinY >= b.MaxY:
		return fmt.Errorf("%w: miny %v must be less than maxy %v", ErrBBox, b.MinY, b.MaxY)
	}
	return nil
}

// Intersect returns the overlap of b and o. It fails with ErrNoOverlap when
// they share no area (touching edges share none).
func (b BBox) Intersect(o BBox) (BBox, error) {
	r := BBox{
		MinX: math.Max(b.MinX, o.MinX), MinY: math.Max(b.MinY, o.MinY),
		MaxX: math.Min(b.MaxX, o.MaxX), MaxY: math.Min(b.MaxY, o.MaxY),
	}
	if r.MinX >= r.MaxX || r.MinY >= r.MaxY {
		return BBox{}, ErrNoOverlap
	}
	return r, nil
}

// Contains reports whether o lies inside b.
func (b BBox) Contains(o BBox) bool {
	return o.MinX >= b.MinX && o.MaxX <= b.MaxX && o.MinY >= b.MinY && o.MaxY <= b.MaxY
}

// Sanitize clips the requested bbox to the layer footprint and snaps the
// result outwards to whole tiles at z: the extent an export of req at z
// actually covers. It fails with ErrNoOverlap when they do not intersect.
func Sanitize(req, footprint BBox, z Zoom) (BBox, error) {
	clipped, err := req.Intersect(footprint)
	if err != nil {
		return BBox{}, err
	}
	return z.Range(clipped).Bounds(), nil
}

// TileRange is a half-open block of tiles at one zoom: columns
// MinCol ≤ col < MaxCol, rows MinRow ≤ row < MaxRow, rows from the north.
type TileRange struct {
	Zoom           Zoom
	MinCol, MinRow int64
	MaxCol, MaxRow int64
}

// Range returns the smallest block of tiles at z that covers b. Edges within
// a tiny fraction of a tile of a boundary count as on it.
func (z Zoom) Range(b BBox) TileRange {
	d := z.TileDegrees()
	w, h := z.MatrixWidth(), z.MatrixHeight()
	r := TileRange{
		Zoom:   z,
		MinCol: clamp(int64(math.Floor((b.MinX+180)/d+edgeTolerance)), 0, w),
		MaxCol: clamp(int64(math.Ceil((b.MaxX+180)/d-edgeTolerance)), 0, w),
		MinRow: clamp(int64(math.Floor((90-b.MaxY)/d+edgeTolerance)), 0, h),
		MaxRow: clamp(int64(math.Ceil((90-b.MinY)/d-edgeTolerance)), 0, h),
	}
	// A bbox thinner than the tolerance still covers the tile it lies in.
	if r.MaxCol <= r.MinCol {
		r.MaxCol = min(r.MinCol+1, w)
		r.MinCol = r.MaxCol - 1
	}
	if r.MaxRow <= r.MinRow {
		r.MaxRow = min(r.MinRow+1, h)
		r.MinRow = r.MaxRow - 1
	}
	return r
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

// Width is the number of columns in r.
func (r TileRange) Width() int64 { return max(0, r.MaxCol-r.MinCol) }

// Height is the number of rows in r.
func (r TileRange) Height() int64 { return max(0, r.MaxRow-r.MinRow) }

// Count is the number of tiles in r.
func (r TileRange) Count() int64 { return r.Width() * r.Height() }

// Contains reports whether the tile (col, row) lies in r.
func (r TileRange) Contains(col, row int64) bool {
	return col >= r.MinCol && col < r.MaxCol && row >= r.MinRow && row < r.MaxRow
}

// Bounds is the extent of r in degrees.
func (r TileRange) Bounds() BBox {
	d := r.Zoom.TileDegrees()
	return BBox{
		MinX: -180 + float64(r.MinCol)*d,
		MaxX: -180 + float64(r.MaxCol)*d,
		MaxY: 90 - float64(r.MinRow)*d,
		MinY: 90 - float64(r.MaxRow)*d,
	}
}

// TileBounds is the extent of the tile (col, row) at z, in degrees.
func (z Zoom) TileBounds(col, row int64) BBox {
	return TileRange{Zoom: z, MinCol: col, MinRow: row, MaxCol: col + 1, MaxRow: row + 1}.Bounds()
}

// Pyramid returns the tile ranges covering b at every zoom 0..maxZoom, one
// per zoom, index = zoom.
func Pyramid(b BBox, maxZoom Zoom) []TileRange {
	out := make([]TileRange, 0, maxZoom+1)
	for z := Zoom(0); z <= maxZoom; z++ {
		out = append(out, z.Range(b))
	}
	return out
}

// CountTiles is the number of tiles in all of ranges.
func CountTiles(ranges []TileRange) int64 {
	var n int64
	for _, r := range ranges {
		n += r.Count()
	}
	return n
}

// Tile is one tile address: zoom, column from the west, row from the north.
type Tile struct {
	Zoom     Zoom
	Col, Row int64
}

// String formats t as z/col/row.
func (t Tile) String() string { return fmt.Sprintf("%d/%d/%d", t.Zoom, t.Col, t.Row) }

// Tiles calls yield for every tile of r, row by row from the north-west,
// until yield returns false.
func (r TileRange) Tiles(yield func(Tile) bool) {
	for row := r.MinRow; row < r.MaxRow; row++ {
		for col := r.MinCol; col < r.MaxCol; col++ {
			if !yield(Tile{Zoom: r.Zoom, Col: col, Row: row}) {
				return
			}
		}
	}
}

// MarshalJSON writes b as [minx, miny, maxx, maxy].
func (b BBox) MarshalJSON() ([]byte, error) {
	return json.Marshal(b.Slice())
}

// UnmarshalJSON reads [minx, miny, maxx, maxy]. It checks the count, not
// the values; call Validate for those.
func (b *BBox) UnmarshalJSON(data []byte) error {
	var v []float64
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %w", ErrBBox, err)
	}
	if len(v) != 4 {
		return fmt.Errorf("%w: want [minx, miny, maxx, maxy], got %d numbers", ErrBBox, len(v))
	}
	*b = BBox{MinX: v[0], MinY: v[1], MaxX: v[2], MaxY: v[3]}
	return nil
}
