// Package storage keeps exported GeoPackages and their parts: in an S3
// bucket (MinIO in production, through minio-go) with [S3], or in a local
// directory with [Local], the default of `exporter all` on one machine.
//
// Both types have the same methods with the same contracts, documented on
// each method of [S3] and [Local] and checked by one contract test suite run
// against both. Consumers declare the small interface of the methods they
// call (see STYLE.md section 1); this package exports no interface of its own
// besides [Object], the value Open returns.
//
// Keys are slash-separated relative paths such as
// "packages/<name>.gpkg": non-empty, at most 1024 bytes of UTF-8, without a
// leading or trailing slash, empty, "." or ".." segments, backslashes or
// control characters. Both stores reject other keys with [ErrInvalidKey], so
// that a key that works with one works with the other and can never escape
// Local's directory.
//
// Errors are classified before they are wrapped: a missing object (S3
// NoSuchKey) or bucket (NoSuchBucket, any 404) satisfies
// errors.Is(err, [ErrNotFound]) whatever the store.
//
// storage imports no other project package.
package storage
