package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p/blob"
)

// Large blobs. Content over content.MaxObject bytes (the residual of a
// model of hundreds of millions of parameters, say) is named by its
// manifest and kept on disk, in a store of chunks beside the checkpoints
// (CHECKPOINTS/blobs), never whole in memory: it is written a chunk at a
// time as it is made, fetched a chunk at a time from every peer that
// holds it and served from there. Such blobs age like small objects: each
// is pinned while young, and Sweep unpins and collects those last used
// more than keep generations ago.

var _ engine.StreamStore = (*Store)(nil)

// bigBlob is what the store knows of a large blob.
type bigBlob struct {
	gen   int  // the generation it was last put or used in
	whole bool // every chunk is on disk
}

// openBig opens the store of large blobs under the checkpoint store and
// takes the blobs a previous run left pinned as the current generation's.
func (s *Store) openBig() error {
	big, err := checkpoint.OpenStore(filepath.Join(s.ck.Dir(), "blobs"))
	if err != nil {
		return fmt.Errorf("large blobs: %w", err)
	}
	pins, err := big.Pins()
	if err != nil {
		return fmt.Errorf("large blobs: %w", err)
	}
	s.big, s.bigs = big, map[cid.Cid]*bigBlob{}
	for _, id := range pins {
		missing, err := big.Missing(id)
		s.bigs[id] = &bigBlob{whole: err == nil && len(missing) == 0}
	}
	return nil
}

// PutBlobStream stores content of size bytes that fill produces: as a
// small object up to content.MaxObject bytes, else on disk a chunk at a
// time, within the disk cap. Its CID is content.ID of the bytes.
func (s *Store) PutBlobStream(size int64, fill func(dst []byte, off int64) error) (cid.Cid, error) {
	if size <= content.MaxObject {
		b := make([]byte, size)
		if err := fill(b, 0); err != nil {
			return cid.Undef, err
		}
		c := content.Sum(b)
		return c, s.Put(c, b)
	}
	if err := s.reserve(size + int64(32*checkpoint.NumChunks(size, checkpoint.ChunkSize))); err != nil {
		return cid.Undef, fmt.Errorf("blob of %d bytes: %w", size, err)
	}
	id, err := s.big.Write(size, fill)
	if err != nil {
		return cid.Undef, err
	}
	return id, s.holdBig(id, true)
}

// LimitBlobs bounds the size of the blobs FetchBlob fetches (0: no
// bound but the exchange's): a node sets it from its round's model, so
// that a peer naming a huge blob as its residual costs a manifest, not
// gigabytes.
func (s *Store) LimitBlobs(max int64) {
	s.mu.Lock()
	s.bigMax = max
	s.mu.Unlock()
}

// holdBig pins large blob id and counts it as used now.
func (s *Store) holdBig(id cid.Cid, whole bool) error {
	if err := s.big.Pin(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bigs[id]
	if b == nil {
		b = &bigBlob{}
		s.bigs[id] = b
	}
	b.gen, b.whole = s.cur, b.whole || whole
	return nil
}

// bigWhole reports whether large blob id is whole on disk, and counts it
// as used now if it is.
func (s *Store) bigWhole(id cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bigs[id]
	if b == nil || !b.whole {
		return false
	}
	b.gen = s.cur
	return true
}

// OpenBlob returns a reader of a blob, small or large, and its size.
func (s *Store) OpenBlob(id cid.Cid) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	b, ok := s.objs[id]
	if ok {
		s.gen[id] = s.cur
	}
	s.mu.Unlock()
	if ok {
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
	if !s.bigWhole(id) {
		return nil, 0, fmt.Errorf("blob %s: %w", id, node.ErrNotFound)
	}
	r, err := s.big.Open(id)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(r), r.Size(), nil
}

// bigBytes returns a large blob whole, for callers that need its bytes.
func (s *Store) bigBytes(id cid.Cid) ([]byte, bool) {
	if !s.bigWhole(id) {
		return nil, false
	}
	r, err := s.big.Open(id)
	if err != nil {
		return nil, false
	}
	b, err := io.ReadAll(r)
	return b, err == nil
}

// putBigManifest keeps a manifest, the root of a large blob whose chunks
// are to follow (FetchBlob), within the disk cap.
func (s *Store) putBigManifest(m *content.Manifest) (cid.Cid, error) {
	id, err := cappedObjects{s.big.Objects(), s}.PutManifest(m)
	if err != nil {
		return cid.Undef, err
	}
	missing, err := s.big.Missing(id)
	return id, s.holdBig(id, err == nil && len(missing) == 0)
}

// sweepBig unpins and collects the large blobs last used before
// generation oldest.
func (s *Store) sweepBig(oldest int) {
	s.mu.Lock()
	var old []cid.Cid
	for id, b := range s.bigs {
		if b.gen < oldest {
			old = append(old, id)
			delete(s.bigs, id)
		}
	}
	s.mu.Unlock()
	if len(old) == 0 {
		return
	}
	for _, id := range old {
		s.big.Unpin(id)
	}
	if res, err := s.big.GC(0); err == nil {
		s.diskMu.Lock()
		s.diskUsed = max(0, s.diskUsed-res.Bytes)
		s.diskMu.Unlock()
	}
}

// FetchBlob fetches a blob of any size by CID from providers through x:
// its root object first, which is the blob if it is small; if the root is
// a manifest, its chunks follow from every provider at once straight to
// disk, each checked on arrival, and a fetch cut short resumes from the
// chunks already there. It returns the blob's size. If size is not
// negative, a blob of another size is refused before its chunks are
// fetched, as is one over the bound of LimitBlobs.
func (s *Store) FetchBlob(ctx context.Context, x *blob.Exchange, id cid.Cid, size int64, providers []peer.ID) (int64, error) {
	if s.bigWhole(id) {
		r, err := s.big.Open(id)
		if err != nil {
			return 0, err
		}
		return r.Size(), nil
	}
	b, err := x.FetchObject(ctx, id, providers)
	if err != nil {
		return 0, err
	}
	m, err := content.DecodeManifest(b)
	if err != nil {
		return int64(len(b)), nil // a small blob, held now
	}
	s.mu.Lock()
	limit := s.bigMax
	s.mu.Unlock()
	switch {
	case size >= 0 && m.Size != size:
		s.Forget(id)
		return 0, fmt.Errorf("blob %s lists %d bytes, want %d", id, m.Size, size)
	case limit > 0 && m.Size > limit:
		s.Forget(id)
		return 0, fmt.Errorf("blob %s lists %d bytes, more than the %d a blob of this round may have", id, m.Size, limit)
	}
	if _, err := s.putBigManifest(m); err != nil {
		return 0, err
	}
	res, err := x.FetchInto(ctx, cappedObjects{s.big.Objects(), s}, id, providers)
	if err != nil {
		return 0, err
	}
	if err := s.holdBig(id, true); err != nil {
		return 0, err
	}
	return res.Size, nil
}
