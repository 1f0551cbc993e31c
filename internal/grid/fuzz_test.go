package grid

import (
	"errors"
	"math"
	"testing"
)

// FuzzZoomForResolution checks that every float64 either maps to a level of
// the grid whose resolution brackets it, or fails with ErrResolution; no
// value may wrap to a negative or huge zoom.
func FuzzZoomForResolution(f *testing.F) {
	for z := Zoom(0); z <= MaxZoom; z++ {
		f.Add(z.Resolution())
	}
	for _, res := range []float64{
		0.0000429153442382812, 0.00006, 0.8, 1e-8,
		0, math.Copysign(0, -1), -0.1, math.NaN(), math.Inf(1), math.Inf(-1),
		math.MaxFloat64, 0x1p-1022, 1e-309, 5e-324, 1e-300, 1e300,
	} {
		f.Add(res)
	}
	finest := (MaxZoom + 1).Resolution() * (1 + 2*resolutionTolerance)
	f.Fuzz(func(t *testing.T, res float64) {
		z, err := ZoomForResolution(res)
		if err != nil {
			if !errors.Is(err, ErrResolution) || z != 0 {
				t.Fatalf("ZoomForResolution(%v) = %v, %v, want 0 and ErrResolution", res, z, err)
			}
			// Every resolution between the finest and the coarsest level
			// has a zoom.
			if res > finest && res <= Resolution0 {
				t.Fatalf("ZoomForResolution(%v) = %v, want a zoom", res, err)
			}
			return
		}
		if !z.Valid() {
			t.Fatalf("ZoomForResolution(%v) = %d, not a level of the grid", res, z)
		}
		// z is the coarsest level whose pixels are at least as fine as
		// res, within the tolerance.
		const slack = 1e-12
		if res > z.Resolution()*(1+resolutionTolerance)*(1+slack) || res < (z+1).Resolution()*(1-slack) {
			t.Fatalf("ZoomForResolution(%v) = %d, whose resolution %v does not bracket it", res, z, z.Resolution())
		}
	})
}
