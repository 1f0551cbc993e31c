package source_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// tileServer is an in-process HTTP server whose handler a test sets. It
// counts the requests it gets and the most it had in flight at once.
type tileServer struct {
	*httptest.Server
	requests    atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64

	mu    sync.Mutex
	paths []string // path and query of every request, in arrival order
}

func newTileServer(tb testing.TB, h http.HandlerFunc) *tileServer {
	tb.Helper()
	s := &tileServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.RequestURI())
		s.mu.Unlock()
		h(w, r)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *tileServer) requestURIs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// checkRequests fails tb unless the server got exactly want requests.
func (s *tileServer) checkRequests(tb testing.TB, want int64) {
	tb.Helper()
	if got := s.requests.Load(); got != want {
		tb.Errorf("server got %d requests, want %d", got, want)
	}
}

// mustTile returns src's tile at at, stopping the test if src fails.
func mustTile(tb testing.TB, src source.Source, at grid.Tile) source.Tile {
	tb.Helper()
	got, err := src.Tile(tb.Context(), at)
	if err != nil {
		tb.Fatalf("Tile(%v): %v", at, err)
	}
	return got
}

// sleeps records the waits between retries instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// checkWaits fails tb unless the waits were exactly want.
func (s *sleeps) checkWaits(tb testing.TB, want ...time.Duration) {
	tb.Helper()
	if diff := cmp.Diff(want, s.waits()); diff != "" {
		tb.Errorf("waits (-want +got):\n%s", diff)
	}
}

// tooManyRequestsOnce answers the first request with 429 and the given
// Retry-After, and every later one with tile.
func tooManyRequestsOnce(tb testing.TB, retryAfter string, tile []byte) *tileServer {
	tb.Helper()
	var n atomic.Int64
	return newTileServer(tb, func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write(tile)
	})
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testTile is the tile most tests ask for.
var testTile = grid.Tile{Zoom: 3, Col: 2, Row: 1}

