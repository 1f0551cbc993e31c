package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tileDirs keeps the column directories ({z}/{x}) of a tile store over Dir
// open, so that reading a tile is one openat(2) beneath its column's
// directory and one read, with no os.File around it.
//
// os.Root, which the store reads through otherwise, opens and closes every
// directory on the way to each file (it must, to refuse links that leave
// the root), and os.File makes every file it opens non-blocking and offers
// it to the poller: about a dozen system calls for a stored tile of a few KB,
// where this path makes four (openat, fstat, read, close). On a 1M-tile
// export reading the tiles was a third of a worker's CPU
// (docs/performance.md, "A million tiles"). No library offers a cached
// directory walk with os.Root's guarantee, hence this.
//
// The guarantee is kept: a column directory is opened through the root
// (os.Root.Open), and the tile beneath it with O_NOFOLLOW, so a tile that
// is a symbolic link, or a column the root refuses, goes the slow way
// through os.Root, which follows links inside the root and refuses the
// others as before. Directories are opened again after dirTTL, so a store
// whose directories are replaced (an rsync with --delay-updates, a
// rename) is read from the new ones within that time.
type tileDirs struct {
	root *os.Root

	mu   sync.Mutex
	dirs map[string]*tileDir
}

// tileDir is one open column directory.
type tileDir struct {
	f      *os.File
	conn   syscall.RawConn
	opened time.Time
}

const (
	// dirTTL is how long a column directory stays open.
	dirTTL = time.Second
	// maxTileDirs bounds the open directories of one store. A render task
	// reads a few columns at a time, so a handful are in use at once.
	maxTileDirs = 64
)

func newTileDirs(root *os.Root) *tileDirs {
	return &tileDirs{root: root, dirs: make(map[string]*tileDir)}
}

// errSlowPath says that the fast path cannot answer for a file: it is a
// link, or its directory cannot be opened here. os.Root decides.
var errSlowPath = errors.New("read through os.Root")

// read reads the file name (slash-separated, relative to the root) if it
// is a regular file in a directory that opens without leaving the root. It
// returns an error wrapping fs.ErrNotExist when no entry has that name,
// errSlowPath when os.Root must decide, errNotRegular when it is not a
// regular file, and the file's size (unread) with errTileTooLarge when it
// is larger than max bytes.
func (d *tileDirs) read(name string, max int64) ([]byte, int64, error) {
	dir, base := path.Split(name)
	if dir == "" || base == "" || base == "." || base == ".." {
		return nil, 0, errSlowPath
	}
	td, err := d.dir(dir[:len(dir)-1])
	if err != nil {
		return nil, 0, errSlowPath
	}
	var (
		data []byte
		size int64
		rerr error
	)
	cerr := td.conn.Control(func(dirfd uintptr) {
		data, size, rerr = readAt(int(dirfd), base, max)
	})
	if cerr != nil { // closed by another reader's eviction
		return nil, 0, errSlowPath
	}
	return data, size, rerr
}

var (
	errNotRegular   = errors.New("not a regular file")
	errTileTooLarge = errors.New("over the size limit")
)

// readAt reads the regular file base in the directory dirfd, all of it as
// fstat(2) saw it.
func readAt(dirfd int, base string, max int64) ([]byte, int64, error) {
	var fd int
	var err error
	for {
		// O_NONBLOCK: a FIFO named like a tile must not block the open.
		fd, err = unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == unix.ENOENT:
		return nil, 0, fs.ErrNotExist
	case err != nil: // ELOOP (a link) and everything else
		return nil, 0, errSlowPath
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, errNotRegular
	}
	if st.Size > max {
		return nil, st.Size, errTileTooLarge
	}
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if m == 0 { // the file shrank since fstat
			break
		}
		n += m
	}
	return buf[:n], int64(n), nil
}

// dir returns the open directory name, opening it (again) if it is not
// open or was opened more than dirTTL ago.
func (d *tileDirs) dir(name string) (*tileDir, error) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if td, ok := d.dirs[name]; ok {
		if now.Sub(td.opened) < dirTTL {
			return td, nil
		}
		delete(d.dirs, name)
		td.f.Close()
	}
	if len(d.dirs) >= maxTileDirs {
		d.evict(now)
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	// os.File's own reference count keeps the descriptor open until every
	// Control running on it has returned, so closing it here while another
	// goroutine reads beneath it is safe. A name that is not a directory
	// needs no check here: openat beneath it fails (ENOTDIR), and os.Root
	// answers.
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	td := &tileDir{f: f, conn: conn, opened: now}
	d.dirs[name] = td
	return td, nil
}

// evict closes the directories opened more than dirTTL ago, or, if none
// were, the oldest one. The caller holds d.mu.
func (d *tileDirs) evict(now time.Time) {
	var oldest string
	for name, td := range d.dirs {
		if now.Sub(td.opened) >= dirTTL {
			delete(d.dirs, name)
			td.f.Close()
			continue
		}
		if oldest == "" || td.opened.Before(d.dirs[oldest].opened) {
			oldest = name
		}
	}
	if len(d.dirs) >= maxTileDirs && oldest != "" {
		d.dirs[oldest].f.Close()
		delete(d.dirs, oldest)
	}
}

// close closes every open directory.
func (d *tileDirs) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, td := range d.dirs {
		td.f.Close()
		delete(d.dirs, name)
	}
}
