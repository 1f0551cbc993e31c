package trigger

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
)

// ContentTypeGeoPackage is the media type of GeoPackage files.
const ContentTypeGeoPackage = "application/geopackage+sqlite3"

// download streams a package, or the metadata JSON beside it, from
// storage: /downloads/<job id>/<name> is the file of that job, /downloads/<name> one stored before packages
// had per-job keys (job.DownloadURI). It answers If-None-Match on the ETag
// with 304, and one byte range (with If-Range) with 206; a Range it cannot
// read, of another unit or of several ranges, is ignored as RFC 9110
// allows, and a range outside the package is 416.
func (s *Server) download(c *fiber.Ctx) error {
	name := c.Params("name")
	if !packageFile.MatchString(name) || strings.HasPrefix(name, ".") {
		return errorf(fiber.StatusNotFound, "no package named %q", name)
	}
	id := c.Params("jobId")
	if id != "" {
		if u, err := uuid.Parse(id); err != nil || u.String() != id {
			return errorf(fiber.StatusNotFound, "no job %q", id)
		}
	}
	key := job.PackageFileKey(id, name)
	obj, err := s.deps.Files.Open(c.UserContext(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(fiber.StatusNotFound, "no package named %q; it may have expired", name)
	}
	if err != nil {
		return fmt.Errorf("open package %s: %w", name, err)
	}
	size := obj.Size()
	etag := ""
	if t := obj.ETag(); t != "" {
		etag = `"` + strings.Trim(t, `"`) + `"`
		c.Set(fiber.HeaderETag, etag)
	}
	if strings.HasSuffix(name, ".json") {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	} else {
		c.Set(fiber.HeaderContentType, ContentTypeGeoPackage)
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderLastModified, obj.ModTime().UTC().Format(http.TimeFormat))
	if etag != "" && etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		obj.Close()
		return c.SendStatus(fiber.StatusNotModified)
	}
	start, end := int64(0), size-1
	status := fiber.StatusOK
	if rng := c.Get(fiber.HeaderRange); rng != "" {
		if ifr := c.Get(fiber.HeaderIfRange); ifr == "" || ifr == etag {
			a, b, ok, satisfiable := parseRange(rng, size)
			switch {
			case ok && !satisfiable:
				obj.Close()
				c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
				return errorf(fiber.StatusRequestedRangeNotSatisfiable, "range %q not satisfiable for %d bytes", rng, size)
			case ok:
				start, end, status = a, b, fiber.StatusPartialContent
				c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", start, end, size))
			}
		}
	}
	length := end - start + 1
	c.Status(status)
	if c.Method() == fiber.MethodHead {
		obj.Close()
		c.Response().Header.SetContentLength(int(length))
		c.Response().SkipBody = true
		return nil
	}
	// fasthttp closes a body stream that is an io.Closer once it is sent.
	return c.SendStream(struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(obj, start, length), obj}, int(length))
}

// etagMatches reports whether an If-None-Match header names etag (or *).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// parseRange reads a Range header of one byte range (RFC 9110 14.1.2):
// "bytes=first-last", "bytes=first-" or "bytes=-suffix". ok is false for a
// header to ignore (another unit, bad syntax, several ranges); satisfiable
// is false for a valid range that misses a representation of size bytes.
func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	num := func(s string) (int64, bool) {
		if s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if first == "" { // suffix: the last n bytes
		n, valid := num(last)
		if !valid {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(0, size-n), size - 1, true, true
	}
	a, valid := num(first)
	if !valid {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		if b, valid = num(last); !valid || b < a {
			return 0, 0, false, false
		}
	}
	if a >= size {
		return 0, 0, true, false
	}
	return a, min(b, size-1), true, true
}
