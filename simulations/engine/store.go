package engine

import (
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	nodeengine "github.com/shoal-network/shoal/node/engine"
)

// Pool holds the content of a simulated network once: every blob and
// checkpoint under its CID, however many peers hold it, with a count of
// the stores that hold it. Content enters the pool verified (its CID is
// computed from its bytes), so a copy from one simulated peer to another
// need not hash the bytes again. A Pool is safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	blobs map[cid.Cid]*pooledBlob
	ckpts map[cid.Cid]*pooledCheckpoint
}

type pooledBlob struct {
	data []byte
	refs int
}

type pooledCheckpoint struct {
	ch   *checkpoint.Chunked
	dec  *checkpoint.Checkpoint // decoded on first use, shared read only
	refs int
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{blobs: map[cid.Cid]*pooledBlob{}, ckpts: map[cid.Cid]*pooledCheckpoint{}}
}

// Len returns how many blobs and checkpoints the pool holds.
func (p *Pool) Len() (blobs, checkpoints int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.blobs), len(p.ckpts)
}

func (p *Pool) refBlob(id cid.Cid, data []byte) {
	b := p.blobs[id]
	if b == nil {
		b = &pooledBlob{data: append([]byte(nil), data...)}
		p.blobs[id] = b
	}
	b.refs++
}

func (p *Pool) unrefBlob(id cid.Cid) {
	if b := p.blobs[id]; b != nil {
		if b.refs--; b.refs <= 0 {
			delete(p.blobs, id)
		}
	}
}

func (p *Pool) refCheckpoint(ch *checkpoint.Chunked) {
	c := p.ckpts[ch.ID]
	if c == nil {
		c = &pooledCheckpoint{ch: ch}
		p.ckpts[ch.ID] = c
	}
	c.refs++
}

func (p *Pool) unrefCheckpoint(id cid.Cid) {
	if c := p.ckpts[id]; c != nil {
		if c.refs--; c.refs <= 0 {
			delete(p.ckpts, id)
		}
	}
}

// Store is one simulated peer's nodeengine.Store: the set of CIDs it holds,
// the bytes being in the Pool. Blobs age in generations like
// enginetest.MemStore's; Present, if set, adds content the peer holds without
// having been handed it (a step's updates delivered in bulk).
type Store struct {
	pool    *Pool
	mu      sync.Mutex
	blobs   map[cid.Cid]int // blob → generation it was last put in
	cur     int
	ckpts   map[cid.Cid]bool
	present func(cid.Cid) bool
}

var _ nodeengine.Store = (*Store)(nil)

// NewStore returns an empty store on a pool.
func NewStore(p *Pool) *Store {
	return &Store{pool: p, blobs: map[cid.Cid]int{}, ckpts: map[cid.Cid]bool{}}
}

// Pool returns the pool the store keeps its bytes in.
func (s *Store) Pool() *Pool { return s.pool }

func (s *Store) isPresent(id cid.Cid) bool { return s.present != nil && s.present(id) }

// PutBlob keeps data and returns its CID.
func (s *Store) PutBlob(data []byte) (cid.Cid, error) {
	id := content.Sum(data)
	return id, s.putVerified(id, data)
}

// putVerified keeps data known to hash to id.
func (s *Store) putVerified(id cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[id]; !ok {
		s.pool.mu.Lock()
		s.pool.refBlob(id, data)
		s.pool.mu.Unlock()
	}
	s.blobs[id] = s.cur
	return nil
}

// putPooled adds a blob the pool holds (copied from another peer).
func (s *Store) putPooled(id cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[id]; !ok {
		s.pool.mu.Lock()
		b := s.pool.blobs[id]
		if b == nil {
			s.pool.mu.Unlock()
			return fmt.Errorf("blob %s: %w", id, node.ErrNotFound)
		}
		b.refs++
		s.pool.mu.Unlock()
	}
	s.blobs[id] = s.cur
	return nil
}

// Blob returns a blob; the caller must not modify it.
func (s *Store) Blob(id cid.Cid) ([]byte, error) {
	s.mu.Lock()
	_, own := s.blobs[id]
	s.mu.Unlock()
	if own || s.isPresent(id) {
		s.pool.mu.Lock()
		b := s.pool.blobs[id]
		s.pool.mu.Unlock()
		if b != nil {
			return b.data, nil
		}
	}
	return nil, fmt.Errorf("blob %s: %w", id, node.ErrNotFound)
}

