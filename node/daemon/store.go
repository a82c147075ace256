package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p/blob"
)

// Store is a daemon's content: checkpoints in a checkpoint.Store on disk,
// and small objects (update payloads, residuals, the round spec) in memory,
// in generations that Sweep ages out. It is both the node core's Store and
// the blob exchange's, so what the node makes is served to peers and what
// the exchange fetches lands where the node finds it: small objects here,
// checkpoints straight into the checkpoint store on disk, chunk by chunk
// (FetchCheckpoint). Every object is checked against its CID on the way
// in.
type Store struct {
	ck *checkpoint.Store

	mu       sync.Mutex
	objs     map[cid.Cid][]byte
	gen      map[cid.Cid]int
	cur      int
	bytes    int64
	max      int64               // bound on the bytes of objects held
	complete map[cid.Cid]bool    // checkpoints known to be whole on disk
	cache    []*cachedCheckpoint // the last checkpoints decoded (small ones)

	big    *checkpoint.Store    // large blobs (see bigblob.go)
	bigs   map[cid.Cid]*bigBlob // the large blobs held, under s.mu
	bigMax int64                // bound on a fetched blob's size (0: none), under s.mu

	files     string // directory of objects kept on disk (dataset shards); "" for none
	fileMax   int64  // bound on their bytes
	fileBytes int64

	// The checkpoint store's disk cap (see LimitDisk): diskUsed counts
	// its bytes from a walk of its directory plus what was written since,
	// so it errs high and is walked again before a write is refused.
	diskMax  int64 // 0: no cap
	diskKeep int   // checkpoints eviction keeps
	diskUsed int64
	diskMu   sync.Mutex // serialises reservations and the evictions they make
	// writeErr, if set, fails every write to the checkpoint store (tests
	// inject a full disk with it); writeFails counts those failures.
	writeErr   error
	writeFails int
}

type cachedCheckpoint struct {
	id cid.Cid
	c  *checkpoint.Checkpoint
}

var (
	_ engine.Store = (*Store)(nil)
	_ blob.Store   = (*Store)(nil)
)

// ErrFull is returned when an object would take the store over its bound.
var ErrFull = errors.New("object store full")

// ErrDiskFull is returned when a write would take the checkpoint store
// over its disk cap even after evicting the checkpoints beyond those it
// keeps.
var ErrDiskFull = errors.New("disk cap reached")

// IsDiskFull reports whether err comes from a full disk or the disk cap.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// NewStore wraps a checkpoint store; maxObjects bounds the memory the
// objects take (0: 1 GiB).
func NewStore(ck *checkpoint.Store, maxObjects int64) (*Store, error) {
	if maxObjects <= 0 {
		maxObjects = 1 << 30
	}
	s := &Store{ck: ck, objs: map[cid.Cid][]byte{}, gen: map[cid.Cid]int{}, max: maxObjects, complete: map[cid.Cid]bool{}}
	infos, err := ck.List()
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		s.complete[in.ID] = true
	}
	if err := s.openBig(); err != nil {
		return nil, err
	}
	return s, nil
}

// KeepOnDisk makes the store keep objects passed to Keep in dir, using at
// most max bytes (0: no bound): the least recently kept go first.
func (s *Store) KeepOnDisk(dir string, max int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s.mu.Lock()
	s.files, s.fileMax = dir, max
	s.mu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			if strings.HasPrefix(e.Name(), ".") {
				os.Remove(filepath.Join(dir, e.Name())) // a temp file of a write that died
				continue
			}
			s.fileBytes += info.Size()
		}
	}
	return nil
}

// Keep moves an object the store holds in memory to disk, where it stays
// across restarts and sweeps (within the disk bound).
func (s *Store) Keep(c cid.Cid) error {
	s.mu.Lock()
	b, ok := s.objs[c]
	dir, max := s.files, s.fileMax
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("object %s: %w", c, content.ErrNotFound)
	}
	if dir == "" {
		return errors.New("the store keeps nothing on disk")
	}
	if max > 0 && int64(len(b)) > max {
		return fmt.Errorf("object %s of %d bytes does not fit in the disk bound of %d bytes", c, len(b), max)
	}
	path := filepath.Join(dir, c.String())
	if _, err := os.Stat(path); err != nil {
		err := checkpoint.WriteFileAtomic(path, 0o600, func(w io.Writer) error { _, err := w.Write(b); return err })
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.fileBytes += int64(len(b))
		s.mu.Unlock()
	} else {
		now := time.Now()
		os.Chtimes(path, now, now)
	}
	s.mu.Lock()
	s.bytes -= int64(len(b))
	delete(s.objs, c)
	delete(s.gen, c)
	s.mu.Unlock()
	return s.trimFiles(c)
}

