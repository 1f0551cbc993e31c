package source

import (
	"context"
	"fmt"
	"image"
	"math"
	"sync"

	"golang.org/x/image/vector"

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

// Demo draws a map of the whole world that needs no data files and no
// network: Natural Earth's land and water, coastlines and the borders
// between countries (package world, embedded in the binary; the 1:110m
// data up to zoom 2, the 1:50m data from zoom 3), a relief-like shading
// over the land, paler towards the poles, and a faint graticule whose
// spacing follows the zoom (a line every 64 to 160 pixels, at round degree
// values). It is the source of the built-in demo layer.
//
// The shading is not real relief: it is a smooth deterministic function
// of longitude and latitude (a sum of plane waves, periods of 2° to 140°)
// that gives the land texture at every zoom. The outlines are as accurate
// as 1:50m data, a few kilometres: from about zoom 7 on they look coarse
// (straight segments, a coast some pixels away from where imagery would
// put it), and from zoom 10 on most tiles are all land or all water with
// the shading and the graticule as their only detail. Every zoom of the
// grid is drawn.
//
// Land and lines are anti-aliased, and every pixel is computed from the
// geometry and its centre's longitude and latitude, so neighbouring tiles
// join seamlessly. A pixel is covered, and opaque, when its centre lies in
// the half-open footprint [MinX, MaxX) × [MinY, MaxY); others are
// transparent. A tile renders to the same pixels every time on a given
// architecture (floating-point fusion may change a last bit between
// architectures). The map is loaded and indexed once per process, at the
// first tile (about 100 ms).
//
// Demo is safe for concurrent use.
type Demo struct {
	footprint grid.BBox
	lines     demoLines // what is drawn over land and water; tests draw less
}

// demoLines is a set of the demo's line work.
type demoLines uint8

const (
	drawGraticule demoLines = 1 << iota
	drawCoast
	drawBorders
	drawAllLines = drawGraticule | drawCoast | drawBorders
)

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
	return &Demo{footprint: fp, lines: drawAllLines}, nil
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
	ws, err := scaleFor(t.Zoom)
	if err != nil {
		return Tile{}, fmt.Errorf("render tile %s: %w", t, err)
	}
	sc := scratchPool.Get().(*demoScratch)
	defer scratchPool.Put(sc)

	res := t.Zoom.Resolution()
	x0, x1 := sc.columns(b.MinX, res, fp.MinX, fp.MaxX)
	y0, y1 := sc.rows(b.MaxY, res, fp.MinY, fp.MaxY)
	if x0 >= x1 || y0 >= y1 {
		return Tile{}, fmt.Errorf("render tile %s: %w", t, ErrNoData)
	}

	px := pixels{b: b, res: res}
	uniform, allLand := sc.fillLand(&ws.land, px, &sc.land)
	if uniform {
		fill := byte(0)
		if allLand {
			fill = 0xff
		}
		for i := range sc.land.Pix {
			sc.land.Pix[i] = fill
		}
	}
	sc.colLine, sc.rowLine = [grid.TileSize]float32{}, [grid.TileSize]float32{}
	if d.lines&drawGraticule != 0 {
		s, major := graticuleSpacing(res)
		sc.lines(b.MinX, b.MaxY, res, s, major)
	}
	coast := d.lines&drawCoast != 0 && sc.stroke(&ws.land, px, coastWidth, true, &sc.coast)
	borders := d.lines&drawBorders != 0 && sc.stroke(&ws.borders, px, borderWidth, false, &sc.border)

	allWater := uniform && !allLand
	if !allWater {
		sc.relief(reliefStep(res))
	}
	img := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	for y := y0; y < y1; y++ {
		row := img.Pix[y*img.Stride:]
		sc.renderRow(row, y, x0, x1, allWater)
		if d.lines != 0 {
			sc.renderLines(row, y, x0, x1, coast, borders)
		}
	}
	full := x0 == 0 && y0 == 0 && x1 == grid.TileSize && y1 == grid.TileSize
	return Tile{Image: img, Opaque: full}, nil
}

