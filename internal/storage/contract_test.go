package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
)

// store is every method of the contract; consumers declare the subsets they
// call.
type store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	PutFile(ctx context.Context, key, path, contentType string) error
	Open(ctx context.Context, key string) (storage.Object, error)
	Stat(ctx context.Context, key string) (storage.Info, error)
	GetFile(ctx context.Context, key, path string) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) iter.Seq2[storage.Info, error]
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ store = (*storage.S3)(nil)
	_ store = (*storage.Local)(nil)
)

const gpkgType = "application/geopackage+sqlite3"

// runStoreContract runs the behaviour that worker, scheduler and trigger rely
// on against one implementation; newStore returns an empty store.
func runStoreContract(t *testing.T, newStore func(t *testing.T) store) {
	t.Run("PutOpenRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		data := randomBytes(t, 1<<20+123)
		before := time.Now()
		mustPut(t, s, "packages/a.gpkg", data, gpkgType)
		after := time.Now()

		obj := mustOpen(t, s, "packages/a.gpkg")
		got, err := io.ReadAll(obj)
		if err != nil {
			t.Fatalf("ReadAll(Open(packages/a.gpkg)) error = %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("ReadAll(Open(packages/a.gpkg)) = %d bytes differing from the %d put", len(got), len(data))
		}
		if obj.Size() != int64(len(data)) {
			t.Errorf("Object.Size() = %d, want %d", obj.Size(), len(data))
		}
		checkModTime(t, obj.ModTime(), before, after)
		if obj.ETag() == "" || strings.Contains(obj.ETag(), `"`) {
			t.Errorf("Object.ETag() = %q, want non-empty, unquoted", obj.ETag())
		}

		info, err := s.Stat(ctx, "packages/a.gpkg")
		if err != nil {
			t.Fatalf("Stat(packages/a.gpkg) error = %v", err)
		}
		want := storage.Info{Key: "packages/a.gpkg", Size: int64(len(data)), ModTime: info.ModTime, ETag: obj.ETag(), ContentType: gpkgType}
		if diff := cmp.Diff(want, info); diff != "" {
			t.Errorf("Stat(packages/a.gpkg) mismatch (-want +got):\n%s", diff)
		}
		checkModTime(t, info.ModTime, before, after)
		if diff := cmp.Diff(info, obj.Info()); diff != "" {
			t.Errorf("Object.Info() differs from Stat (-stat +info):\n%s", diff)
		}
	})

	t.Run("ReadAtAndSeek", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		data := randomBytes(t, 300_000)
		size := int64(len(data))
		mustPut(t, s, "r/x.gpkg", data, gpkgType)
		obj := mustOpen(t, s, "r/x.gpkg")

		for _, tc := range []struct {
			name    string
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{name: "start", off: 0, n: 10, wantN: 10},
			{name: "middle", off: 12345, n: 4096, wantN: 4096},
			{name: "exact end", off: size - 10, n: 10, wantN: 10},
			{name: "across end", off: size - 5, n: 10, wantN: 5, wantEOF: true},
			{name: "at end", off: size, n: 1, wantN: 0, wantEOF: true},
			{name: "past end", off: size + 100, n: 1, wantN: 0, wantEOF: true},
		} {
			buf := make([]byte, tc.n)
			n, err := obj.ReadAt(buf, tc.off)
			if n != tc.wantN || (tc.wantEOF && !errors.Is(err, io.EOF)) || (!tc.wantEOF && err != nil && !(errors.Is(err, io.EOF) && n == tc.n)) {
				t.Errorf("%s: ReadAt(len %d, off %d) = %d, %v, want %d, EOF %v", tc.name, tc.n, tc.off, n, err, tc.wantN, tc.wantEOF)
				continue
			}
			if n > 0 && !bytes.Equal(buf[:n], data[tc.off:tc.off+int64(n)]) {
				t.Errorf("%s: ReadAt(len %d, off %d) returned the wrong bytes", tc.name, tc.n, tc.off)
			}
		}

		// Concurrent ReadAt, as parallel Range requests on one object do.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				off := int64(i) * 30_000
				buf := make([]byte, 20_000)
				if n, err := obj.ReadAt(buf, off); err != nil || !bytes.Equal(buf[:n], data[off:off+20_000]) {
					t.Errorf("concurrent ReadAt(off %d) = %d, %v, or wrong bytes", off, n, err)
				}
			})
		}
		wg.Wait()

		// ReadAt did not move the Read position.
		head := make([]byte, 100)
		if _, err := io.ReadFull(obj, head); err != nil || !bytes.Equal(head, data[:100]) {
			t.Errorf("Read after ReadAt = %v or wrong bytes, want the first 100 bytes", err)
		}

		if pos, err := obj.Seek(0, io.SeekEnd); err != nil || pos != size {
			t.Errorf("Seek(0, SeekEnd) = %d, %v, want %d", pos, err, size)
		}
		if pos, err := obj.Seek(1000, io.SeekStart); err != nil || pos != 1000 {
			t.Errorf("Seek(1000, SeekStart) = %d, %v, want 1000", pos, err)
		}
		if pos, err := obj.Seek(-500, io.SeekCurrent); err != nil || pos != 500 {
			t.Errorf("Seek(-500, SeekCurrent) = %d, %v, want 500", pos, err)
		}
		buf := make([]byte, 50)
		if _, err := io.ReadFull(obj, buf); err != nil || !bytes.Equal(buf, data[500:550]) {
			t.Errorf("Read after Seek to 500 = %v or wrong bytes", err)
		}
		if pos, err := obj.Seek(-10, io.SeekEnd); err != nil || pos != size-10 {
			t.Errorf("Seek(-10, SeekEnd) = %d, %v, want %d", pos, err, size-10)
		}
		if rest, err := io.ReadAll(obj); err != nil || !bytes.Equal(rest, data[size-10:]) {
			t.Errorf("ReadAll after Seek(-10, SeekEnd) = %d bytes, %v, want the last 10", len(rest), err)
		}
		if pos, err := obj.Seek(size+10, io.SeekStart); err != nil || pos != size+10 {
			t.Errorf("Seek past the end = %d, %v, want %d, nil", pos, err, size+10)
		}
		if n, err := obj.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("Read past the end = %d, %v, want 0, io.EOF", n, err)
		}
		if _, err := obj.Seek(-1, io.SeekStart); err == nil {
			t.Errorf("Seek(-1, SeekStart) error = nil, want an error")
		}
		// Back inside after all that.
		if _, err := obj.Seek(7, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(obj, buf); err != nil || !bytes.Equal(buf, data[7:57]) {
			t.Errorf("Read after Seek back to 7 = %v or wrong bytes", err)
		}
	})

	t.Run("ServeRange", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		data := randomBytes(t, 100_000)
		mustPut(t, s, "packages/p.gpkg", data, gpkgType)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			obj, err := s.Open(r.Context(), "packages/p.gpkg")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer obj.Close()
			w.Header().Set("ETag", `"`+obj.ETag()+`"`)
			http.ServeContent(w, r, "p.gpkg", obj.ModTime(), obj)
		}))
		defer srv.Close()

		for _, tc := range []struct {
			rng        string
			wantStatus int
			want       []byte
		}{
			{rng: "", wantStatus: http.StatusOK, want: data},
			{rng: "bytes=100-199", wantStatus: http.StatusPartialContent, want: data[100:200]},
			{rng: "bytes=-50", wantStatus: http.StatusPartialContent, want: data[len(data)-50:]},
			{rng: "bytes=99990-", wantStatus: http.StatusPartialContent, want: data[99990:]},
			{rng: "bytes=200000-", wantStatus: http.StatusRequestedRangeNotSatisfiable},
		} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("GET Range %q = %s, want %d", tc.rng, resp.Status, tc.wantStatus)
				continue
			}
			if tc.want != nil && !bytes.Equal(body, tc.want) {
				t.Errorf("GET Range %q = %d bytes, want %d matching bytes", tc.rng, len(body), len(tc.want))
			}
		}
	})

	t.Run("EmptyAndUnknownSize", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		mustPut(t, s, "empty.gpkg", nil, gpkgType)
		obj := mustOpen(t, s, "empty.gpkg")
		if got, err := io.ReadAll(obj); err != nil || len(got) != 0 || obj.Size() != 0 {
			t.Errorf("empty object: ReadAll = %d bytes, %v; Size = %d; want 0, nil, 0", len(got), err, obj.Size())
		}
		if n, err := obj.ReadAt(make([]byte, 1), 0); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("empty object: ReadAt(0) = %d, %v, want 0, io.EOF", n, err)
		}

		data := randomBytes(t, 70_000)
		// Hide the length: a plain io.Reader.
		if err := s.Put(ctx, "unknown/size.gpkg", struct{ io.Reader }{bytes.NewReader(data)}, -1, gpkgType); err != nil {
			t.Fatalf("Put(size -1) error = %v", err)
		}
		if got := readAll(t, s, "unknown/size.gpkg"); !bytes.Equal(got, data) {
			t.Errorf("object put with size -1 = %d bytes, want the %d put", len(got), len(data))
		}
	})

	t.Run("ContentTypeDefault", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		for key, want := range map[string]string{"d/a.gpkg": gpkgType, "d/b.png": "image/png", "d/c": "application/octet-stream"} {
			mustPut(t, s, key, []byte("x"), "")
			info, err := s.Stat(ctx, key)
			if err != nil || info.ContentType != want {
				t.Errorf("Stat(%s) after Put with no content type = %q, %v, want %q", key, info.ContentType, err, want)
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		mustPut(t, s, "o/k.gpkg", []byte("first version"), gpkgType)
		first, err := s.Stat(ctx, "o/k.gpkg")
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "o/k.gpkg", []byte("second"), gpkgType)
		if got := readAll(t, s, "o/k.gpkg"); string(got) != "second" {
			t.Errorf("after overwrite, object = %q, want %q", got, "second")
		}
		second, err := s.Stat(ctx, "o/k.gpkg")
		if err != nil {
			t.Fatal(err)
		}
		if second.Size != 6 || second.ETag == first.ETag {
			t.Errorf("Stat after overwrite = size %d, ETag %q (before %q), want size 6 and a new ETag", second.Size, second.ETag, first.ETag)
		}
		// Same size, different content: the ETag still changes.
		mustPut(t, s, "o/k.gpkg", []byte("SECOND"), gpkgType)
		third, err := s.Stat(ctx, "o/k.gpkg")
		if err != nil {
			t.Fatal(err)
		}
		if third.ETag == second.ETag {
			t.Errorf("ETag after same-size overwrite = %q, unchanged", third.ETag)
		}
	})

	t.Run("AtomicPut", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		data := randomBytes(t, 200_000)
		errBoom := errors.New("boom")
		for _, tc := range []struct {
			name string
			r    io.Reader
			size int64
			want error
		}{
			{name: "short body", r: bytes.NewReader(data[:1000]), size: int64(len(data)), want: io.ErrUnexpectedEOF},
			{name: "short stream", r: struct{ io.Reader }{bytes.NewReader(data[:1000])}, size: int64(len(data)), want: io.ErrUnexpectedEOF},
			{name: "reader fails", r: io.MultiReader(bytes.NewReader(data[:100_000]), iotestErrReader{errBoom}), size: int64(len(data)), want: errBoom},
			{name: "reader fails, size unknown", r: io.MultiReader(bytes.NewReader(data[:100_000]), iotestErrReader{errBoom}), size: -1, want: errBoom},
		} {
			key := "atomic/" + strings.ReplaceAll(tc.name, " ", "-")
			if err := s.Put(ctx, key, tc.r, tc.size, ""); !errors.Is(err, tc.want) {
				t.Errorf("%s: Put error = %v, want %v", tc.name, err, tc.want)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: Stat after a failed Put = %v, want ErrNotFound: nothing stored", tc.name, err)
			}
		}

		// A failed overwrite leaves the old object whole.
		mustPut(t, s, "atomic/keep", []byte("old"), "")
		if err := s.Put(ctx, "atomic/keep", bytes.NewReader(data[:10]), int64(len(data)), ""); err == nil {
			t.Errorf("Put(short body) over an object: error = nil, want an error")
		}
		if got := readAll(t, s, "atomic/keep"); string(got) != "old" {
			t.Errorf("object after a failed overwrite = %q, want %q", got, "old")
		}
		for info, err := range s.List(ctx, "atomic/") {
			if err != nil {
				t.Fatal(err)
			}
			if info.Key != "atomic/keep" {
				t.Errorf("List(atomic/) shows %q, want only atomic/keep", info.Key)
			}
		}
	})

	t.Run("OverwriteWhileReading", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		const size = 256 << 10
		version := func(b byte) []byte { return bytes.Repeat([]byte{b}, size) }
		mustPut(t, s, "race/k", version('a'), "")

		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(done)
			for i := range 20 {
				if err := s.Put(ctx, "race/k", bytes.NewReader(version(byte('a'+i%26))), size, ""); err != nil {
					t.Errorf("Put #%d: %v", i, err)
					return
				}
			}
		})
		for range 3 {
			wg.Go(func() {
				for reads := 0; ; reads++ {
					select {
					case <-done:
						if reads > 0 {
							return
						}
					default:
					}
					got := readAll(t, s, "race/k")
					if len(got) != size || bytes.Count(got, got[:1]) != size {
						t.Errorf("read a torn object: %d bytes, %d of them %q", len(got), bytes.Count(got, got[:1]), got[:1])
						return
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("ReadAfterOverwrite", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		v1, v2 := bytes.Repeat([]byte("1"), 100_000), bytes.Repeat([]byte("2"), 100_000)
		mustPut(t, s, "v/k", v1, "")
		seq, ranged := mustOpen(t, s, "v/k"), mustOpen(t, s, "v/k")
		mustPut(t, s, "v/k", v2, "")

		// A sequential read streams the opened version.
		if got, err := io.ReadAll(seq); err != nil || !bytes.Equal(got, v1) {
			t.Errorf("ReadAll of an object opened before an overwrite = %d bytes, %v, want the old version", len(got), err)
		}
		// Elsewhere: the opened version or an error, never the new one.
		buf := make([]byte, 1000)
		if n, err := ranged.ReadAt(buf, 5000); err == nil && !bytes.Equal(buf[:n], v1[:n]) {
			t.Errorf("ReadAt after an overwrite returned bytes of the new version")
		}
		if _, err := ranged.Seek(90_000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(ranged); err == nil && !bytes.Equal(got, v1[90_000:]) {
			t.Errorf("Read after Seek after an overwrite returned bytes of the new version")
		}
		if err := s.Delete(ctx, "v/k"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PutFileGetFile", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		dir := t.TempDir()
		data := randomBytes(t, 500_000)
		src := filepath.Join(dir, "src.gpkg")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.PutFile(ctx, "parts/j/1.gpkg", src, gpkgType); err != nil {
			t.Fatalf("PutFile error = %v", err)
		}
		info, err := s.Stat(ctx, "parts/j/1.gpkg")
		if err != nil || info.Size != int64(len(data)) || info.ContentType != gpkgType {
			t.Errorf("Stat after PutFile = %+v, %v, want size %d, type %s", info, err, len(data), gpkgType)
		}

		dst := filepath.Join(dir, "new", "nested", "dst.gpkg")
		if err := s.GetFile(ctx, "parts/j/1.gpkg", dst); err != nil {
			t.Fatalf("GetFile into a new directory error = %v", err)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Errorf("GetFile wrote %d bytes, %v, want the %d put", len(got), err, len(data))
		}
		mustPut(t, s, "small", []byte("small"), "")
		if err := s.GetFile(ctx, "small", dst); err != nil {
			t.Fatalf("GetFile over an existing file error = %v", err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "small" {
			t.Errorf("GetFile over an existing file left %q, want %q", got, "small")
		}
		if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
			t.Errorf("GetFile left %d files beside the destination, want none", len(entries)-1)
		}

		if err := s.GetFile(ctx, "missing", dst); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetFile(missing) = %v, want ErrNotFound", err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "small" {
			t.Errorf("GetFile(missing) changed the destination to %q", got)
		}
		absent := filepath.Join(dir, "absent")
		if err := s.GetFile(ctx, "missing", absent); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetFile(missing) = %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("GetFile(missing) created the destination: stat = %v", err)
		}

		err = s.PutFile(ctx, "x", filepath.Join(dir, "no-such-file"), "")
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("PutFile(missing local file) = %v, want an error that is not ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		mustPut(t, s, "del/a/b.gpkg", []byte("x"), "")
		mustPut(t, s, "del/a/c.gpkg", []byte("y"), "")
		for i := range 2 {
			if err := s.Delete(ctx, "del/a/b.gpkg"); err != nil {
				t.Errorf("Delete #%d = %v, want nil", i+1, err)
			}
		}
		if _, err := s.Stat(ctx, "del/a/b.gpkg"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
		}
		if got := readAll(t, s, "del/a/c.gpkg"); string(got) != "y" {
			t.Errorf("sibling after Delete = %q, want %q", got, "y")
		}
		for _, key := range []string{"never/was", "del/a", "del/a/c.gpkg/under-a-file"} {
			if err := s.Delete(ctx, key); err != nil {
				t.Errorf("Delete(%s) = %v, want nil", key, err)
			}
		}
		if got := readAll(t, s, "del/a/c.gpkg"); string(got) != "y" {
			t.Errorf("Delete(del/a) touched del/a/c.gpkg: %q", got)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		keys := []string{
			"packages/x.gpkg",
			"parts/j1/a.gpkg",
			"parts/j1/b.gpkg",
			"parts/j10/c.gpkg",
			"parts/j2/d/e.gpkg",
			"parts-x",
			"z with space/ünïcode+plus.gpkg",
		}
		for i, k := range keys {
			mustPut(t, s, k, bytes.Repeat([]byte("x"), i+1), "")
		}
		sizeOf := map[string]int64{}
		for i, k := range keys {
			sizeOf[k] = int64(i + 1)
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{prefix: "", want: []string{"packages/x.gpkg", "parts-x", "parts/j1/a.gpkg", "parts/j1/b.gpkg", "parts/j10/c.gpkg", "parts/j2/d/e.gpkg", "z with space/ünïcode+plus.gpkg"}},
			{prefix: "parts/j1", want: []string{"parts/j1/a.gpkg", "parts/j1/b.gpkg", "parts/j10/c.gpkg"}},
			{prefix: "parts/j1/", want: []string{"parts/j1/a.gpkg", "parts/j1/b.gpkg"}},
			{prefix: "parts/j1/a", want: []string{"parts/j1/a.gpkg"}},
			{prefix: "parts", want: []string{"parts-x", "parts/j1/a.gpkg", "parts/j1/b.gpkg", "parts/j10/c.gpkg", "parts/j2/d/e.gpkg"}},
			{prefix: "parts/j2/", want: []string{"parts/j2/d/e.gpkg"}},
			{prefix: "z with space/ü", want: []string{"z with space/ünïcode+plus.gpkg"}},
			{prefix: "nope/", want: nil},
			{prefix: "packages/x.gpkg/", want: nil},
		} {
			var got []string
			for info, err := range s.List(ctx, tc.prefix) {
				if err != nil {
					t.Fatalf("List(%q) error = %v", tc.prefix, err)
				}
				got = append(got, info.Key)
				if info.Size != sizeOf[info.Key] || info.ETag == "" || info.ModTime.IsZero() {
					t.Errorf("List(%q) item %+v, want size %d, an ETag and a ModTime", tc.prefix, info, sizeOf[info.Key])
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("List(%q) keys mismatch (-want +got):\n%s", tc.prefix, diff)
			}
		}

		// Breaking out early is fine.
		n := 0
		for _, err := range s.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
		if n != 2 {
			t.Errorf("List stopped after %d items, want to break at 2", n)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		_, err := s.Stat(ctx, "missing/key.gpkg")
		if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "missing/key.gpkg") {
			t.Errorf("Stat(missing) = %v, want ErrNotFound naming the key", err)
		}
		if obj, err := s.Open(ctx, "missing/key.gpkg"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(missing) = %v, %v, want ErrNotFound at Open time", obj, err)
		}
		mustPut(t, s, "file", []byte("x"), "")
		mustPut(t, s, "dir/file", []byte("x"), "")
		for _, key := range []string{"file/below", "dir"} {
			if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat(%s) = %v, want ErrNotFound", key, err)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Open(%s) = %v, want ErrNotFound", key, err)
			}
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), t.Context()
		src := filepath.Join(t.TempDir(), "src")
		if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "dst")
		for _, key := range []string{
			"", "/abs", "../escape", "a/../../b", "a/..", "./a", "a/./b", `a\b`, `..\..\x`,
			"a//b", "a/", "x\x00y", "tab\there", "\xff", strings.Repeat("k", 1025), "a/.storage-tmp-x",
		} {
			checks := map[string]error{
				"Put":     s.Put(ctx, key, strings.NewReader("x"), 1, ""),
				"PutFile": s.PutFile(ctx, key, src, ""),
				"Stat":    second(s.Stat(ctx, key)),
				"Open":    second(s.Open(ctx, key)),
				"GetFile": s.GetFile(ctx, key, dst),
				"Delete":  s.Delete(ctx, key),
			}
			for op, err := range checks {
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
			}
		}
		for _, prefix := range []string{"../", "a/../b", "/abs", `a\`, "a//b"} {
			for _, err := range s.List(ctx, prefix) {
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("List(%q) = %v, want ErrInvalidKey", prefix, err)
				}
			}
		}
		if err := s.Put(ctx, "fine/key-1_2.3~ok.gpkg", strings.NewReader("x"), 1, ""); err != nil {
			t.Errorf("Put(a valid key) = %v", err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		mustPut(t, s, "c", []byte("x"), "")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.Stat(ctx, "c"); !errors.Is(err, context.Canceled) {
			t.Errorf("Stat(canceled ctx) = %v, want context.Canceled", err)
		}
		if err := s.Put(ctx, "c", strings.NewReader("y"), 1, ""); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(canceled ctx) = %v, want context.Canceled", err)
		}
		if got := readAll(t, s, "c"); string(got) != "x" {
			t.Errorf("object after a canceled Put = %q, want %q", got, "x")
		}
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
}

func mustPut(t *testing.T, s store, key string, data []byte, contentType string) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), contentType); err != nil {
		t.Fatalf("Put(%s) error = %v", key, err)
	}
}

func mustOpen(t *testing.T, s store, key string) storage.Object {
	t.Helper()
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", key, err)
	}
	t.Cleanup(func() { obj.Close() })
	return obj
}

func readAll(t *testing.T, s store, key string) []byte {
	t.Helper()
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Errorf("Open(%s) error = %v", key, err)
		return nil
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Errorf("ReadAll(Open(%s)) error = %v", key, err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// checkModTime allows for S3's whole-second Last-Modified.
func checkModTime(t *testing.T, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Add(-2*time.Second)) || got.After(after.Add(2*time.Second)) {
		t.Errorf("ModTime = %v, want between %v and %v", got, before, after)
	}
}

func second[T any](_ T, err error) error { return err }

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestContractLocal(t *testing.T) {
	t.Parallel()
	runStoreContract(t, func(t *testing.T) store {
		s, err := storage.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestContractS3(t *testing.T) {
	t.Parallel()
	runStoreContract(t, func(t *testing.T) store {
		return newTestS3(t)
	})
}

// newTestS3 returns an S3 store on a fresh bucket of the shared MinIO.
func newTestS3(t *testing.T) *storage.S3 {
	t.Helper()
	env := testenv.MinIO(t)
	s, err := storage.NewS3(t.Context(), storage.S3Config{
		Endpoint:  env.Endpoint,
		Bucket:    env.Bucket,
		AccessKey: env.AccessKey,
		SecretKey: env.SecretKey,
	})
	if err != nil {
		t.Fatalf("NewS3() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
