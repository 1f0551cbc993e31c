package job

import "testing"

func TestGilbertVisitsEveryCellOnceByNeighbours(t *testing.T) {
	t.Parallel()
	for _, size := range [][2]int64{{1, 1}, {1, 7}, {7, 1}, {2, 2}, {3, 5}, {11, 24}, {24, 11}, {16, 16}, {33, 17}, {100, 3}, {5, 64}} {
		w, h := size[0], size[1]
		seen := make(map[[2]int64]bool, w*h)
		px, py := int64(-1), int64(-1)
		diagonal := 0
		gilbert(w, h, func(x, y int64) {
			if x < 0 || x >= w || y < 0 || y >= h {
				t.Errorf("%d×%d: (%d, %d) is outside", w, h, x, y)
			}
			if seen[[2]int64{x, y}] {
				t.Errorf("%d×%d: (%d, %d) visited twice", w, h, x, y)
			}
			seen[[2]int64{x, y}] = true
			if px >= 0 {
				dx, dy := abs(x-px), abs(y-py)
				switch {
				case dx+dy == 1:
				case dx == 1 && dy == 1:
					diagonal++ // the construction allows one where both sides are odd
				default:
					t.Errorf("%d×%d: step from (%d, %d) to (%d, %d) is not to a neighbour", w, h, px, py, x, y)
				}
			}
			px, py = x, y
		})
		if int64(len(seen)) != w*h {
			t.Errorf("%d×%d: %d cells visited, want %d", w, h, len(seen), w*h)
		}
		if diagonal > 1 {
			t.Errorf("%d×%d: %d diagonal steps", w, h, diagonal)
		}
	}
}
