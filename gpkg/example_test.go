package gpkg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// ExampleMerge is the finalize step of an export: merge the parts the
// batches wrote, compute the content digest, record it in the metadata.
func ExampleMerge() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	opt := gpkg.Options{
		Table:  "orthophoto",
		Extent: grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375},
	}

	var tile bytes.Buffer
	if err := png.Encode(&tile, image.NewNRGBA(image.Rect(0, 0, 256, 256))); err != nil {
		panic(err)
	}
	// Two batches; the second was re-run and wrote zoom 0 again.
	var parts []string
	for i, batch := range [][]grid.Tile{
		{{Zoom: 0, Col: 1, Row: 0}},
		{{Zoom: 0, Col: 1, Row: 0}, {Zoom: 14, Col: 19552, Row: 5282}},
	} {
		path := filepath.Join(dir, fmt.Sprintf("part-%d.gpkg", i))
		w, err := gpkg.Create(ctx, path, opt)
		if err != nil {
			panic(err)
		}
		for _, t := range batch {
			if err := w.Put(ctx, t, tile.Bytes()); err != nil {
				panic(err)
			}
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		parts = append(parts, path)
	}

	dst := filepath.Join(dir, "export.gpkg")
	res, err := gpkg.Merge(ctx, dst, parts, opt)
	if err != nil {
		panic(err)
	}
	digest, err := gpkg.ContentDigest(ctx, dst, opt.Table)
	if err != nil {
		panic(err)
	}
	doc, err := json.Marshal(map[string]any{"layer": opt.Table, "tiles": res.Tiles, "content_digest": "sha256:" + digest})
	if err != nil {
		panic(err)
	}
	if err := gpkg.WriteMetadata(ctx, dst, gpkg.Metadata{Document: doc}); err != nil {
		panic(err)
	}

	r, err := gpkg.Open(ctx, dst)
	if err != nil {
		panic(err)
	}
	defer r.Close() //nolint:errcheck // read-only
	recs, err := r.Metadata(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Tiles, res.ByZoom, res.Parts)
	fmt.Println(recs[0].StandardURI, recs[0].MIMEType, recs[0].ReferenceScope)
	// Output:
	// 2 map[0:1 14:1] 2
	// https://github.com/geoexport/exporter/metadata application/json geopackage
}
