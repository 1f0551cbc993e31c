package source

import (
	"context"
	"fmt"
	"image"
	"math"
	"sync"

	"github.com/geoexport/exporter/internal/grid"
)

// DemoConfig configures a Demo source.
type DemoConfig struct {
	// Footprint is the area the demo world covers; pixels whose centres lie
	// outside it are transparent. The zero value means grid.World.
	Footprint grid.BBox
}

// Validate reports whether c describes a usable demo source.
func (c DemoConfig) Validate() error {
	if c.Footprint == (grid.BBox{}) {
		return nil
	}
	if err := c.Footprint.Validate(); err != nil {
		return fmt.Errorf("source: demo footprint: %w", err)
	}
	return nil
}

// Demo is a synthetic world for demonstrations and tests: it needs no data
// files. It draws shaded hypsometric terrain from a smooth deterministic
// function of longitude and latitude, polar ice, a graticule whose spacing
// follows the zoom (a line every 64 to 160 pixels, at round degree values),
// a faint checker of the tiles of the zoom being drawn, and in each tile's
// north-west corner one small square per zoom level, so that both position
// and zoom show when a tile is looked at.
//
// Every pixel is computed from its centre's longitude and latitude, so
// neighbouring tiles join seamlessly and the terrain at a point is the same
// at every zoom; only the graticule, the checker and the zoom marker depend
// on the zoom. A pixel is covered when its centre lies in the half-open
// footprint [MinX, MaxX) × [MinY, MaxY). A tile renders to the same pixels
// every time on a given architecture (floating-point fusion may change a
// last bit between architectures).
//
// Demo is safe for concurrent use.
type Demo struct {
	footprint grid.BBox
	plain     bool // terrain only, for tests: no graticule, checker or zoom marker
}

var _ Source = (*Demo)(nil)

// NewDemo returns a demo source, or an error if cfg is invalid.
func NewDemo(cfg DemoConfig) (*Demo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fp := cfg.Footprint
	if fp == (grid.BBox{}) {
		fp = grid.World
	}
	return &Demo{footprint: fp}, nil
}

// Footprint returns the area d covers.
func (d *Demo) Footprint() grid.BBox { return d.footprint }

// Tile renders the tile at t into Tile.Image, an *image.RGBA whose pixels
// are either fully opaque or fully transparent; Tile.Opaque is set when the
// footprint covers the whole tile. It returns ErrNoData when no pixel
// centre of t lies in the footprint.
func (d *Demo) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	if err := checkRequest(ctx, t); err != nil {
		return Tile{}, err
	}
	b := t.Zoom.TileBounds(t.Col, t.Row)
	fp := d.footprint
	if b.MaxX <= fp.MinX || b.MinX >= fp.MaxX || b.MaxY <= fp.MinY || b.MinY >= fp.MaxY {
		// Most tiles of a large export that miss the footprint end here,
		// before any table is built.
		return Tile{}, fmt.Errorf("render tile %s: %w", t, ErrNoData)
	}
	sc := scratchPool.Get().(*demoScratch)
	defer scratchPool.Put(sc)

	res := t.Zoom.Resolution()
	x0, x1 := sc.columns(b.MinX, res, fp.MinX, fp.MaxX)
	y0, y1 := sc.rows(b.MaxY, res, fp.MinY, fp.MaxY)
	if x0 >= x1 || y0 >= y1 {
		return Tile{}, fmt.Errorf("render tile %s: %w", t, ErrNoData)
	}

	tint := float32(1)
	if !d.plain {
		s, major := graticuleSpacing(res)
		sc.lines(b.MinX, b.MaxY, res, s, major)
		if (t.Col+t.Row)%2 == 1 {
			tint = checkerTint
		}
	}

	img := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	for y := y0; y < y1; y++ {
		sc.renderRow(img.Pix[y*img.Stride:], y, x0, x1, tint, d.plain)
	}
	if !d.plain {
		drawZoomMarker(img, t.Zoom)
	}
	full := x0 == 0 && y0 == 0 && x1 == grid.TileSize && y1 == grid.TileSize
	return Tile{Image: img, Opaque: full}, nil
}

