// Package area is the areas of interest of POST /export: it decodes and
// validates a region of interest (a GeoJSON FeatureCollection of Polygon
// and MultiPolygon features, each with its own resolution range), clips it
// to a layer's footprint and computes its tile coverage per zoom, and the
// pixels of a tile within it (Cutter, for cutlines).
//
// Geometry comes from github.com/peterstace/simplefeatures: it is pure Go
// (no cgo and no GEOS to install, unlike twpayne/go-geos), decodes GeoJSON
// into typed geometries, checks OGC validity with reasons and locations, and
// has exact set operations (intersection, union) and areas, which
// paulmach/orb lacks (orb has no validity checks and no polygon overlay).
// The tile coverage itself is a scanline in internal/grid over the
// validated rings, not a test per tile.
//
// It imports internal/grid only.
package area