// newXYZ returns an XYZ source named "test-layer" over srv, whose URL
// carries a key that must never show in errors.
func newXYZ(tb testing.TB, srv *tileServer, mod func(*source.XYZConfig)) (*source.XYZ, *sleeps) {
	tb.Helper()
	cfg := source.XYZConfig{
		URL:  srv.URL + "/tiles/{z}/{x}/{y}.png?key=s3cret",
		HTTP: source.HTTPConfig{Name: "test-layer", RetryBase: 10 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	s := mustOpen(tb, "NewXYZ", source.NewXYZ, cfg)
	sl := &sleeps{}
	source.SetRetryClock(s, sl.sleep, nil)
	return s, sl
}

// mustOpen returns the source that open builds from cfg, closed when the
// test ends, and stops the test if open fails; name is open's name.
func mustOpen[C any, S interface{ Close() error }](tb testing.TB, name string, open func(C) (S, error), cfg C) S {
	tb.Helper()
	s, err := open(cfg)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func servePNG(tb testing.TB, img image.Image) http.HandlerFunc {
	data := encodePNG(tb, img)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(data)
	}
}

// sized returns a w × h opaque image of c.
func sized(w, h int, c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

// checkErr checks that err wraps want (when set) and mentions every one
// of msgs, and that it never leaks the URL's key.
func checkErr(tb testing.TB, err, want error, msgs ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Tile(%v) succeeded, want an error", testTile)
	}
	if want != nil && !errors.Is(err, want) {
		tb.Errorf("Tile(%v) error = %v, want it to wrap %v", testTile, err, want)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			tb.Errorf("Tile(%v) error = %q, want it to contain %q", testTile, err, m)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		tb.Errorf("Tile(%v) error = %q leaks the URL's query", testTile, err)
	}
}

func TestHTTPFaults(t *testing.T) {
	t.Parallel()
	red := color.NRGBA{R: 200, A: 255}
	tile := encodePNG(t, solid(red))

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		s, sl := newXYZ(t, srv, func(c *source.XYZConfig) {
			c.HTTP.Timeout, c.HTTP.MaxAttempts = 100*time.Millisecond, 2
		})
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, `xyz "test-layer"`, "tile 3/2/1", "timeout", "after 2 attempts")
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Tile error = %v wraps context.DeadlineExceeded: callers would take it for their own deadline", err)
		}
		srv.checkRequests(t, 2)
		if got := len(sl.waits()); got != 1 {
			t.Errorf("%d waits between attempts, want 1", got)
		}
	})

	t.Run("header timeout", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		s, _ := newXYZ(t, srv, func(c *source.XYZConfig) {
			c.HTTP.HeaderTimeout, c.HTTP.MaxAttempts = 50*time.Millisecond, 1
		})
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "tile 3/2/1", "timeout")
	})

	t.Run("connection reset then success", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		srv := newTileServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				resetConnection(t, w)
				return
			}
			_, _ = w.Write(tile)
		})
		s, sl := newXYZ(t, srv, nil)
		got := mustTile(t, s, testTile)
		if !got.Opaque || got.Format != source.PNG || len(got.Data) != len(tile) {
			t.Errorf("Tile(%v) = %d bytes of %s, opaque %v, want the served PNG", testTile, len(got.Data), got.Format, got.Opaque)
		}
		if len(sl.waits()) == 0 {
			t.Errorf("no wait between attempts")
		}
	})

	t.Run("connection reset for good", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { resetConnection(t, w) })
		s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.MaxAttempts = 3 })
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, `xyz "test-layer"`, "tile 3/2/1", "after 3 attempts", srv.URL+"/tiles/3/2/1.png")
		if got := srv.requests.Load(); got < 3 {
			t.Errorf("server got %d requests, want at least 3", got)
		}
	})

	t.Run("500 then success", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			if n.Add(1) == 1 {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(tile)
		})
		s, sl := newXYZ(t, srv, nil)
		mustTile(t, s, testTile)
		srv.checkRequests(t, 2)
		if w := sl.waits(); len(w) != 1 || w[0] < 10*time.Millisecond || w[0] > 20*time.Millisecond {
			t.Errorf("waits = %v, want one of 10ms plus up to 10ms of jitter", w)
		}
	})

	t.Run("429 honours retry-after", func(t *testing.T) {
		t.Parallel()
		s, sl := newXYZ(t, tooManyRequestsOnce(t, "2", tile), nil)
		mustTile(t, s, testTile)
		sl.checkWaits(t, 2*time.Second)
	})

	t.Run("429 with an http-date retry-after", func(t *testing.T) {
		t.Parallel()
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		s, sl := newXYZ(t, tooManyRequestsOnce(t, now.Add(3*time.Second).Format(http.TimeFormat), tile), nil)
		source.SetRetryClock(s, nil, func() time.Time { return now })
		mustTile(t, s, testTile)
		sl.checkWaits(t, 3*time.Second)
	})

	t.Run("retry-after beyond the limit", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		s, sl := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "http 503", "retry after 1h0m0s", "30s limit")
		if srv.requests.Load() != 1 || len(sl.waits()) != 0 {
			t.Errorf("server got %d requests after %v waits, want 1 and none", srv.requests.Load(), sl.waits())
		}
	})

	t.Run("permanent 500", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "database down", http.StatusInternalServerError)
		})
		s, sl := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.MaxAttempts = 4 })
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, `xyz "test-layer": tile 3/2/1`, "http 500 Internal Server Error", "after 4 attempts", `"database down"`)
		var re *source.ResponseError
		if !errors.As(err, &re) || re.Status != 500 || re.Attempts != 4 {
			t.Errorf("Tile error = %#v, want a *ResponseError with status 500 after 4 attempts", re)
		}
		srv.checkRequests(t, 4)
		// Exponential backoff: 10ms, 20ms, 40ms, each with up to as much
		// again of jitter.
		w := sl.waits()
		if len(w) != 3 {
			t.Fatalf("waits = %v, want 3", w)
		}
		for i, d := range w {
			base := 10 * time.Millisecond << i
			if d < base || d > 2*base {
				t.Errorf("wait %d = %v, want %v..%v", i, d, base, 2*base)
			}
		}
	})

	t.Run("400 is not retried", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="1.0.0">
  <ows:Exception exceptionCode="TileOutOfRange" locator="TILEROW">
    <ows:ExceptionText>TileRow is out of range</ows:ExceptionText>
  </ows:Exception>
</ows:ExceptionReport>`)
		})
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "http 400", "service exception TileOutOfRange", `"TileRow is out of range"`)
		srv.checkRequests(t, 1)
	})

	t.Run("xml service exception with 200", func(t *testing.T) {
		t.Parallel()
		long := strings.Repeat("very long explanation ", 40)
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.ogc.se_xml")
			fmt.Fprintf(w, `<?xml version="1.0"?>
<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">
<ServiceExceptionReport version="1.1.1">
    <ServiceException code="LayerNotDefined">unknown layer: roads %s</ServiceException>
</ServiceExceptionReport>`, long)
		})
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, `xyz "test-layer": tile 3/2/1`, "service exception LayerNotDefined", "unknown layer: roads very long", "…")
		var re *source.ResponseError
		if !errors.As(err, &re) || len(re.Text) > 310 {
			t.Errorf("ResponseError = %#v, want the text truncated", re)
		}
		if got := srv.requests.Load(); got != 1 {
			t.Errorf("server got %d requests, want 1 (an exception is not retried)", got)
		}
	})

	t.Run("xml exception sent as an image type", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			fmt.Fprint(w, `<ServiceExceptionReport><ServiceException>out of memory</ServiceException></ServiceExceptionReport>`)
		})
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "service exception", `"out of memory"`)
	})

	t.Run("html page with 200", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!DOCTYPE html><html><head><title>Proxy Error</title><style>body{color:red}</style>
<script>var secret = 1;</script></head><body><h1>Gateway login required</h1></body></html>`)
		})
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, `xyz "test-layer": tile 3/2/1`, "answer is not an image (text/html)", `"Proxy Error Gateway login required"`)
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "color") {
			t.Errorf("Tile error = %q quotes scripts or styles", err)
		}
	})

	t.Run("binary that is not an image", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte{0, 1, 2, 0xff, 0xfe, 0x80, 0x81})
		})
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "answer is not an image", "7 bytes of binary data")
	})

	t.Run("answer over the size cap", func(t *testing.T) {
		t.Parallel()
		srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tile) })
		s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.MaxBodyBytes = 100 })
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, nil, "over the 100-byte limit")
		srv.checkRequests(t, 1)
	})
}