// The shading is a sum of plane waves, h = Σ A·sin(a·lon + b·lat + φ).
// Each wave is separable, sin(X+Y) = sin X·cos Y + cos X·sin Y, so a tile
// needs sines and cosines only per column and per row, and a pixel costs a
// few multiplications per wave. The slope along the light direction, for
// hill shading, is the same sum with cosines: Σ D·cos(X+Y).
const waves = 12

// shortestWave is the shortest wave's period in degrees: still a few
// pixels at zoom 0.
const shortestWave = 2.0

// Wave parameters, set by init.
var (
	waveA, waveB, wavePhase [waves]float64 // radians per degree, radians
	waveAmp                 [waves]float64 // height
	waveShade               [waves]float64 // D: shading change per unit cos
)

// Hill shading: light from the north-west, 45° above the horizon, over
// heights exaggerated by reliefScale. Shading is linear in the slope along
// the light (no normalisation): cheap, and clamped where slopes are steep.
const (
	reliefScale = 2.0
	lightX      = -0.5 // east component of the unit light vector
	lightY      = 0.5  // north component
	lightZ      = 0.70710678
	minShade    = 0.78
	maxShade    = 1.1
)

func init() {
	const (
		longest = 140.0 // degrees
		spread  = 0.35  // standard deviation of the height
	)
	var sumSq float64
	for k := range waves {
		// Geometric periods, jittered so that no two waves beat regularly.
		jitter := 0.3 * math.Sin(float64(k)*7.3)
		period := longest * math.Pow(shortestWave/longest, (float64(k)+jitter)/(waves-1))
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
	initLandColours()
}

// rgb is a colour with float channels, 0..255.
type rgb struct{ r, g, b float32 }

// The map's colours.
var (
	waterColour   = rgb{163, 199, 226}
	lowColour     = rgb{206, 226, 174} // land where the shading's height is low
	highColour    = rgb{234, 220, 182} // and high
	iceColour     = rgb{244, 247, 250}
	coastColour   = rgb{58, 98, 140}
	borderColour  = rgb{128, 86, 112}
	graticuleLine = rgb{40, 56, 84}
)

// Line widths in pixels, and how strongly lines cover what is under them.
const (
	coastWidth      = 1.1
	borderWidth     = 1.0
	borderStrength  = 0.8
	majorGraticule  = 0.3 // every major graticule line (multiples of major)
	minorGraticule  = 0.15
	heightLow       = -0.35 // heights mapped to lowColour..highColour
	heightHigh      = 0.45
	iceFromLatitude = 60 // land turns to ice from here to iceToLatitude
	iceToLatitude   = 80
)

// tableSize is the columns (and rows) of the wave tables: a tile's, and
// the first of the next tile, where the relief lattice ends.
const tableSize = grid.TileSize + 1

// maxLattice is the most relief lattice points along a side; a lattice is
// used from a step of two pixels on.
const maxLattice = grid.TileSize/2 + 1

// demoScratch holds the per-tile tables and masks; it is pooled because
// it is too big for the stack and rebuilt for every tile. Row tables are
// scaled by the wave's amplitude (A) or shading factor (D) to save
// multiplications per pixel.
type demoScratch struct {
	colSin, colCos   [tableSize][waves]float64
	rowSinA, rowCosA [tableSize][waves]float64
	rowSinD, rowCosD [tableSize][waves]float64
	ice              [tableSize]float32     // 0..1, by row
	colLine          [grid.TileSize]float32 // graticule strength, by column
	rowLine          [grid.TileSize]float32 // graticule strength, by row

	// The relief's height and slope term every step pixels (see relief).
	step       int
	latH, latD [maxLattice * maxLattice]float32
	rowH, rowD [maxLattice]float32 // latH, latD interpolated to one row

	land, coast, border image.Alpha // coverage masks of the tile
	raster              vector.Rasterizer
	west, east, cross   []*chunk // fillLand's chunks, kept for their capacity
}

var scratchPool = sync.Pool{New: func() any {
	sc := new(demoScratch)
	for _, m := range []*image.Alpha{&sc.land, &sc.coast, &sc.border} {
		*m = *image.NewAlpha(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	}
	return sc
}}

// columns fills the column tables for a tile whose west edge is at minX
// and returns the half-open range of columns whose centres lie in
// [lo, hi).
func (sc *demoScratch) columns(minX, res, lo, hi float64) (first, end int) {
	first, end = grid.TileSize, 0
	for i := range tableSize {
		lon := minX + (float64(i)+0.5)*res
		if lon >= lo && lon < hi && i < grid.TileSize {
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
	for j := range tableSize {
		lat := maxY - (float64(j)+0.5)*res
		if lat >= lo && lat < hi && j < grid.TileSize {
			first, end = min(first, j), j+1
		}
		for k := range waves {
			s, c := math.Sincos(waveB[k] * lat)
			sc.rowSinA[j][k], sc.rowCosA[j][k] = waveAmp[k]*s, waveAmp[k]*c
			sc.rowSinD[j][k], sc.rowCosD[j][k] = waveShade[k]*s, waveShade[k]*c
		}
		sc.ice[j] = float32(smoothstep(iceFromLatitude, iceToLatitude, math.Abs(lat)))
	}
	return first, end
}

// lines marks the columns and rows that a graticule line of spacing s
// crosses, with the strength of a major or a minor line. A pixel spanning
// [l, r) holds the lines k·s with l ≤ k·s < r.
func (sc *demoScratch) lines(minX, maxY, res, s, major float64) {
	mark := func(l float64) float32 {
		r := l + res
		if math.Ceil(l/s)*s >= r {
			return 0
		}
		if math.Ceil(l/major)*major < r {
			return majorGraticule
		}
		return minorGraticule
	}
	for i := range grid.TileSize {
		sc.colLine[i] = mark(minX + float64(i)*res)
		sc.rowLine[i] = mark(maxY - float64(i+1)*res)
	}
}

// reliefStep is the spacing in pixels of the lattice the relief is
// computed on at resolution res, interpolated in between: a power of two
// up to 32 that keeps the shortest wave at least 24 steps long, so that
// interpolating changes a height by under 1 %; 1 (every pixel computed)
// up to zoom 4.
func reliefStep(res float64) int {
	step := 1
	for step < 32 && float64(2*step)*res*24 <= shortestWave {
		step *= 2
	}
	return step
}

// relief computes the shading's height and slope term on the lattice of
// every step pixels, from (0, 0) to (256, 256), for renderRow; with step
// 1, renderRow computes every pixel itself.
func (sc *demoScratch) relief(step int) {
	sc.step = step
	if step == 1 {
		return
	}
	n := grid.TileSize/step + 1
	for j := range n {
		for i := range n {
			h, d := sc.wave(i*step, j*step)
			sc.latH[j*n+i], sc.latD[j*n+i] = float32(h), float32(d)
		}
	}
}

// wave returns the shading's height and slope term at column x, row y.
func (sc *demoScratch) wave(x, y int) (h, d float64) {
	cs, cc := &sc.colSin[x], &sc.colCos[x]
	sa, ca := &sc.rowSinA[y], &sc.rowCosA[y]
	sd, cd := &sc.rowSinD[y], &sc.rowCosD[y]
	// Two accumulators each for height and shading halve the chains of
	// dependent additions.
	var h0, h1, d0, d1 float64
	for k := 0; k < waves; k += 2 {
		h0 += cs[k]*ca[k] + cc[k]*sa[k]
		d0 += cc[k]*cd[k] - cs[k]*sd[k]
		h1 += cs[k+1]*ca[k+1] + cc[k+1]*sa[k+1]
		d1 += cc[k+1]*cd[k+1] - cs[k+1]*sd[k+1]
	}
	return h0 + h1, d0 + d1
}

// renderRow draws the land and water of columns [x0, x1) of row y into
// row, the row's pixels; allWater says the land mask is empty.
func (sc *demoScratch) renderRow(row []byte, y, x0, x1 int, allWater bool) {
	land := sc.land.Pix[y*sc.land.Stride:]
	ice := sc.ice[y]
	// Ice shows less relief: the shading's waves on white look like a
	// pattern rather than a surface.
	relief := 1 - 0.6*ice
	step := sc.step
	if !allWater && step > 1 {
		// Interpolate the lattice's rows around y into one row.
		n := grid.TileSize/step + 1
		ky, fy := y/step, float32(y%step)/float32(step)
		above, below := sc.latH[ky*n:], sc.latH[(ky+1)*n:]
		aboveD, belowD := sc.latD[ky*n:], sc.latD[(ky+1)*n:]
		for i := range n {
			sc.rowH[i] = above[i] + (below[i]-above[i])*fy
			sc.rowD[i] = aboveD[i] + (belowD[i]-aboveD[i])*fy
		}
	}
	inv := 1 / float32(step)
	for x := x0; x < x1; x++ {
		c := waterColour
		if a := land[x]; a != 0 && !allWater {
			var h, d float32
			if step == 1 {
				h64, d64 := sc.wave(x, y)
				h, d = float32(h64), float32(d64)
			} else {
				k, f := x/step, float32(x%step)*inv
				h = sc.rowH[k] + (sc.rowH[k+1]-sc.rowH[k])*f
				d = sc.rowD[k] + (sc.rowD[k+1]-sc.rowD[k])*f
			}
			l := mix(landColours[landIndex(h)], iceColour, ice)
			shade := 1 + d*relief
			if shade < minShade {
				shade = minShade
			} else if shade > maxShade {
				shade = maxShade
			}
			l = rgb{l.r * shade, l.g * shade, l.b * shade}
			c = mix(c, l, float32(a)/255)
		}
		px := row[x*4 : x*4+4 : x*4+4]
		px[0], px[1], px[2], px[3] = clampByte(c.r), clampByte(c.g), clampByte(c.b), 0xff
	}
}

// landColours maps the shading's height to the colour of land, from
// lowColour to highColour, in landSteps steps over [-1, 1].
const landSteps = 512

var landColours [landSteps]rgb

func landIndex(h float32) int {
	return max(0, min(int((h+1)*(landSteps/2)), landSteps-1))
}

func initLandColours() {
	for i := range landColours {
		h := -1 + (float64(i)+0.5)*2/landSteps
		landColours[i] = mix(lowColour, highColour, float32(smoothstep(heightLow, heightHigh, h)))
	}
}

// renderLines draws the graticule, the coastlines (when coast) and the
// borders (when borders) over columns [x0, x1) of row y.
func (sc *demoScratch) renderLines(row []byte, y, x0, x1 int, coast, borders bool) {
	rowLine := sc.rowLine[y]
	cm := sc.coast.Pix[y*sc.coast.Stride:]
	bm := sc.border.Pix[y*sc.border.Stride:]
	for x := x0; x < x1; x++ {
		g := max(rowLine, sc.colLine[x])
		var b, k byte
		if borders {
			b = bm[x]
		}
		if coast {
			k = cm[x]
		}
		if g == 0 && b == 0 && k == 0 {
			continue // most pixels: nothing over them
		}
		px := row[x*4 : x*4+4 : x*4+4]
		c := rgb{float32(px[0]), float32(px[1]), float32(px[2])}
		if g > 0 {
			c = mix(c, graticuleLine, g)
		}
		if b != 0 {
			c = mix(c, borderColour, borderStrength*float32(b)/255)
		}
		if k != 0 {
			c = mix(c, coastColour, float32(k)/255)
		}
		px[0], px[1], px[2] = clampByte(c.r), clampByte(c.g), clampByte(c.b)
	}
}

// mix returns a + (b-a)·t.
func mix(a, b rgb, t float32) rgb {
	return rgb{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t}
}

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