// The terrain is a sum of plane waves, h = Σ A·sin(a·lon + b·lat + φ). Each
// wave is separable, sin(X+Y) = sin X·cos Y + cos X·sin Y, so a tile needs
// sines and cosines only per column and per row, and a pixel costs a few
// multiplications per wave. The slope along the light direction, for hill
// shading, is the same sum with cosines: Σ D·cos(X+Y).
const waves = 12

// Wave parameters, set by init.
var (
	waveA, waveB, wavePhase [waves]float64 // radians per degree, radians
	waveAmp                 [waves]float64 // height
	waveShade               [waves]float64 // D: shading change per unit cos
)

// Hill shading: light from the north-west, 45° above the horizon, over
// terrain exaggerated by reliefScale. Shading is linear in the slope along
// the light (no normalisation): cheap, and clamped where slopes are steep.
const (
	reliefScale = 4.0
	lightX      = -0.5 // east component of the unit light vector
	lightY      = 0.5  // north component
	lightZ      = 0.70710678
	minShade    = 0.45
	maxShade    = 1.3
)

func init() {
	const (
		longest  = 140.0 // degrees
		shortest = 2.0   // degrees: still a few pixels at zoom 0
		spread   = 0.35  // standard deviation of the height
	)
	var sumSq float64
	for k := range waves {
		// Geometric periods, jittered so that no two waves beat regularly.
		jitter := 0.3 * math.Sin(float64(k)*7.3)
		period := longest * math.Pow(shortest/longest, (float64(k)+jitter)/(waves-1))
		dir := 0.4 + float64(k)*2.399963 // golden angle: directions never line up
		waveA[k] = 2 * math.Pi * math.Cos(dir) / period
		waveB[k] = 2 * math.Pi * math.Sin(dir) / period
		wavePhase[k] = math.Mod(float64(k)*4.1+1.3, 2*math.Pi)
		// Amplitude proportional to period: a 1/f spectrum, as real relief
		// roughly has.
		waveAmp[k] = period / longest
		sumSq += waveAmp[k] * waveAmp[k] / 2
	}
	for k := range waves {
		waveAmp[k] *= spread / math.Sqrt(sumSq)
		// n·L/lz - 1 for the normal (-S·∂h/∂x, -S·∂h/∂y, 1), to first order.
		waveShade[k] = -reliefScale * waveAmp[k] * (waveA[k]*lightX + waveB[k]*lightY) / lightZ
	}
	initPalette()
}

// checkerTint darkens every other tile of the zoom being drawn.
const checkerTint = 0.9

// demoScratch holds the per-tile tables; it is pooled because it is too
// big for the stack and rebuilt for every tile. Row tables are scaled by
// the wave's amplitude (A) or shading factor (D) to save multiplications
// per pixel.
type demoScratch struct {
	colSin, colCos   [grid.TileSize][waves]float64
	rowSinA, rowCosA [grid.TileSize][waves]float64
	rowSinD, rowCosD [grid.TileSize][waves]float64
	ice              [grid.TileSize]float32 // 0..1, by row
	colLine          [grid.TileSize]float32 // graticule strength, by column
	rowLine          [grid.TileSize]float32 // graticule strength, by row
}

var scratchPool = sync.Pool{New: func() any { return new(demoScratch) }}

// columns fills the column tables for a tile whose west edge is at minX
// and returns the half-open range of columns whose centres lie in
// [lo, hi).
func (sc *demoScratch) columns(minX, res, lo, hi float64) (first, end int) {
	first, end = grid.TileSize, 0
	for i := range grid.TileSize {
		lon := minX + (float64(i)+0.5)*res
		if lon >= lo && lon < hi {
			first, end = min(first, i), i+1
		}
		for k := range waves {
			sc.colSin[i][k], sc.colCos[i][k] = math.Sincos(waveA[k]*lon + wavePhase[k])
		}
	}
	return first, end
}

