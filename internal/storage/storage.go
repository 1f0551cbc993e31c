package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound means that the object, or the bucket that would hold it, does
// not exist.
var ErrNotFound = errors.New("storage: not found")

// ErrInvalidKey means that a key or list prefix breaks the key rules in the
// package documentation.
var ErrInvalidKey = errors.New("storage: invalid key")

// maxKeyLen is S3's limit on object key length, in bytes.
const maxKeyLen = 1024

// tempPrefix starts the names of Local's temporary files. Keys may not have a
// segment with this prefix, and List never shows such files.
const tempPrefix = ".storage-tmp-"

// Info describes a stored object.
type Info struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is when the object was last written. S3 keeps it to the
	// second (Stat, Open) or millisecond (List).
	ModTime time.Time
	// ETag changes whenever the object is rewritten; it is opaque and has no
	// quotes. S3 returns the server's ETag (an MD5 for single-part uploads);
	// Local derives it from size and modification time.
	ETag string
	// ContentType is the object's media type. List leaves it empty (S3 does
	// not return it when listing); use Stat.
	ContentType string
}

// Object is an open stored object, positioned at its start. It is what
// http.ServeContent needs to answer Range requests.
//
// Seek to a negative position fails; Seek past the end succeeds and the next
// Read returns io.EOF. ReadAt does not move the Read position, may be called
// concurrently, and returns io.EOF whenever it returns fewer bytes than
// asked. Size, ModTime and ETag describe the version that was opened.
//
// An Object never returns bytes of another version: if the key is
// overwritten or deleted while it is open, Local keeps reading the opened
// file, and S3 keeps streaming a sequential read but fails a read after Seek
// or ReadAt (see [S3.Open]).
//
// The caller must Close it. Reads from an S3 object need the context given to
// Open, so cancel that only after Close.
type Object interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size returns the object's length in bytes.
	Size() int64
	// ModTime returns when the object was last written.
	ModTime() time.Time
	// ETag returns the object's opaque version tag, without quotes.
	ETag() string
	// Info returns all of the above, with the key and content type.
	Info() Info
}

// checkKey returns an error wrapping ErrInvalidKey unless key follows the key
// rules.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("key is empty: %w", ErrInvalidKey)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("key %q ends with a slash: %w", key, ErrInvalidKey)
	}
	return checkSegments(key, strings.Split(key, "/"))
}

// checkPrefix is checkKey for List prefixes: they may be empty, end with a
// slash, and end in a partial segment.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkChars(prefix); err != nil {
		return err
	}
	segs := strings.Split(prefix, "/")
	return checkSegments(prefix, segs[:len(segs)-1])
}

func checkChars(key string) error {
	switch {
	case len(key) > maxKeyLen:
		return fmt.Errorf("key %.40q…: longer than %d bytes: %w", key, maxKeyLen, ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not UTF-8: %w", key, ErrInvalidKey)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("key %q is absolute: %w", key, ErrInvalidKey)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("key %q contains a backslash: %w", key, ErrInvalidKey)
	case strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("key %q contains a control character: %w", key, ErrInvalidKey)
	}
	return nil
}

func checkSegments(key string, segs []string) error {
	for _, s := range segs {
		switch {
		case s == "":
			return fmt.Errorf("key %q has an empty segment: %w", key, ErrInvalidKey)
		case s == "." || s == "..":
			return fmt.Errorf("key %q has a %q segment: %w", key, s, ErrInvalidKey)
		case strings.HasPrefix(s, tempPrefix):
			return fmt.Errorf("key %q uses the reserved prefix %s: %w", key, tempPrefix, ErrInvalidKey)
		}
	}
	return nil
}

// contentTypes are the media types of the files this project stores, fixed
// here because mime.TypeByExtension depends on the host's mime.types.
var contentTypes = map[string]string{
	".gpkg": "application/geopackage+sqlite3",
	".json": "application/json",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".webp": "image/webp",
	".txt":  "text/plain; charset=utf-8",
}

// contentTypeFor guesses a key's media type from its extension.
func contentTypeFor(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
