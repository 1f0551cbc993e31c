// Package sourcetest runs a real MapProxy server for tests and benchmarks
// of the HTTP tile sources: WMS 1.1.1 and 1.3.0, WMTS (KVP and REST), TMS
// and XYZ, all from one process, in the project grid.
//
// The usual way in is [ServeTiles]: it writes the tiles a test gives it
// into a MapProxy tile cache and starts MapProxy on [TileCacheConfig],
// which serves them as the layer [Layer]:
//
//	mp := sourcetest.ServeTiles(t, 3, map[grid.Tile]image.Image{
//		{Zoom: 1, Col: 2, Row: 0}: sourcetest.PatternTile(grid.Tile{Zoom: 1, Col: 2, Row: 0}),
//	})
//	src, _ := source.NewWMS(source.WMSConfig{URL: mp.WMSURL(), Layers: []string{sourcetest.Layer}})
//
// [PatternTile] draws a tile whose north and south halves have colours
// derived from its address, and [CheckPattern] tells whether an image is
// that tile, the right way up. [StartMapProxy] runs any other
// mapproxy.yaml. The configuration also has a layer [DebugLayer], drawn
// by MapProxy on every request (tile borders and coordinates), for load
// over any area without writing tiles.
//
// MapProxy is found through the environment variable EXPORTER_TEST_MAPPROXY
// (the path of mapproxy-util) or mapproxy-util on PATH; it runs under the
// Python interpreter named in that script's first line, in a small WSGI
// runner (threaded, bound to 127.0.0.1 on a port the kernel picks, which
// it reports back, so there is no race for the port). Under go test -short
// the helpers skip the test; otherwise a missing MapProxy fails it with
// the hint to run `make tools` (Debian package mapproxy). The server is
// stopped in tb.Cleanup and, on Linux, killed with the test binary.
//
// The server is run with [testenv.StartProcess], as testenv runs Redis and
// MinIO.
//
// sourcetest is imported from _test.go files only. It imports
// internal/grid and internal/testenv and nothing else from the project.
package sourcetest
