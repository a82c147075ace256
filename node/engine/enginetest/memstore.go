// Package enginetest provides an engine.Store in memory, for tests and
// simulations.
package enginetest

import (
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
)

// MemStore is an engine.Store in memory. Checkpoints are kept in their
// chunked form, as a peer would serve them. Blobs are kept in
// generations: Sweep starts a new one and forgets the oldest, so a long
// run holds only recent updates.
type MemStore struct {
	mu     sync.RWMutex
	blobs  map[cid.Cid][]byte
	gen    map[cid.Cid]int // blob → generation it was last put in
	cur    int
	ckpts  map[cid.Cid]*checkpoint.Chunked
	decode map[cid.Cid]*checkpoint.Checkpoint
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{blobs: map[cid.Cid][]byte{}, gen: map[cid.Cid]int{}, ckpts: map[cid.Cid]*checkpoint.Chunked{}, decode: map[cid.Cid]*checkpoint.Checkpoint{}}
}

// Sweep starts a new generation of blobs and forgets the blobs last put
// more than keep generations ago, and every checkpoint but those in
// pinned.
func (s *MemStore) Sweep(keep int, pinned ...cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur++
	for id, g := range s.gen {
		if g < s.cur-keep {
			delete(s.blobs, id)
			delete(s.gen, id)
		}
	}
	for id := range s.ckpts {
		keepIt := false
		for _, p := range pinned {
			if p.Equals(id) {
				keepIt = true
			}
		}
		if !keepIt {
			delete(s.ckpts, id)
			delete(s.decode, id)
		}
	}
}

// Len returns how many blobs and checkpoints the store holds.
func (s *MemStore) Len() (blobs, checkpoints int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.blobs), len(s.ckpts)
}

// PutBlob keeps data and returns its CID.
func (s *MemStore) PutBlob(data []byte) (cid.Cid, error) {
	id := content.ID(data)
	s.mu.Lock()
	if _, ok := s.blobs[id]; !ok {
		s.blobs[id] = append([]byte(nil), data...)
	}
	s.gen[id] = s.cur
	s.mu.Unlock()
	return id, nil
}

// Blob returns a blob; the caller must not modify it.
func (s *MemStore) Blob(id cid.Cid) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.blobs[id]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", id, node.ErrNotFound)
	}
	return b, nil
}

// HasBlob reports whether the store holds a blob.
func (s *MemStore) HasBlob(id cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.blobs[id]
	return ok
}

// PutCheckpoint keeps a checkpoint (its encoding: the store shares no
// memory with c) and returns its ID.
func (s *MemStore) PutCheckpoint(c *checkpoint.Checkpoint) (cid.Cid, error) {
	ch, err := checkpoint.Build(c)
	if err != nil {
		return cid.Undef, err
	}
	s.mu.Lock()
	s.ckpts[ch.ID] = ch
	s.mu.Unlock()
	return ch.ID, nil
}

// PutChunked keeps a checkpoint in chunked form, as fetched from a peer,
// after checking that it hashes to id.
func (s *MemStore) PutChunked(id cid.Cid, ch *checkpoint.Chunked) error {
	if !ch.ID.Equals(id) {
		return fmt.Errorf("checkpoint %s: got %s", id, ch.ID)
	}
	again, err := checkpoint.Split(ch.Data, ch.Manifest.ChunkSize)
	if err != nil {
		return err
	}
	if !again.ID.Equals(id) {
		return fmt.Errorf("checkpoint %s: the data hashes to %s", id, again.ID)
	}
	s.mu.Lock()
	s.ckpts[id] = again
	s.mu.Unlock()
	return nil
}

// Chunked returns a checkpoint in chunked form.
func (s *MemStore) Chunked(id cid.Cid) (*checkpoint.Chunked, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch, ok := s.ckpts[id]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
	}
	return ch, nil
}

// Checkpoint returns a checkpoint, decoded; the caller must not modify it.
func (s *MemStore) Checkpoint(id cid.Cid) (*checkpoint.Checkpoint, error) {
	s.mu.RLock()
	c, ok := s.decode[id]
	ch := s.ckpts[id]
	s.mu.RUnlock()
	if ok {
		return c, nil
	}
	if ch == nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
	}
	c, err := checkpoint.Decode(ch.Data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	s.mu.Lock()
	s.decode[id] = c
	s.mu.Unlock()
	return c, nil
}

// HasCheckpoint reports whether the store holds a checkpoint.
func (s *MemStore) HasCheckpoint(id cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.ckpts[id]
	return ok
}

// Drop forgets a checkpoint (to bound memory in long runs).
func (s *MemStore) Drop(id cid.Cid) {
	s.mu.Lock()
	delete(s.ckpts, id)
	delete(s.decode, id)
	s.mu.Unlock()
}
