package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// unknownSizePartSize is the multipart part size for Put with size -1.
// minio-go would otherwise size parts for a 5 TiB object and buffer
// hundreds of MiB per part.
const unknownSizePartSize = 16 << 20

// S3Config configures an [S3] store.
type S3Config struct {
	// Endpoint is the S3 API's host[:port], without a scheme, such as
	// "minio:9000" or "s3.eu-central-1.amazonaws.com". Required.
	Endpoint string
	// Bucket holds the objects. Required.
	Bucket string
	// AccessKey identifies the credentials. Required.
	AccessKey string
	// SecretKey is the credentials' secret. S3Config prints, logs and
	// marshals it as REDACTED. Required.
	SecretKey string `json:"-"`
	// Region is the bucket's region. Empty: discover it (MinIO's default is
	// us-east-1).
	Region string
	// UseTLS selects https. False: plain http.
	UseTLS bool
	// CreateBucket makes NewS3 create the bucket when it is missing. False:
	// NewS3 does not contact the server, and a missing bucket shows as
	// ErrNotFound from Ping and every other call.
	CreateBucket bool
}

// Validate reports every problem with the configuration at once.
func (c S3Config) Validate() error {
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("s3 endpoint is required"))
	case strings.Contains(c.Endpoint, "://"):
		errs = append(errs, fmt.Errorf("s3 endpoint %q must be host[:port] without a scheme (set UseTLS for https)", c.Endpoint))
	case strings.ContainsAny(c.Endpoint, "/?#"):
		errs = append(errs, fmt.Errorf("s3 endpoint %q must be host[:port] without a path", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("s3 bucket is required"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("s3 bucket %q: %w", c.Bucket, err))
	}
	if c.AccessKey == "" {
		errs = append(errs, errors.New("s3 access key is required"))
	}
	if c.SecretKey == "" {
		errs = append(errs, errors.New("s3 secret key is required"))
	}
	return errors.Join(errs...)
}

// LogValue logs the configuration with the secret key redacted.
func (c S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("region", c.Region),
		slog.Bool("use_tls", c.UseTLS),
		slog.Bool("create_bucket", c.CreateBucket),
		slog.String("access_key", c.AccessKey),
		slog.String("secret_key", redact(c.SecretKey)),
	)
}

// Format prints the configuration with the secret key redacted, for every
// fmt verb.
func (c S3Config) Format(f fmt.State, verb rune) {
	type s3Config S3Config // the fields without this method
	c.SecretKey = redact(c.SecretKey)
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s3Config(c))
}

// redact hides a set secret and shows that an empty one is empty.
func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// S3 stores objects in one bucket of an S3-compatible service through
// minio-go. It is safe for concurrent use.
type S3 struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
}

// NewS3 returns a store for cfg. With cfg.CreateBucket it creates the bucket
// if it is missing, tolerating another process creating it at the same time;
// otherwise it makes no request. Errors: the joined problems of cfg.Validate,
// or the bucket could not be checked or created.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new s3 store: %w", err)
	}
	tr, err := minio.DefaultTransport(cfg.UseTLS)
	if err != nil {
		return nil, fmt.Errorf("new s3 store: %w", err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.UseTLS,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("new s3 store: %w", err)
	}
	s := &S3{client: client, transport: tr, bucket: cfg.Bucket}
	if cfg.CreateBucket {
		if err := s.createBucket(ctx, cfg.Region); err != nil {
			tr.CloseIdleConnections()
			return nil, fmt.Errorf("new s3 store: %w", err)
		}
	}
	return s, nil
}

func (s *S3) createBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err == nil {
		return nil
	}
	switch errorResponse(err).Code {
	case minio.BucketAlreadyOwnedByYou:
		return nil // another replica won the race
	case minio.BucketAlreadyExists:
		// Some servers say this to the owner too; it is ours if we can see it.
		if ok, herr := s.client.BucketExists(ctx, s.bucket); herr == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("create bucket %s: %w", s.bucket, err)
}

// Bucket returns the bucket's name.
func (s *S3) Bucket() string { return s.bucket }

