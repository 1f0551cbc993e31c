package source

import (
	"container/list"
	"context"
	"errors"
	"image"
	"sync"
	"time"

	"github.com/geoexport/exporter/internal/grid"
)

// metaKey names a metatile: the block of tiles it covers.
type metaKey = grid.TileRange

// metaResult is a fetched metatile: its image, or ErrNoData for the whole
// block (which is cached too).
type metaResult struct {
	// img is the decoded metatile, or nil when jpegs holds its tiles.
	img image.Image
	// jpegs are the metatile's tiles cut losslessly from a JPEG answer,
	// row-major.
	jpegs [][]byte
	err   error
}

// metaCache shares metatile fetches among the tiles they hold. Callers
// asking for a metatile that is being fetched wait for that fetch instead
// of starting their own (as singleflight does); finished metatiles stay in
// a small LRU for ttl, so that tiles asked for a little later are cut from
// the same image.
//
// A fetch runs in its own goroutine under a context that keeps the first
// caller's values but not its cancellation: it is cancelled only when
// every caller waiting for it has gone, so one caller's cancellation does
// not fail the others.
type metaCache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	flights map[metaKey]*flight
	entries map[metaKey]*list.Element // of *metaEntry
	lru     list.List                 // most recently used first
}

type flight struct {
	done    chan struct{} // closed when res is set
	res     metaResult
	waiters int
	cancel  context.CancelFunc
}

type metaEntry struct {
	key     metaKey
	res     metaResult
	expires time.Time
}

func newMetaCache(size int, ttl time.Duration, now func() time.Time) *metaCache {
	return &metaCache{
		size:    size,
		ttl:     ttl,
		now:     now,
		flights: make(map[metaKey]*flight),
		entries: make(map[metaKey]*list.Element),
	}
}

// get returns the metatile at k, from the cache, from a fetch in flight,
// or by calling fetch. Only results that are an image or ErrNoData are
// cached; other errors go to the callers waiting at the time. get returns
// ctx.Err() as soon as ctx ends.
func (c *metaCache) get(ctx context.Context, k metaKey, fetch func(context.Context) metaResult) metaResult {
	if err := ctx.Err(); err != nil {
		return metaResult{err: err}
	}
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*metaEntry)
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.res
		}
		c.remove(el)
	}
	f, ok := c.flights[k]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[k] = f
		go c.run(fctx, k, f, fetch)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.res
	case <-ctx.Done():
		c.mu.Lock()
		f.waiters--
		if f.waiters == 0 && c.flights[k] == f {
			// Nobody wants it any more: stop the request.
			delete(c.flights, k)
			f.cancel()
		}
		c.mu.Unlock()
		return metaResult{err: ctx.Err()}
	}
}

func (c *metaCache) run(ctx context.Context, k metaKey, f *flight, fetch func(context.Context) metaResult) {
	res := fetch(ctx)
	c.mu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
		if res.err == nil || errors.Is(res.err, ErrNoData) {
			c.add(k, res)
		}
	}
	f.res = res
	c.mu.Unlock()
	close(f.done)
	f.cancel()
}

// add stores res under k, evicting the least recently used entries (and
// expired ones) beyond the size. The caller holds mu.
func (c *metaCache) add(k metaKey, res metaResult) {
	if c.size <= 0 {
		return
	}
	now := c.now()
	if el, ok := c.entries[k]; ok {
		c.remove(el)
	}
	c.entries[k] = c.lru.PushFront(&metaEntry{key: k, res: res, expires: now.Add(c.ttl)})
	for el := c.lru.Back(); el != nil && (c.lru.Len() > c.size || !now.Before(el.Value.(*metaEntry).expires)); el = c.lru.Back() {
		c.remove(el)
	}
}

func (c *metaCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*metaEntry).key)
	c.lru.Remove(el)
}

// len returns the number of cached metatiles, of fetches in flight and of
// callers waiting for them.
func (c *metaCache) len() (cached, inFlight, waiters int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.flights {
		waiters += f.waiters
	}
	return c.lru.Len(), len(c.flights), waiters
}