// resetConnection hijacks the connection behind w and resets it (RST),
// without answering.
func resetConnection(tb testing.TB, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		tb.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

func TestHTTPNoData(t *testing.T) {
	t.Parallel()
	opaque := encodePNG(t, solid(color.NRGBA{R: 10, G: 20, B: 30, A: 255}))
	tests := []struct {
		name     string
		status   int
		body     []byte
		notFound source.NotFound
		noData   *source.NoData
		wantErr  error  // nil: success
		wantMsg  string // part of the error
		wantData bool
	}{
		{name: "404 is no data", status: 404, wantErr: source.ErrNoData, wantMsg: "answered 404"},
		{name: "404 as configured error", status: 404, notFound: source.NotFoundError, wantMsg: "http 404 Not Found"},
		{name: "204 is no data", status: 204, wantErr: source.ErrNoData, wantMsg: "answered 204"},
		{name: "204 even when 404 is an error", status: 204, notFound: source.NotFoundError, wantErr: source.ErrNoData},
		{name: "transparent tile", status: 200, body: encodePNG(t, solid(color.NRGBA{})), wantErr: source.ErrNoData, wantMsg: "transparent"},
		{name: "no-data colour", status: 200, body: encodeJPEG(t, solid(color.NRGBA{R: 255, G: 255, B: 255, A: 255})), noData: &source.NoData{R: 255, G: 255, B: 255, Tolerance: 4}, wantErr: source.ErrNoData, wantMsg: "all #ffffff±4"},
		{name: "other colour than no data", status: 200, body: opaque, noData: &source.NoData{R: 255, G: 255, B: 255}, wantData: true},
		{name: "opaque tile", status: 200, body: opaque, wantData: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			})
			s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.NotFound, c.HTTP.NoData = tc.notFound, tc.noData })
			got, err := s.Tile(t.Context(), testTile)
			if tc.wantData {
				if err != nil {
					t.Fatalf("Tile(%v): %v", testTile, err)
				}
				if diff := cmp.Diff(source.Tile{Data: tc.body, Format: source.PNG, Opaque: true}, got); diff != "" {
					t.Errorf("Tile(%v) (-want +got):\n%s", testTile, diff)
				}
				return
			}
			checkErr(t, err, tc.wantErr, tc.wantMsg, "tile 3/2/1")
			if tc.wantErr == nil && errors.Is(err, source.ErrNoData) {
				t.Errorf("Tile(%v) error = %v, want a failure, not no data", testTile, err)
			}
			srv.checkRequests(t, 1)
		})
	}
}