// Close closes idle HTTP connections (and their goroutines). The store stays
// usable; Close may be called more than once.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Put uploads size bytes from r under key, replacing any object there. size
// -1 means: read r to its end (in 16 MiB multipart parts). r is not closed.
// An empty contentType is guessed from the key's extension.
//
// It is atomic: S3 makes an object visible only once its upload completes,
// so readers see the old object or the new one; if r fails or yields fewer
// than size bytes, Put returns an error and the old object (or none) stays.
// Put is idempotent.
//
// Errors: ErrInvalidKey; ErrNotFound when the bucket is missing;
// io.ErrUnexpectedEOF for a short r; errors from r, ctx and the service.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	opts := minio.PutObjectOptions{ContentType: cmp.Or(contentType, contentTypeFor(key))}
	if size < 0 {
		opts.PartSize = unknownSizePartSize
	} else {
		var err error
		if r, err = exactly(r, size); err != nil {
			return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
		}
	}
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, size, opts); err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// exactly makes a short body fail fast with io.ErrUnexpectedEOF. minio-go
// would send it, have net/http reject the request, and retry for seconds. A
// seekable r (which minio-go uses to retry and upload in parallel) is
// measured up front and passed on as it is; any other r is wrapped.
func exactly(r io.Reader, size int64) (io.Reader, error) {
	sk, ok := r.(io.Seeker)
	if !ok {
		return &exactReader{r: r, left: size}, nil
	}
	cur, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		// An *os.File may be a pipe, which cannot seek.
		return &exactReader{r: r, left: size}, nil
	}
	end, err := sk.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := sk.Seek(cur, io.SeekStart); err != nil {
		return nil, err
	}
	if end-cur < size {
		return nil, fmt.Errorf("body has %d of %d bytes: %w", end-cur, size, io.ErrUnexpectedEOF)
	}
	return r, nil
}

// exactReader reads left bytes from r and turns an early io.EOF into an
// error wrapping io.ErrUnexpectedEOF.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		err = shortBodyError{left: e.left}
	}
	return n, err
}

// shortBodyError is io.ErrUnexpectedEOF without "EOF" in its text: minio-go
// replaces any request error whose text contains "EOF" with a generic
// "Connection closed by foreign host" error, dropping the cause.
type shortBodyError struct{ left int64 }

func (e shortBodyError) Error() string {
	return fmt.Sprintf("body ended %d bytes short of its size", e.left)
}

func (shortBodyError) Unwrap() error { return io.ErrUnexpectedEOF }

// PutFile uploads the local file at path under key, as Put does (atomic,
// idempotent), in parallel parts when it is large. A missing file is an error
// that is not ErrNotFound.
func (s *S3) PutFile(ctx context.Context, key, path, contentType string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("put file: %w", err)
	}
	opts := minio.PutObjectOptions{ContentType: cmp.Or(contentType, contentTypeFor(key))}
	if _, err := s.client.FPutObject(ctx, s.bucket, key, path, opts); err != nil {
		return s.wrap("put file", key, err)
	}
	return nil
}

// Open opens the object under key for reading; see [Object]. The caller
// closes the Object; its reads use ctx, which must stay alive until then.
//
// Open starts the download before it returns, so that a missing object is
// reported here and not on the first Read. Reading sequentially from the
// start streams the version current at Open, even if the key is overwritten
// meanwhile. After a Seek or ReadAt, S3 fetches again, conditional on that
// version's ETag: if the object has changed since Open, the read fails
// (PreconditionFailed) rather than mixing two versions.
//
// Errors: ErrInvalidKey; ErrNotFound; errors from ctx and the service.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("open", key, err)
	}
	// GetObject is lazy: errors such as NoSuchKey appear only on the first
	// Read or Stat. An empty first Read sends the GET and keeps its body for
	// the Reads that follow (a first Stat would send a HEAD, and the first
	// Read a second, ETag-conditional, request).
	if _, err := obj.Read(nil); err != nil && !errors.Is(err, io.EOF) {
		obj.Close()
		return nil, s.wrap("open", key, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, s.wrap("open", key, err)
	}
	return &s3Object{obj: obj, info: s3Info(oi)}, nil
}

// Stat describes the object under key.
//
// Errors: ErrInvalidKey; ErrNotFound; errors from ctx and the service.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, fmt.Errorf("stat: %w", err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrap("stat", key, err)
	}
	return s3Info(oi), nil
}

// GetFile downloads the object under key to the local file path, creating
// missing parent directories and replacing an existing file. The file appears
// whole or not at all: minio-go downloads to a temporary file beside it and
// renames it (and resumes that file after a failed attempt). It is
// idempotent; concurrent calls must use different paths.
//
// Errors: ErrInvalidKey; ErrNotFound (path is not touched); errors from ctx,
// the file system and the service.
func (s *S3) GetFile(ctx context.Context, key, path string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	// FGetObject stats the object first, so NoSuchKey arrives here.
	if err := s.client.FGetObject(ctx, s.bucket, key, path, minio.GetObjectOptions{}); err != nil {
		return s.wrap("get", key, err)
	}
	return nil
}

