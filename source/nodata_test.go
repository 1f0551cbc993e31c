package source_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

func TestIsNoData(t *testing.T) {
	t.Parallel()
	black := source.NoData{}
	withPixel := func(m image.Image, x, y int, c color.Color) image.Image {
		switch m := m.(type) {
		case *image.NRGBA:
			m.Set(x, y, c)
		case *image.RGBA:
			m.Set(x, y, c)
		}
		return m
	}
	rgba := func(c color.NRGBA) *image.RGBA {
		m := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for y := range 256 {
			for x := range 256 {
				m.Set(x, y, c)
			}
		}
		return m
	}
	gray := image.NewGray(image.Rect(0, 0, 16, 16))
	tests := []struct {
		name string
		img  image.Image
		nd   source.NoData
		want bool
	}{
		{name: "black nrgba", img: solid(color.NRGBA{A: 255}), nd: black, want: true},
		{name: "black rgba", img: rgba(color.NRGBA{A: 255}), nd: black, want: true},
		{name: "transparent", img: solid(color.NRGBA{R: 200}), nd: black, want: true},
		{name: "black and transparent", img: withPixel(solid(color.NRGBA{A: 255}), 5, 5, color.NRGBA{}), nd: black, want: true},
		{name: "one pixel of data", img: withPixel(solid(color.NRGBA{A: 255}), 255, 255, color.NRGBA{R: 1, A: 255}), nd: black},
		{name: "one pixel of data in rgba", img: withPixel(rgba(color.NRGBA{A: 255}), 255, 255, color.NRGBA{R: 1, A: 255}), nd: black},
		{name: "within tolerance", img: withPixel(solid(color.NRGBA{A: 255}), 0, 0, color.NRGBA{R: 3, G: 3, B: 3, A: 255}), nd: source.NoData{Tolerance: 3}, want: true},
		{name: "beyond tolerance", img: withPixel(solid(color.NRGBA{A: 255}), 0, 0, color.NRGBA{R: 4, A: 255}), nd: source.NoData{Tolerance: 3}},
		{name: "translucent white in rgba", img: rgba(color.NRGBA{R: 255, G: 255, B: 255, A: 100}), nd: source.NoData{R: 255, G: 255, B: 255}, want: true},
		{name: "white is not black", img: solid(color.NRGBA{R: 255, G: 255, B: 255, A: 255}), nd: black},
		{name: "gray zero", img: gray, nd: black, want: true},
		{name: "empty bounds", img: image.NewNRGBA(image.Rectangle{}), nd: black, want: true},
		{name: "sub-image", img: withPixel(solid(color.NRGBA{A: 255}), 200, 200, color.NRGBA{R: 9, A: 255}).(*image.NRGBA).SubImage(image.Rect(0, 0, 100, 100)), nd: black, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := source.IsNoData(tc.img, tc.nd); got != tc.want {
				t.Errorf("IsNoData(%s, %v) = %v, want %v", tc.name, tc.nd, got, tc.want)
			}
		})
	}
	t.Run("jpeg", func(t *testing.T) {
		t.Parallel()
		m, err := decodeJPEG(encodeJPEG(t, solid(color.NRGBA{R: 255, G: 255, B: 255, A: 255})))
		if err != nil {
			t.Fatal(err)
		}
		if !source.IsNoData(m, source.NoData{R: 255, G: 255, B: 255, Tolerance: 2}) {
			t.Errorf("IsNoData(white jpeg, #ffffff±2) = false, want true")
		}
		if source.IsNoData(m, source.NoData{}) {
			t.Errorf("IsNoData(white jpeg, black) = true, want false")
		}
	})
}

func TestNoDataString(t *testing.T) {
	t.Parallel()
	for nd, want := range map[source.NoData]string{
		{R: 255, G: 0, B: 16}:               "#ff0010",
		{R: 1, G: 2, B: 3, Tolerance: 8}:    "#010203±8",
		{R: 255, G: 255, B: 255}:            "#ffffff",
		{R: 0, G: 0, B: 0, Tolerance: 0x0}:  "#000000",
		{R: 10, G: 20, B: 30, Tolerance: 1}: "#0a141e±1",
	} {
		if got := nd.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", nd, got, want)
		}
	}
}

// fixedSource returns the same tile for every address.
type fixedSource struct {
	tile   source.Tile
	closed bool
}

func (f *fixedSource) Tile(ctx context.Context, t grid.Tile) (source.Tile, error) {
	return f.tile, ctx.Err()
}

func (f *fixedSource) Close() error {
	f.closed = true
	return nil
}

func TestFilterNoData(t *testing.T) {
	t.Parallel()
	black := solid(color.NRGBA{A: 255})
	red := solid(color.NRGBA{R: 255, A: 255})
	tests := []struct {
		name    string
		tile    source.Tile
		wantErr error
	}{
		{name: "black image", tile: source.Tile{Image: black}, wantErr: source.ErrNoData},
		{name: "transparent image", tile: source.Tile{Image: solid(color.NRGBA{})}, wantErr: source.ErrNoData},
		{name: "red image", tile: source.Tile{Image: red}},
		{name: "black png", tile: source.Tile{Data: encodePNG(t, black), Format: source.PNG, Opaque: true}, wantErr: source.ErrNoData},
		{name: "red png", tile: source.Tile{Data: encodePNG(t, red), Format: source.PNG, Opaque: true}},
		{name: "black jpeg", tile: source.Tile{Data: encodeJPEG(t, black), Format: source.JPEG, Opaque: true}, wantErr: source.ErrNoData},
		{name: "broken png", tile: source.Tile{Data: []byte("\x89PNG\r\n\x1a\n"), Format: source.PNG}, wantErr: source.ErrInvalidData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &fixedSource{tile: tc.tile}
			f := source.FilterNoData(src, source.NoData{Tolerance: 2})
			got, err := f.Tile(t.Context(), testTile)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "3/2/1") {
					t.Errorf("Tile(%v) = %v, want %v naming the tile", testTile, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tile(%v): %v", testTile, err)
			}
			if diff := cmp.Diff(tc.tile, got); diff != "" {
				t.Errorf("Tile(%v) changed the tile (-want +got):\n%s", testTile, diff)
			}
		})
	}
	t.Run("close and errors pass through", func(t *testing.T) {
		t.Parallel()
		src := &fixedSource{tile: source.Tile{Image: red}}
		f := source.FilterNoData(src, source.NoData{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := f.Tile(ctx, testTile); !errors.Is(err, context.Canceled) {
			t.Errorf("Tile(cancelled) = %v, want context.Canceled", err)
		}
		if err := f.(io.Closer).Close(); err != nil || !src.closed {
			t.Errorf("Close() = %v, closed %v, want the source closed", err, src.closed)
		}
	})
}

func decodeJPEG(data []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(data)) }

func decodePNG(data []byte) (image.Image, error) { return png.Decode(bytes.NewReader(data)) }
