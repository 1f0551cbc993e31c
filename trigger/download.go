package trigger

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/geoexport/exporter/internal/storage"
)

// ContentTypeGeoPackage is the media type of GeoPackage files.
const ContentTypeGeoPackage = "application/geopackage+sqlite3"

// download streams a package from storage, honouring a single-range Range
// header (206) and If-None-Match on its ETag.
func (s *Server) download(c *fiber.Ctx) error {
	name := c.Params("name")
	if !packageFile.MatchString(name) || strings.HasPrefix(name, ".") {
		return errorf(fiber.StatusNotFound, "no package named %q", name)
	}
	obj, err := s.deps.Files.Open(c.UserContext(), "packages/"+name)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(fiber.StatusNotFound, "no package named %q; it may have expired", name)
	}
	if err != nil {
		return fmt.Errorf("open package %s: %w", name, err)
	}
	size := obj.Size()
	c.Set(fiber.HeaderContentType, ContentTypeGeoPackage)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderLastModified, obj.ModTime().UTC().Format(http.TimeFormat))
	if etag := obj.ETag(); etag != "" {
		c.Set(fiber.HeaderETag, `"`+strings.Trim(etag, `"`)+`"`)
	}
	start, end := int64(0), size-1
	status := fiber.StatusOK
	if rng := c.Get(fiber.HeaderRange); rng != "" && size > 0 {
		if ifr := c.Get(fiber.HeaderIfRange); ifr == "" || ifr == c.GetRespHeader(fiber.HeaderETag) {
			a, b, err := fasthttp.ParseByteRange([]byte(rng), int(size))
			if err != nil {
				obj.Close()
				c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
				return errorf(fiber.StatusRequestedRangeNotSatisfiable, "range %q not satisfiable for %d bytes", rng, size)
			}
			start, end, status = int64(a), int64(b), fiber.StatusPartialContent
			c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", start, end, size))
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