func TestHTTPWrongSize(t *testing.T) {
	t.Parallel()
	green := color.NRGBA{G: 180, A: 255}
	srv := newTileServer(t, servePNG(t, sized(512, 512, green)))

	t.Run("reject", func(t *testing.T) {
		t.Parallel()
		s, _ := newXYZ(t, srv, nil)
		_, err := s.Tile(t.Context(), testTile)
		checkErr(t, err, source.ErrInvalidData, `xyz "test-layer": tile 3/2/1`, "512 × 512 pixels, want 256 × 256")
	})
	t.Run("resample", func(t *testing.T) {
		t.Parallel()
		s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.Resample = true })
		got := mustTile(t, s, testTile)
		if got.Image == nil || got.Data != nil || !got.Opaque {
			t.Fatalf("Tile(%v) = %+v, want an opaque resampled image", testTile, got)
		}
		if b := got.Image.Bounds(); b != image.Rect(0, 0, 256, 256) {
			t.Errorf("resampled bounds = %v, want 256 × 256", b)
		}
		if c := color.NRGBAModel.Convert(got.Image.At(128, 128)); c != green {
			t.Errorf("resampled centre = %v, want %v", c, green)
		}
	})
}

// TestHTTPConcurrencyLimit asks for many tiles at once and counts the
// requests the server has in flight.
func TestHTTPConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	tile := encodePNG(t, solid(color.NRGBA{B: 99, A: 255}))
	full := make(chan struct{})
	release := make(chan struct{})
	var fullOnce sync.Once
	var srv *tileServer
	srv = newTileServer(t, func(w http.ResponseWriter, _ *http.Request) {
		if srv.inFlight.Load() >= limit {
			fullOnce.Do(func() { close(full) })
		}
		<-release
		_, _ = w.Write(tile)
	})
	s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.Concurrency = limit })

	const tiles = 12
	errs := make(chan error, tiles)
	for i := range tiles {
		go func() {
			_, err := s.Tile(t.Context(), grid.Tile{Zoom: 4, Col: int64(i), Row: 0})
			errs <- err
		}()
	}
	<-full
	// The limit is reached; give the other goroutines time to break it if
	// they could, then let everything through.
	select {
	case <-time.After(100 * time.Millisecond):
	case err := <-errs:
		t.Fatalf("a tile finished while the server held every request: %v", err)
	}
	close(release)
	for range tiles {
		if err := <-errs; err != nil {
			t.Errorf("Tile: %v", err)
		}
	}
	if got := srv.maxInFlight.Load(); got != limit {
		t.Errorf("server had at most %d requests in flight, want %d", got, limit)
	}
	if got := srv.requests.Load(); got != tiles {
		t.Errorf("server got %d requests, want %d", got, tiles)
	}
}