// rows is columns for rows, from a tile whose north edge is at maxY.
func (sc *demoScratch) rows(maxY, res, lo, hi float64) (first, end int) {
	first, end = grid.TileSize, 0
	for j := range grid.TileSize {
		lat := maxY - (float64(j)+0.5)*res
		if lat >= lo && lat < hi {
			first, end = min(first, j), j+1
		}
		for k := range waves {
			s, c := math.Sincos(waveB[k] * lat)
			sc.rowSinA[j][k], sc.rowCosA[j][k] = waveAmp[k]*s, waveAmp[k]*c
			sc.rowSinD[j][k], sc.rowCosD[j][k] = waveShade[k]*s, waveShade[k]*c
		}
		sc.ice[j] = float32(smoothstep(62, 78, math.Abs(lat)))
	}
	return first, end
}

// lines marks the columns and rows that a graticule line of spacing s
// crosses: strength 0.6 on multiples of major, 0.3 elsewhere. A pixel
// spanning [l, r) holds the lines k·s with l ≤ k·s < r.
func (sc *demoScratch) lines(minX, maxY, res, s, major float64) {
	mark := func(l float64) float32 {
		r := l + res
		if math.Ceil(l/s)*s >= r {
			return 0
		}
		if math.Ceil(l/major)*major < r {
			return 0.6
		}
		return 0.3
	}
	for i := range grid.TileSize {
		sc.colLine[i] = mark(minX + float64(i)*res)
		sc.rowLine[i] = mark(maxY - float64(i+1)*res)
	}
}

// renderRow draws columns [x0, x1) of row y into row, the row's pixels.
func (sc *demoScratch) renderRow(row []byte, y, x0, x1 int, tint float32, plain bool) {
	sa, ca := &sc.rowSinA[y], &sc.rowCosA[y]
	sd, cd := &sc.rowSinD[y], &sc.rowCosD[y]
	ice := sc.ice[y]
	rowLine := sc.rowLine[y]
	for x := x0; x < x1; x++ {
		cs, cc := &sc.colSin[x], &sc.colCos[x]
		// Two accumulators each for height and shading halve the chains
		// of dependent additions.
		var h0, h1, d0, d1 float64
		for k := 0; k < waves; k += 2 {
			h0 += cs[k]*ca[k] + cc[k]*sa[k]
			d0 += cc[k]*cd[k] - cs[k]*sd[k]
			h1 += cs[k+1]*ca[k+1] + cc[k+1]*sa[k+1]
			d1 += cc[k+1]*cd[k+1] - cs[k+1]*sd[k+1]
		}
		p := &palette[paletteIndex(h0+h1)]
		r, g, b := p.r, p.g, p.b
		if ice > 0 {
			r, g, b = r+(246-r)*ice, g+(250-g)*ice, b+(252-b)*ice
		}
		if p.land {
			shade := float32(1 + d0 + d1)
			if shade < minShade {
				shade = minShade
			} else if shade > maxShade {
				shade = maxShade
			}
			r, g, b = r*shade, g*shade, b*shade
		}
		r, g, b = r*tint, g*tint, b*tint
		if !plain {
			if l := max(rowLine, sc.colLine[x]); l > 0 {
				r, g, b = r+(lineR-r)*l, g+(lineG-g)*l, b+(lineB-b)*l
			}
		}
		px := row[x*4 : x*4+4 : x*4+4]
		px[0], px[1], px[2], px[3] = clampByte(r), clampByte(g), clampByte(b), 0xff
	}
}