// trimFiles removes the oldest files until the disk bound holds, sparing
// keep.
func (s *Store) trimFiles(keep cid.Cid) error {
	s.mu.Lock()
	dir, max, used := s.files, s.fileMax, s.fileBytes
	s.mu.Unlock()
	if max <= 0 || used <= max {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		size int64
		mod  time.Time
	}
	var fs []file
	for _, e := range ents {
		if info, err := e.Info(); err == nil && e.Name() != keep.String() {
			fs = append(fs, file{e.Name(), info.Size(), info.ModTime()})
		}
	}
	slices.SortFunc(fs, func(a, b file) int { return a.mod.Compare(b.mod) })
	for _, f := range fs {
		if used <= max {
			break
		}
		if err := os.Remove(filepath.Join(dir, f.name)); err == nil {
			used -= f.size
		}
	}
	s.mu.Lock()
	s.fileBytes = used
	s.mu.Unlock()
	return nil
}

// readFile returns an object kept on disk, verified.
func (s *Store) readFile(c cid.Cid) ([]byte, bool) {
	s.mu.Lock()
	dir := s.files
	s.mu.Unlock()
	if dir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, c.String()))
	if err != nil || content.Verify(c, b) != nil {
		return nil, false
	}
	return b, true
}

// Checkpoints returns the checkpoint store.
func (s *Store) Checkpoints() *checkpoint.Store { return s.ck }

// Has reports whether the store holds an object: a small object, or a
// chunk or manifest of a checkpoint or a large blob on disk.
func (s *Store) Has(c cid.Cid) bool {
	s.mu.Lock()
	_, ok := s.objs[c]
	s.mu.Unlock()
	if ok {
		return true
	}
	_, err := s.Get(c)
	return err == nil
}

// Get returns an object's bytes.
func (s *Store) Get(c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.objs[c]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	if b, ok := s.readFile(c); ok {
		return b, nil
	}
	b, err := s.ck.Objects().Get(c)
	if err != nil {
		if bb, berr := s.big.Objects().Get(c); berr == nil {
			return bb, nil
		}
	}
	return b, err
}

// PutVerified keeps an object (content.Store); the store checks it all the
// same: small objects are cheap to hash.
func (s *Store) PutVerified(c cid.Cid, data []byte) error { return s.Put(c, data) }

// PutManifest keeps a manifest, the root of a large blob
// (content.Store). Checkpoints fetched from peers go to the checkpoint
// store instead (FetchCheckpoint).
func (s *Store) PutManifest(m *content.Manifest) (cid.Cid, error) {
	return s.putBigManifest(m)
}

// Put keeps an object after checking that it hashes to c. An object that
// is a manifest is the root of a large blob and goes to disk, for its
// chunks to follow (FetchBlob).
func (s *Store) Put(c cid.Cid, data []byte) error {
	if err := content.Verify(c, data); err != nil {
		return fmt.Errorf("object %s: %w", c, err)
	}
	if m, err := content.DecodeManifest(data); err == nil {
		_, err := s.putBigManifest(m)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[c]; ok {
		s.gen[c] = s.cur
		return nil
	}
	if s.bytes+int64(len(data)) > s.max {
		return fmt.Errorf("object %s of %d bytes: %w (%d of %d bytes used)", c, len(data), ErrFull, s.bytes, s.max)
	}
	s.objs[c] = data
	s.gen[c] = s.cur
	s.bytes += int64(len(data))
	return nil
}

// Forget drops a blob: a small object held in memory, or a large blob
// on disk.
func (s *Store) Forget(c cid.Cid) {
	s.mu.Lock()
	if b, ok := s.objs[c]; ok {
		s.bytes -= int64(len(b))
		delete(s.objs, c)
		delete(s.gen, c)
	}
	b, big := s.bigs[c]
	if big {
		b.gen = -1
	}
	s.mu.Unlock()
	if big {
		s.sweepBig(0)
	}
}

// Sweep starts a new generation of objects and forgets those last put or
// used more than keep generations ago.
func (s *Store) Sweep(keep int) {
	s.mu.Lock()
	s.cur++
	for c, g := range s.gen {
		if g < s.cur-keep {
			s.bytes -= int64(len(s.objs[c]))
			delete(s.objs, c)
			delete(s.gen, c)
		}
	}
	oldest := s.cur - keep
	s.mu.Unlock()
	s.sweepBig(oldest)
}

// ObjectBytes returns the bytes the small objects take.
func (s *Store) ObjectBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// PutBlob keeps a blob and returns its CID, content.ID(data): in memory
// up to content.MaxObject bytes, else on disk (see PutBlobStream).
func (s *Store) PutBlob(data []byte) (cid.Cid, error) {
	if len(data) > content.MaxObject {
		return s.PutBlobStream(int64(len(data)), func(dst []byte, off int64) error { copy(dst, data[off:]); return nil })
	}
	c := content.Sum(data)
	return c, s.Put(c, data)
}

// Blob returns a blob; a large one is read whole from disk (OpenBlob
// reads it a chunk at a time).
func (s *Store) Blob(id cid.Cid) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.objs[id]
	if ok {
		s.gen[id] = s.cur
	}
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	if b, ok := s.bigBytes(id); ok {
		return b, nil
	}
	return nil, fmt.Errorf("blob %s: %w", id, node.ErrNotFound)
}

