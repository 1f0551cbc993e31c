package job

import (
	"encoding/json"
	"sync"
)

// memo remembers values decoded from JSON texts, keyed by the text, so
// that reading the same job again does not decode its spec again: a job's
// spec and task ids never change after it is created, and reads of a job
// (a cache-hit POST /create, GET /jobs/{id}, a worker's status checks)
// outnumber its changes. Keying by the text itself, not by the job id,
// means a value is never stale. Texts longer than memoMaxText bytes are
// decoded every time.
type memo[T any] struct {
	values bounded[T]
}

// memoMaxText is the longest text a memo keeps.
const memoMaxText = 8 << 10

// decode sets v to the value of text, decoding it only if it is not
// remembered. The value may share slices, maps and pointers with the
// values decode gave and gives for the same text: callers must not modify
// what they reach through it.
func (c *memo[T]) decode(text string, v *T) error {
	if got, ok := c.values.get(text); ok {
		*v = got
		return nil
	}
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return err
	}
	if len(text) <= memoMaxText {
		c.values.put(text, *v)
	}
	return nil
}

// bounded is a map safe for concurrent use that holds at most
// boundedEntries entries; when it is full, an arbitrary entry makes room.
type bounded[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// boundedEntries is the most entries a bounded map holds.
const boundedEntries = 1024

func (b *bounded[V]) get(k string) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

func (b *bounded[V]) put(k string, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]V, boundedEntries)
	}
	if _, ok := b.m[k]; !ok && len(b.m) >= boundedEntries {
		for old := range b.m {
			delete(b.m, old)
			break
		}
	}
	b.m[k] = v
}
