package storage

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// localCreateAttempts bounds Put's retries when a concurrent Delete prunes
// the directory it has just created.
const localCreateAttempts = 5

// Local stores objects as files under one directory, a key's slashes being
// directory separators. All access goes through an os.Root, so neither a key
// nor a symbolic link planted in the directory can reach outside it.
//
// Because keys are paths, a key cannot also be a directory of other keys:
// after Put "a/b", Put "a" fails (S3 allows both). Local does not keep the
// content type given to Put: Stat and Open report the type of the key's
// extension (".gpkg" is application/geopackage+sqlite3).
//
// A Local is safe for concurrent use, also by several processes sharing the
// directory.
type Local struct {
	dir string
}

// NewLocal returns a store in dir, creating the directory if needed.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("new local store: directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("new local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("new local store: %w", err)
	}
	return &Local{dir: abs}, nil
}

// Dir returns the absolute path of the store's directory.
func (l *Local) Dir() string { return l.dir }

// Close does nothing; it exists so that Local and S3 have the same methods.
func (l *Local) Close() error { return nil }

// Put stores size bytes from r under key, replacing any object there, and
// creating the directories of the key. size -1 means: read r to its end. r is
// not closed.
//
// It is atomic: the bytes go to a temporary file in the key's directory,
// which is synced and then renamed over the key, so readers see the old
// object or the new one, never a part; if r fails or yields fewer than size
// bytes, Put returns an error and the old object (or none) stays. Bytes past
// size are not read. contentType is accepted for symmetry with S3 and not
// stored. Put is idempotent.
//
// Errors: ErrInvalidKey; a read error from r; io.ErrUnexpectedEOF for a short
// r; ctx.Err(); file system errors.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	root, err := l.openRoot(ctx, "put", key)
	if err != nil {
		return err
	}
	defer root.Close()

	tmp, err := writeTemp(ctx, root, key, r, size)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := root.Rename(tmp, key); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	// Make the rename itself durable.
	if err := syncDir(root, path.Dir(key)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// writeTemp writes r to a new, synced temporary file in key's directory and
// returns its name. On error, no file is left behind.
func writeTemp(ctx context.Context, root *os.Root, key string, r io.Reader, size int64) (name string, err error) {
	dir := path.Dir(key)
	var f *os.File
	for attempt := 1; ; attempt++ {
		if dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
		}
		name = path.Join(dir, tempPrefix+rand.Text())
		f, err = root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		// A concurrent Delete may have pruned the new, empty directory.
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == localCreateAttempts {
			break
		}
	}
	if err != nil {
		return "", err
	}
	tmp := name // the return statements below clear name
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = root.Remove(tmp)
		}
	}()

	src := ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		n, err := io.CopyN(f, src, size)
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return "", err
		}
	} else if _, err := io.Copy(f, src); err != nil {
		return "", err
	}
	// Full-precision modification time, so that the ETag changes even when
	// two rewrites of the same size land in one file system clock tick.
	now := time.Now()
	if err := root.Chtimes(name, now, now); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// PutFile stores the regular file at path under key, as Put does (atomic,
// idempotent). A missing file is an error that is not ErrNotFound.
//
// When path is on the store's file system, the object becomes a hard link
// to the file instead of a copy (synced and renamed into place like Put's
// temporary file), which saves writing a large package a second time: the
// caller must not change the file afterwards; removing it is fine. Where
// linking is not possible (another file system, no hard links), the bytes
// are copied.
func (l *Local) PutFile(ctx context.Context, key, path, contentType string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("put file: %w", err)
	}
	size, f, err := openSource(path)
	if err != nil {
		return fmt.Errorf("put file %s: %w", key, err)
	}
	defer f.Close()
	linked, err := l.link(ctx, key, path, f)
	if err != nil {
		return fmt.Errorf("put file %s: %w", key, err)
	}
	if linked {
		return nil
	}
	return l.Put(ctx, key, f, size, contentType)
}

