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
// means a value is never stale. It holds at most memoEntries texts of at
// most memoMaxText bytes; when it is full, an arbitrary entry makes room.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

const (
	memoEntries = 1024
	memoMaxText = 8 << 10
)

// decode sets v to the value of text, decoding it only if it is not
// remembered. The value may share slices, maps and pointers with the
// values decode gave and gives for the same text: callers must not modify
// what they reach through it.
func (c *memo[T]) decode(text string, v *T) error {
	c.mu.Lock()
	got, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		*v = got
		return nil
	}
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return err
	}
	if len(text) > memoMaxText {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]T, memoEntries)
	}
	if len(c.m) >= memoEntries {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[text] = *v
	return nil
}