// HasBlob reports whether a blob is held whole.
func (s *Store) HasBlob(id cid.Cid) bool {
	s.mu.Lock()
	_, ok := s.objs[id]
	s.mu.Unlock()
	return ok || s.bigWhole(id)
}

// LimitDisk caps the bytes the checkpoint store takes on disk at max (0:
// no cap). Before a write that would go over, the store evicts every
// checkpoint but the newest keep (as a collection keeping keep would);
// if the write still does not fit, it is refused with ErrDiskFull and
// nothing is written. A caller keeping keep checkpoints of size S needs
// max >= (keep+1)·S.
func (s *Store) LimitDisk(max int64, keep int) error {
	used, err := dirBytes(s.ck.Dir())
	if err != nil {
		return err
	}
	s.diskMu.Lock()
	s.diskMax, s.diskKeep, s.diskUsed = max, keep, used
	s.diskMu.Unlock()
	return nil
}

// DiskBytes returns the bytes the checkpoint store takes on disk, as
// counted for its cap (0 without a cap).
func (s *Store) DiskBytes() int64 {
	s.diskMu.Lock()
	defer s.diskMu.Unlock()
	return s.diskUsed
}

// reserve makes room for n more bytes in the checkpoint store, evicting
// if need be, and counts them; it refuses with ErrDiskFull.
func (s *Store) reserve(n int64) error {
	s.diskMu.Lock()
	defer s.diskMu.Unlock()
	if s.writeErr != nil {
		s.writeFails++
		return s.writeErr
	}
	if s.diskMax <= 0 {
		return nil
	}
	if s.diskUsed+n > s.diskMax {
		used, err := dirBytes(s.ck.Dir())
		if err != nil {
			return err
		}
		s.diskUsed = used
	}
	if s.diskUsed+n > s.diskMax {
		res, err := s.ck.GC(s.diskKeep)
		if err != nil {
			return err
		}
		s.forget(res.Removed)
		used, err := dirBytes(s.ck.Dir())
		if err != nil {
			return err
		}
		s.diskUsed = used
	}
	if s.diskUsed+n > s.diskMax {
		return fmt.Errorf("%d more bytes: %w (%d of %d bytes used, keeping %d checkpoints)", n, ErrDiskFull, s.diskUsed, s.diskMax, s.diskKeep)
	}
	s.diskUsed += n
	return nil
}