// drawZoomMarker draws one small white square per zoom level in the tile's
// north-west corner, in groups of five, so the zoom of any tile can be
// counted off it. Squares go only on covered pixels.
func drawZoomMarker(img *image.RGBA, z grid.Zoom) {
	const (
		margin = 4
		size   = 5 // dark frame around a 3 × 3 white centre
		step   = size + 2
		gap    = 4 // extra space after every fifth square
	)
	for i := range int(z) {
		x0 := margin + i*step + i/5*gap
		for y := margin; y < margin+size; y++ {
			for x := x0; x < x0+size; x++ {
				px := img.Pix[img.PixOffset(x, y):][:4:4]
				if px[3] == 0 {
					continue
				}
				edge := y == margin || y == margin+size-1 || x == x0 || x == x0+size-1
				if edge {
					px[0], px[1], px[2] = lineR, lineG, lineB
				} else {
					px[0], px[1], px[2] = 255, 255, 255
				}
			}
		}
	}
}

// Graticule line colour.
const lineR, lineG, lineB = 32, 40, 64

// graticuleSpacing returns the round-degree spacing that puts a line every
// 64 to 160 pixels at resolution res, and the coarser spacing, a multiple
// of it, whose lines are drawn stronger.
func graticuleSpacing(res float64) (s, major float64) {
	target := 64 * res
	i := len(spacings) - 1
	for i > 0 && spacings[i] < target {
		i--
	}
	s, major = spacings[i], 90
	for j := i; j >= 0; j-- {
		if m := spacings[j]; m >= 3*s {
			if n := m / s; math.Abs(n-math.Round(n)) < 1e-9 {
				major = m
				break
			}
		}
	}
	return s, major
}

// spacings are the graticule spacings in degrees, coarsest first: divisors
// of 90 down to one degree, then 1-2-5 steps, fine enough for 64 pixels at
// grid.MaxZoom.
var spacings = func() []float64 {
	s := []float64{90, 45, 30, 15, 10, 5, 2, 1}
	for div := 10.0; div <= 1e8; div *= 10 {
		s = append(s, 5/div, 2/div, 1/div)
	}
	return s
}()

func smoothstep(lo, hi, x float64) float64 {
	t := max(0, min((x-lo)/(hi-lo), 1))
	return t * t * (3 - 2*t)
}

// clampByte rounds v to a byte. It uses comparisons rather than min and
// max, whose NaN handling costs more than the whole conversion.
func clampByte(v float32) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return byte(v + 0.5)
}

// The palette maps terrain height to colour: paletteSize steps over
// [paletteMin, paletteMax], sea below seaLevel, which puts about 40% of
// the world on land.
const (
	seaLevel    = 0.08
	paletteSize = 1024
	paletteMin  = -1.0
	paletteMax  = 1.0
)

type paletteEntry struct {
	r, g, b float32
	land    bool
}

var palette [paletteSize]paletteEntry

func paletteIndex(h float64) int {
	i := int((h - paletteMin) * (paletteSize / (paletteMax - paletteMin)))
	return max(0, min(i, paletteSize-1))
}

// colourStops is a hypsometric tint: deep to shallow water, lowland green
// to upland ochre, brown mountains and snow.
var colourStops = []struct {
	h       float64
	r, g, b float32
}{
	{-1.00, 8, 30, 88},
	{-0.45, 22, 72, 148},
	{-0.12, 62, 132, 196},
	{-0.0001, 150, 200, 232},
	{0.0, 84, 142, 76},
	{0.12, 126, 170, 88},
	{0.26, 200, 190, 118},
	{0.40, 168, 122, 82},
	{0.55, 124, 98, 86},
	{0.68, 236, 236, 240},
	{1.00, 255, 255, 255},
}

func initPalette() {
	for i := range palette {
		h := paletteMin + (float64(i)+0.5)*(paletteMax-paletteMin)/paletteSize - seaLevel
		j := 1
		for j < len(colourStops)-1 && colourStops[j].h < h {
			j++
		}
		lo, hi := colourStops[j-1], colourStops[j]
		t := float32(max(0, min((h-lo.h)/(hi.h-lo.h), 1)))
		palette[i] = paletteEntry{
			r:    lo.r + (hi.r-lo.r)*t,
			g:    lo.g + (hi.g-lo.g)*t,
			b:    lo.b + (hi.b-lo.b)*t,
			land: h >= 0,
		}
	}
}