// TestHTTPCancel cancels a request while the server hangs: Tile returns at
// once, and (TestMain checks) no goroutine is left behind.
func TestHTTPCancel(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := newTileServer(t, func(_ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	s, _ := newXYZ(t, srv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Tile(ctx, testTile)
		done <- err
	}()
	<-arrived
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Tile after cancel = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Tile returned %v after cancel, want at once", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Tile did not return after its context was cancelled")
	}
	if got := srv.requests.Load(); got != 1 {
		t.Errorf("server got %d requests, want 1 (a cancelled request is not retried)", got)
	}
}

// TestHTTPCancelledWhileWaiting cancels a caller that waits for a slot
// under the concurrency limit.
func TestHTTPCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := newTileServer(t, func(_ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	s, _ := newXYZ(t, srv, func(c *source.XYZConfig) { c.HTTP.Concurrency = 1 })
	holder, stopHolder := context.WithCancel(t.Context())
	defer stopHolder()
	held := make(chan error, 1)
	go func() {
		_, err := s.Tile(holder, grid.Tile{Zoom: 3, Col: 0, Row: 0})
		held <- err
	}()
	<-arrived
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Tile(ctx, testTile); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Tile while the only slot is taken = %v, want its context's deadline", err)
	}
	stopHolder()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Errorf("held Tile = %v, want context.Canceled", err)
	}
	srv.checkRequests(t, 1)
}

func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	var got http.Header
	var mu sync.Mutex
	srv := newTileServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	s, _ := newXYZ(t, srv, func(c *source.XYZConfig) {
		c.HTTP.Header = http.Header{"Referer": {"https://maps.example"}}
	})
	if _, err := s.Tile(t.Context(), testTile); !errors.Is(err, source.ErrNoData) {
		t.Fatalf("Tile: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Get("User-Agent") != "geoexport-exporter" || got.Get("Referer") != "https://maps.example" {
		t.Errorf("request headers = %v, want the user agent and the configured Referer", got)
	}
	if diff := cmp.Diff([]string{"/tiles/3/2/1.png?key=s3cret"}, srv.requestURIs()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestHTTPConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     source.HTTPConfig
		wantErr []string
	}{
		{name: "zero", cfg: source.HTTPConfig{}},
		{name: "everything", cfg: source.HTTPConfig{Timeout: time.Second, MaxAttempts: 1, Concurrency: 2, NotFound: source.NotFoundError, NoData: &source.NoData{}}},
		{
			name: "every problem",
			cfg:  source.HTTPConfig{Timeout: -1, ConnectTimeout: -2, MaxAttempts: -1, Concurrency: -3, MaxBodyBytes: -4, NotFound: "maybe"},
			wantErr: []string{
				"http timeout -1ns", "connect timeout -2ns", "max attempts -1", "concurrency -3", "max body bytes -4", `not found "maybe"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidate(t, tc.cfg.Validate(), tc.wantErr)
		})
	}
}

// checkValidate checks a Validate result: nil when wantErr is empty, or
// an error mentioning each of wantErr.
func checkValidate(tb testing.TB, err error, wantErr []string) {
	tb.Helper()
	checkProblems(tb, "Validate()", err, wantErr)
}

// checkProblems checks the result of call: nil when wantErr is empty, or
// an error mentioning each of wantErr.
func checkProblems(tb testing.TB, call string, err error, wantErr []string) {
	tb.Helper()
	if len(wantErr) == 0 {
		if err != nil {
			tb.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	if err == nil {
		tb.Fatalf("%s = nil, want errors containing %q", call, wantErr)
	}
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			tb.Errorf("%s = %q, want it to contain %q", call, err, want)
		}
	}
}

// TestResponseErrorRedactsURL checks that a URL's query and user info
// never reach an error message.
func TestResponseErrorRedactsURL(t *testing.T) {
	t.Parallel()
	srv := newTileServer(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("user", "s3cret")
	s, err := source.NewXYZ(source.XYZConfig{URL: u.String() + "/{z}/{x}/{y}.png?token=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Tile(t.Context(), testTile)
	checkErr(t, err, nil, "http 403", srv.URL+"/3/2/1.png")
}
