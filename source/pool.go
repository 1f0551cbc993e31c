package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
)

// DefaultPoolIdle is how long a Pool keeps a source nobody uses when
// NewPool is given no other duration.
const DefaultPoolIdle = 2 * time.Minute

// ErrPoolClosed is returned by Acquire after Close.
var ErrPoolClosed = errors.New("source: pool closed")

// Pool keeps the sources of catalog layers open between uses, so that the
// render tasks of an export, and of the exports after it, share a layer's
// HTTP connections and concurrency limit, its WMS metatile cache and its
// downloaded GeoPackage, instead of each task opening (and for a
// GeoPackage in object storage, downloading) its own. A source is closed
// once nobody has used it for the pool's idle time, or at Close.
//
// A layer is identified by its whole record, not only its id and version,
// so a catalog edited in place gets a fresh source. Pool is safe for
// concurrent use.
type Pool struct {
	deps LayerDeps
	idle time.Duration

	mu      sync.Mutex // guards the fields below
	entries map[string]*poolEntry
	closed  bool
	errs    []error // of sources closed for being idle, for Close
}

type poolEntry struct {
	key   string
	src   Source
	refs  int
	timer *time.Timer // closes the source when it has been idle long enough
	gone  bool        // removed from the map: close when the last user is done
}

// NewPool returns a pool that opens sources with ForLayer(layer, deps) and
// closes them after idle without use (0: DefaultPoolIdle).
func NewPool(deps LayerDeps, idle time.Duration) *Pool {
	if idle <= 0 {
		idle = DefaultPoolIdle
	}
	return &Pool{deps: deps, idle: idle, entries: map[string]*poolEntry{}}
}

// Acquire returns the layer's source, opening it if no open one is kept,
// and a release function the caller must call once when done with it. A
// layer whose source fails to open is tried again on the next call.
func (p *Pool) Acquire(l catalog.Layer) (Source, func(), error) {
	key, err := layerKey(l)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrPoolClosed
	}
	e, ok := p.entries[key]
	if !ok {
		// Opening holds the lock: it reads configuration and, for a
		// GeoPackage in object storage, downloads lazily on first use, so
		// it does not block other layers for long.
		src, err := ForLayer(l, p.deps)
		if err != nil {
			return nil, nil, err
		}
		e = &poolEntry{key: key, src: src}
		p.entries[key] = e
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.refs++
	var once sync.Once
	return e.src, func() { once.Do(func() { p.release(e) }) }, nil
}

// release ends one use of e, and arms its idle timer when it was the last.
func (p *Pool) release(e *poolEntry) {
	p.mu.Lock()
	e.refs--
	closeNow := e.refs == 0 && e.gone
	if e.refs == 0 && !e.gone {
		e.timer = time.AfterFunc(p.idle, func() { p.expire(e) })
	}
	p.mu.Unlock()
	if closeNow {
		p.closeKeepingError(e.src)
	}
}

// closeKeepingError closes src and keeps its error for Close.
func (p *Pool) closeKeepingError(src Source) {
	if err := closeSource(src); err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
}

// expire closes e if it is still unused.
func (p *Pool) expire(e *poolEntry) {
	p.mu.Lock()
	if e.refs > 0 || e.gone {
		p.mu.Unlock()
		return
	}
	e.gone = true
	delete(p.entries, e.key)
	p.mu.Unlock()
	p.closeKeepingError(e.src)
}

// Len returns how many sources the pool keeps open.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Close closes every unused source at once and every source in use when
// its last user releases it; Acquire fails from then on. It returns the
// errors of the sources it closed and of those closed earlier for being
// idle.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	var idle []Source
	for key, e := range p.entries {
		e.gone = true
		if e.timer != nil {
			e.timer.Stop()
		}
		if e.refs == 0 {
			idle = append(idle, e.src)
		}
		delete(p.entries, key)
	}
	p.mu.Unlock()
	p.mu.Lock()
	errs := p.errs
	p.errs = nil
	p.mu.Unlock()
	for _, src := range idle {
		errs = append(errs, closeSource(src))
	}
	return errors.Join(errs...)
}

func closeSource(src Source) error {
	if c, ok := src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// layerKey identifies a layer record: a digest of all of it.
func layerKey(l catalog.Layer) (string, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("source: pool key of layer %s: %w", l.ID, err)
	}
	sum := sha256.Sum256(b)
	return l.ID + "@" + hex.EncodeToString(sum[:8]), nil
}