// link makes key a hard link to the file at src (open as f): a temporary
// link at the top of the store, synced, stamped and renamed over key
// through the root, which refuses a key whose directories lead out of the
// store. It reports false, and leaves nothing behind, when the file
// system cannot link src there.
func (l *Local) link(ctx context.Context, key, src string, f *os.File) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	dir := path.Dir(key)
	if dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return false, err
		}
	}
	// os.Root cannot link a file from outside it: link beside the root's
	// top, where no directory of the key's can lead elsewhere.
	tmp := tempPrefix + rand.Text()
	if err := os.Link(src, filepath.Join(l.dir, tmp)); err != nil {
		return false, nil //nolint:nilerr // EXDEV, EPERM, …: copy instead
	}
	done := false
	defer func() {
		if !done {
			_ = root.Remove(tmp)
		}
	}()
	now := time.Now()
	if err := root.Chtimes(tmp, now, now); err != nil {
		return false, err
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	if err := root.Rename(tmp, key); err != nil {
		return false, err
	}
	done = true
	return true, errors.Join(syncDir(root, dir), syncDir(root, "."))
}

// openRoot checks key and ctx and opens the store's directory as a root,
// which the caller closes. Its errors name op, and key once it is valid.
func (l *Local) openRoot(ctx context.Context, op, key string) (*os.Root, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	return root, nil
}

// Path returns the name of the local file that holds key, for a caller
// that reads it in place (SQLite attaching a part, say) instead of copying
// it with GetFile. The file must not be changed; an overwrite or Delete
// replaces or unlinks it and does not affect a reader that has it open.
//
// Errors: ErrInvalidKey; ErrNotFound; file system errors.
func (l *Local) Path(key string) (string, error) {
	root, err := l.openRoot(context.Background(), "path", key)
	if err != nil {
		return "", err
	}
	defer root.Close()
	// Lstat through the root refuses names that leave it; a regular file
	// there is one the store wrote.
	fi, err := root.Lstat(key)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", key, classifyLocal(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("path %s: %w", key, ErrNotFound)
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// openSource opens a regular local file for upload.
func openSource(name string) (int64, *os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, nil, fmt.Errorf("source: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, nil, fmt.Errorf("source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return 0, nil, fmt.Errorf("source %s is not a regular file", name)
	}
	return fi.Size(), f, nil
}

// Open opens the object under key for reading; see [Object]. The caller
// closes it. An overwrite or Delete after Open does not affect the open
// Object.
//
// Errors: ErrInvalidKey; ErrNotFound when there is no object (a directory of
// other keys is not an object); ctx.Err(); file system errors.
func (l *Local) Open(ctx context.Context, key string) (Object, error) {
	root, err := l.openRoot(ctx, "open", key)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, classifyLocal(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return &localObject{f: f, info: localInfo(key, fi)}, nil
}

// Stat describes the object under key.
//
// Errors: ErrInvalidKey; ErrNotFound; ctx.Err(); file system errors.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	root, err := l.openRoot(ctx, "stat", key)
	if err != nil {
		return Info{}, err
	}
	defer root.Close()
	fi, err := root.Stat(key)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", key, classifyLocal(err))
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return localInfo(key, fi), nil
}

// GetFile copies the object under key to the local file path, creating
// missing parent directories and replacing an existing file. The file appears
// whole or not at all: the copy goes to a temporary file beside it that is
// renamed into place. It is not synced to disk. It is idempotent;
// concurrent calls must use different paths.
//
// Errors: ErrInvalidKey; ErrNotFound (path is not touched); ctx.Err(); file
// system errors.
func (l *Local) GetFile(ctx context.Context, key, path string) error {
	obj, err := l.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer obj.Close()
	if err := writeFileAtomic(ctx, path, obj); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return nil
}

// writeFileAtomic writes r to name through a temporary file in its
// directory.
func writeFileAtomic(ctx context.Context, name string, r io.Reader) (err error) {
	dir, base := filepath.Split(name)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx: ctx, r: r}); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// Delete removes the object under key and then any directories it leaves