// HasBlob reports whether the store holds a blob.
func (s *Store) HasBlob(id cid.Cid) bool {
	s.mu.Lock()
	_, own := s.blobs[id]
	s.mu.Unlock()
	return own || s.isPresent(id)
}

// PutCheckpoint keeps a checkpoint and returns its ID.
func (s *Store) PutCheckpoint(c *checkpoint.Checkpoint) (cid.Cid, error) {
	ch, err := checkpoint.Build(c)
	if err != nil {
		return cid.Undef, err
	}
	s.PutBuilt(ch)
	return ch.ID, nil
}

// PutBuilt keeps a checkpoint this process built with checkpoint.Build
// (its ID is computed from its bytes, so it is not checked again).
func (s *Store) PutBuilt(ch *checkpoint.Chunked) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ckpts[ch.ID] {
		return
	}
	s.pool.mu.Lock()
	s.pool.refCheckpoint(ch)
	s.pool.mu.Unlock()
	s.ckpts[ch.ID] = true
}

// PutChunked keeps a checkpoint in chunked form, as fetched from a peer,
// after checking that it hashes to id. Content the pool holds already
// entered it verified and is not hashed again.
func (s *Store) PutChunked(id cid.Cid, ch *checkpoint.Chunked) error {
	if !ch.ID.Equals(id) {
		return fmt.Errorf("checkpoint %s: got %s", id, ch.ID)
	}
	s.pool.mu.Lock()
	pooled := s.pool.ckpts[id]
	s.pool.mu.Unlock()
	if pooled == nil || pooled.ch != ch {
		again, err := checkpoint.Split(ch.Data, ch.Manifest.ChunkSize)
		if err != nil {
			return err
		}
		if !again.ID.Equals(id) {
			return fmt.Errorf("checkpoint %s: the data hashes to %s", id, again.ID)
		}
		ch = again
	}
	s.PutBuilt(ch)
	return nil
}

// Chunked returns a checkpoint in chunked form.
func (s *Store) Chunked(id cid.Cid) (*checkpoint.Chunked, error) {
	s.mu.Lock()
	own := s.ckpts[id]
	s.mu.Unlock()
	if own {
		s.pool.mu.Lock()
		c := s.pool.ckpts[id]
		s.pool.mu.Unlock()
		if c != nil {
			return c.ch, nil
		}
	}
	return nil, fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
}

// Checkpoint returns a checkpoint, decoded (once for the whole pool); the
// caller must not modify it.
func (s *Store) Checkpoint(id cid.Cid) (*checkpoint.Checkpoint, error) {
	s.mu.Lock()
	own := s.ckpts[id]
	s.mu.Unlock()
	if !own {
		return nil, fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
	}
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	c := s.pool.ckpts[id]
	if c == nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
	}
	if c.dec == nil {
		d, err := checkpoint.Decode(c.ch.Data)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", id, err)
		}
		c.dec = d
	}
	return c.dec, nil
}

// HasCheckpoint reports whether the store holds a checkpoint.
func (s *Store) HasCheckpoint(id cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ckpts[id]
}

// Sweep starts a new generation of blobs and forgets the blobs last put
// more than keep generations ago, and every checkpoint but those in
// pinned.
func (s *Store) Sweep(keep int, pinned ...cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	s.cur++
	for id, g := range s.blobs {
		if g < s.cur-keep {
			delete(s.blobs, id)
			s.pool.unrefBlob(id)
		}
	}
	for id := range s.ckpts {
		keepIt := false
		for _, p := range pinned {
			if p.Equals(id) {
				keepIt = true
				break
			}
		}
		if !keepIt {
			delete(s.ckpts, id)
			s.pool.unrefCheckpoint(id)
		}
	}
}

// Len returns how many blobs and checkpoints the store holds itself.
func (s *Store) Len() (blobs, checkpoints int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blobs), len(s.ckpts)
}

// PutPooledCheckpoint adds a checkpoint the pool holds to the store.
func (s *Store) PutPooledCheckpoint(id cid.Cid) error {
	s.pool.mu.Lock()
	c := s.pool.ckpts[id]
	s.pool.mu.Unlock()
	if c == nil {
		return fmt.Errorf("checkpoint %s: %w", id, node.ErrNotFound)
	}
	s.PutBuilt(c.ch)
	return nil
}