// Delete removes the object under key. It is idempotent: a missing key is
// not an error.
//
// Errors: ErrInvalidKey; ErrNotFound only when the bucket is missing; errors
// from ctx and the service.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// List yields the objects whose keys start with prefix ("" for all), in
// lexical key order, without ContentType. prefix is a plain string prefix:
// "parts/j1" matches "parts/j10/x". Objects are fetched a page (1000) at a
// time while iterating; breaking out of the loop stops the listing.
//
// Errors, yielded once and ending the sequence: ErrInvalidKey for a bad
// prefix; ErrNotFound when the bucket is missing; errors from ctx and the
// service.
func (s *S3) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		if err := checkPrefix(prefix); err != nil {
			yield(Info{}, fmt.Errorf("list %q: %w", prefix, err))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if oi.Err != nil {
				yield(Info{}, s.wrap("list", prefix, oi.Err))
				return
			}
			info := s3Info(oi)
			info.ContentType = ""
			if !yield(info, nil) {
				return
			}
		}
	}
}

// Ping checks that the service answers and the bucket exists.
//
// Errors: ErrNotFound when the bucket is missing; errors from ctx and the
// service (bad credentials, unreachable endpoint).
func (s *S3) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("ping bucket %s: %w", s.bucket, classifyS3(err))
	}
	if !ok {
		return fmt.Errorf("ping bucket %s: %w", s.bucket, ErrNotFound)
	}
	return nil
}

// wrap classifies a minio-go error and adds the operation and object.
func (s *S3) wrap(op, key string, err error) error {
	return fmt.Errorf("%s s3://%s/%s: %w", op, s.bucket, key, classifyS3(err))
}

// classifyS3 maps "no such key or bucket" responses to ErrNotFound and
// returns other errors as they are. It looks through wrapping, which
// minio.ToErrorResponse does not.
func classifyS3(err error) error {
	resp := errorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey, resp.Code == minio.NoSuchBucket, resp.Code == "NotFound",
		resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w", cmp.Or(resp.Code, "404"), ErrNotFound)
	}
	return err
}

// errorResponse returns the S3 error response in err's chain, or the zero
// value.
func errorResponse(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp
	}
	var p *minio.ErrorResponse
	if errors.As(err, &p) && p != nil {
		return *p
	}
	return minio.ErrorResponse{}
}

func s3Info(oi minio.ObjectInfo) Info {
	return Info{
		Key:         oi.Key,
		Size:        oi.Size,
		ModTime:     oi.LastModified,
		ETag:        strings.Trim(oi.ETag, `"`),
		ContentType: oi.ContentType,
	}
}

// s3Object gives a minio.Object the semantics that [Object] promises and
// that *os.File has:
//   - Seek only records the position; Read moves minio's position when it
//     differs, so http.ServeContent's Seek(0, io.SeekEnd), Seek(0,
//     io.SeekStart) keeps the stream that Open started.
//   - Seek past the end is allowed (minio-go refuses it); Read there, and
//     ReadAt past the end, return io.EOF without a request.
//   - A ReadAt that reaches the end leaves minio-go's Object answering io.EOF
//     to every later Read until it is seeked; Read re-seeks after any ReadAt.
type s3Object struct {
	obj    *minio.Object
	info   Info
	pos    int64       // position of the next Read
	objPos int64       // minio's position, unless readAt is set
	readAt atomic.Bool // a ReadAt ran since minio's position was last set
}

func (o *s3Object) Read(p []byte) (int, error) {
	if o.pos >= o.info.Size {
		return 0, io.EOF
	}
	if o.readAt.Swap(false) || o.pos != o.objPos {
		if _, err := o.obj.Seek(o.pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("read %s: %w", o.info.Key, err)
		}
		o.objPos = o.pos
	}
	n, err := o.obj.Read(p)
	o.pos += int64(n)
	o.objPos += int64(n)
	return n, err
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.pos + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", o.info.Key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek %s: negative position %d", o.info.Key, abs)
	}
	o.pos = abs
	return abs, nil
}

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", o.info.Key, off)
	}
	if off >= o.info.Size {
		return 0, io.EOF
	}
	short := false
	if rest := o.info.Size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	n, err := o.obj.ReadAt(p, off)
	o.readAt.Store(true)
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (o *s3Object) Close() error       { return o.obj.Close() }
func (o *s3Object) Size() int64        { return o.info.Size }
func (o *s3Object) ModTime() time.Time { return o.info.ModTime }
func (o *s3Object) ETag() string       { return o.info.ETag }
func (o *s3Object) Info() Info         { return o.info }
