package cache

import (
	"container/list"
	"context"
	"iter"
	"sync"
)

// memoryStore is a Store in memory for the tests, bounded to a number of
// entries: saving one more evicts the least recently used. It is safe for
// concurrent use. It keeps a second copy of what a cache holds, which gives
// a policy dropped from the cache's memory a second chance.
type memoryStore struct {
	max int

	mu      sync.Mutex
	order   *list.List // of Entry, most recently used first
	entries map[string]*list.Element
}

// newMemoryStore returns a memoryStore holding at most limit entries; limit below
// 1 means 1.
func newMemoryStore(limit int) *memoryStore {
	return &memoryStore{max: max(limit, 1), order: list.New(), entries: map[string]*list.Element{}}
}

// Load implements Store.
func (s *memoryStore) Load(ctx context.Context, domain string) (Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[domain]
	if !ok {
		return Entry{}, false, nil
	}
	s.order.MoveToFront(el)
	return el.Value.(Entry), true, nil
}

// Save implements Store.
func (s *memoryStore) Save(ctx context.Context, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[e.Domain]; ok {
		el.Value = e
		s.order.MoveToFront(el)
		return nil
	}
	s.entries[e.Domain] = s.order.PushFront(e)
	for s.order.Len() > s.max {
		last := s.order.Back()
		s.order.Remove(last)
		delete(s.entries, last.Value.(Entry).Domain)
	}
	return nil
}

// Delete implements Store.
func (s *memoryStore) Delete(ctx context.Context, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[domain]; ok {
		s.order.Remove(el)
		delete(s.entries, domain)
	}
	return nil
}

// List implements Lister. It copies the entries under the lock first, so
// that the caller may call the store while it iterates.
func (s *memoryStore) List(ctx context.Context) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		s.mu.Lock()
		entries := make([]Entry, 0, s.order.Len())
		for el := s.order.Front(); el != nil; el = el.Next() {
			entries = append(entries, el.Value.(Entry))
		}
		s.mu.Unlock()
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				yield(Entry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Len returns the number of entries.
func (s *memoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