// empty. It is idempotent: a missing key, or one that names a directory of
// other keys, is not an error and changes nothing.
//
// Errors: ErrInvalidKey; ctx.Err(); file system errors.
func (l *Local) Delete(ctx context.Context, key string) error {
	root, err := l.openRoot(ctx, "delete", key)
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Lstat(key)
	if err != nil {
		if errors.Is(classifyLocal(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Prune emptied directories, best effort: removal stops at the first
	// one that still holds something. Put copes with a directory pruned
	// under it.
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List yields the objects whose keys start with prefix ("" for all), in
// lexical key order, without ContentType. prefix is a plain string prefix:
// "parts/j1" matches "parts/j10/x". The listing is a snapshot taken when
// iteration starts; it is collected in memory before the first item is
// yielded. Objects deleted during the walk are left out.
//
// Errors, yielded once and ending the sequence: ErrInvalidKey for a bad
// prefix; ctx.Err(); file system errors.
func (l *Local) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		infos, err := l.list(ctx, prefix)
		if err != nil {
			yield(Info{}, fmt.Errorf("list %q: %w", prefix, err))
			return
		}
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

func (l *Local) list(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	// Walk only the deepest directory that the prefix names in full.
	base := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	var infos []Info
	err = fs.WalkDir(root.FS(), base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == base && errors.Is(classifyLocal(err), ErrNotFound) {
				return fs.SkipAll // nothing under the prefix
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted during the walk
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != base && !strings.HasPrefix(p+"/", prefix) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info := localInfo(p, fi)
		info.ContentType = ""
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// WalkDir's order differs from key order: "a/b" comes before "a-c".
	slices.SortFunc(infos, func(a, b Info) int { return cmp.Compare(a.Key, b.Key) })
	return infos, nil
}

// Ping checks that the directory exists and is writable, by creating and
// removing a temporary file.
func (l *Local) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping %s: %w", l.dir, err)
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer root.Close()
	name := tempPrefix + "ping-" + rand.Text()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("ping %s: %w", l.dir, err)
	}
	return errors.Join(f.Close(), root.Remove(name))
}

// classifyLocal maps "no such object" file errors to ErrNotFound: a missing
// file, or a path through a file ("a/b" when "a" is a file).
func classifyLocal(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotFound
	}
	return err
}

func localInfo(key string, fi fs.FileInfo) Info {
	return Info{
		Key:         key,
		Size:        fi.Size(),
		ModTime:     fi.ModTime(),
		ETag:        fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano()),
		ContentType: contentTypeFor(key),
	}
}

// localObject is an open file and what Open learned about it.
type localObject struct {
	f    *os.File
	info Info
}

func (o *localObject) Read(p []byte) (int, error)              { return o.f.Read(p) }
func (o *localObject) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *localObject) Seek(off int64, whence int) (int64, error) {
	return o.f.Seek(off, whence)
}
func (o *localObject) Close() error       { return o.f.Close() }
func (o *localObject) Size() int64        { return o.info.Size }
func (o *localObject) ModTime() time.Time { return o.info.ModTime }
func (o *localObject) ETag() string       { return o.info.ETag }
func (o *localObject) Info() Info         { return o.info }

// Capacity returns the bytes an unprivileged writer may still use and the
// size of the file system holding the directory (statfs).
//
// Errors: ctx.Err(); file system errors.
func (l *Local) Capacity(ctx context.Context) (free, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("capacity: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(l.dir, &st); err != nil {
		return 0, 0, fmt.Errorf("capacity of %s: %w", l.dir, err)
	}
	bs := int64(st.Bsize) //nolint:unconvert // uint32 on some systems
	return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
}
