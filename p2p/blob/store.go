package blob

import (
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// ErrNotFound is returned by a Store's Get for a CID it does not hold:
// content.ErrNotFound.
var ErrNotFound = content.ErrNotFound

// Store holds content-addressed objects: manifests and chunks. The
// Exchange serves from it and writes to it only bytes it has verified
// against their CID. It is content.Store.
type Store = content.Store

// MemStore is an in-memory Store. It re-verifies every Put, so a bug that
// tried to store unverified bytes would surface as an error.
type MemStore struct {
	mu    sync.RWMutex
	objs  map[string][]byte
	bytes int64
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{objs: make(map[string][]byte)}
}

// Has implements Store.
func (s *MemStore) Has(c cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.objs[c.KeyString()]
	return ok
}

// Get implements Store.
func (s *MemStore) Get(c cid.Cid) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.objs[c.KeyString()]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", c, ErrNotFound)
	}
	return b, nil
}

// PutVerified implements Store; it checks data all the same, and refuses
// it if it does not hash to c.
func (s *MemStore) PutVerified(c cid.Cid, data []byte) error { return s.Put(c, data) }

// Put stores data if it hashes to c.
func (s *MemStore) Put(c cid.Cid, data []byte) error {
	if err := content.Verify(c, data); err != nil {
		return fmt.Errorf("put %s: %w", c, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := c.KeyString()
	if _, ok := s.objs[k]; ok {
		return nil
	}
	s.objs[k] = data
	s.bytes += int64(len(data))
	return nil
}

// PutManifest implements Store.
func (s *MemStore) PutManifest(m *content.Manifest) (cid.Cid, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return cid.Undef, err
	}
	id := content.Sum(b)
	return id, s.Put(id, b)
}

// Len returns the number of objects held.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.objs)
}

// Bytes returns the total size of the objects held.
func (s *MemStore) Bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes
}