// forget drops removed checkpoints from what the store knows whole.
func (s *Store) forget(removed []cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range removed {
		delete(s.complete, id)
		s.cache = slices.DeleteFunc(s.cache, func(e *cachedCheckpoint) bool { return e.id.Equals(id) })
	}
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// PutCheckpoint writes a checkpoint to disk (atomically) and returns its
// ID, within the disk cap.
func (s *Store) PutCheckpoint(c *checkpoint.Checkpoint) (cid.Cid, error) {
	size, err := checkpoint.EncodedSize(c)
	if err != nil {
		return cid.Undef, err
	}
	if size > cacheCheckpoint {
		// Encoded and written a chunk at a time, not whole in memory.
		if err := s.reserve(size + int64(32*checkpoint.NumChunks(size, checkpoint.ChunkSize))); err != nil {
			return cid.Undef, fmt.Errorf("checkpoint of %d bytes: %w", size, err)
		}
		id, err := s.ck.PutStream(c)
		if err != nil {
			return cid.Undef, err
		}
		s.mu.Lock()
		s.complete[id] = true
		s.mu.Unlock()
		return id, nil
	}
	ch, err := checkpoint.Build(c)
	if err != nil {
		return cid.Undef, err
	}
	if !s.HasCheckpoint(ch.ID) {
		mb, err := ch.Manifest.MarshalBinary()
		if err != nil {
			return cid.Undef, err
		}
		if err := s.reserve(int64(len(ch.Data) + len(mb))); err != nil {
			return cid.Undef, fmt.Errorf("checkpoint %s: %w", ch.ID, err)
		}
	}
	if err := s.ck.PutChunked(ch); err != nil {
		return cid.Undef, err
	}
	id := ch.ID
	s.mu.Lock()
	s.complete[id] = true
	s.mu.Unlock()
	return id, nil
}

// cacheCheckpoint is the largest checkpoint encoding that the store keeps
// decoded in memory for the next reader, and that PutCheckpoint builds
// whole before writing.
const cacheCheckpoint = 64 << 20

// LoadCheckpoint reads checkpoint id, verified, into the buffers into
// returns (see checkpoint.Store.Load): from the cache if it is there,
// else from disk a chunk at a time.
func (s *Store) LoadCheckpoint(id cid.Cid, into func(name string, shape []int) ([]float32, error)) error {
	if c := s.cached(id); c != nil {
		for _, t := range c.Tensors {
			dst, err := into(t.Name, t.Shape)
			if err != nil {
				return fmt.Errorf("checkpoint %s: tensor %s: %w", id, t.Name, err)
			}
			if dst != nil {
				if len(dst) != len(t.Data) {
					return fmt.Errorf("checkpoint %s: tensor %s has %d values, the buffer %d", id, t.Name, len(t.Data), len(dst))
				}
				copy(dst, t.Data)
			}
		}
		return nil
	}
	_, err := s.ck.Load(id, into)
	return err
}

func (s *Store) cached(id cid.Cid) *checkpoint.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.cache {
		if e.id.Equals(id) {
			return e.c
		}
	}
	return nil
}

// Checkpoint reads a checkpoint, verified; the last few small ones are
// cached. The caller must not modify it.
func (s *Store) Checkpoint(id cid.Cid) (*checkpoint.Checkpoint, error) {
	s.mu.Lock()
	for _, e := range s.cache {
		if e.id.Equals(id) {
			s.mu.Unlock()
			return e.c, nil
		}
	}
	s.mu.Unlock()
	c, err := s.ck.Get(id)
	if err != nil {
		return nil, err
	}
	if size, err := checkpoint.EncodedSize(c); err != nil || size > cacheCheckpoint {
		return c, nil
	}
	s.mu.Lock()
	s.cache = append(s.cache, &cachedCheckpoint{id: id, c: c})
	if len(s.cache) > 2 {
		s.cache = s.cache[1:]
	}
	s.mu.Unlock()
	return c, nil
}

// HasCheckpoint reports whether a whole checkpoint is on disk.
func (s *Store) HasCheckpoint(id cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete[id]
}

// FetchCheckpoint fetches checkpoint id from providers through x
// straight into the checkpoint store on disk: the manifest first, then
// each chunk as it arrives, hashed once on arrival. Memory holds only the
// chunks in flight, whatever the checkpoint's size, and a fetch cut short
// resumes from the chunks on disk. Once every chunk is there, the header
// is read back from the leading chunks and checked against the manifest,
// and the checkpoint counts as whole.
func (s *Store) FetchCheckpoint(ctx context.Context, x *blob.Exchange, id cid.Cid, providers []peer.ID) (*blob.FetchResult, error) {
	res, err := x.FetchInto(ctx, cappedObjects{s.ck.Objects(), s}, id, providers)
	if err != nil {
		return res, err
	}
	if _, err := s.ck.Header(id); err != nil {
		return res, err
	}
	s.mu.Lock()
	s.complete[id] = true
	s.mu.Unlock()
	return res, nil
}

// cappedObjects is the checkpoint store's objects with every write
// within the disk cap: a fetch that would take the store over it stops
// with ErrDiskFull before writing.
type cappedObjects struct {
	content.Store
	s *Store
}

func (o cappedObjects) PutVerified(c cid.Cid, data []byte) error {
	if o.Store.Has(c) {
		return nil
	}
	if err := o.s.reserve(int64(len(data))); err != nil {
		return fmt.Errorf("chunk %s: %w", c, err)
	}
	return o.Store.PutVerified(c, data)
}

func (o cappedObjects) PutManifest(m *content.Manifest) (cid.Cid, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return cid.Undef, err
	}
	if err := o.s.reserve(int64(len(b))); err != nil {
		return cid.Undef, fmt.Errorf("manifest %s: %w", content.Sum(b), err)
	}
	return o.Store.PutManifest(m)
}
