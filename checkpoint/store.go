package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Store keeps checkpoints in a directory, content-addressed:
//
//	DIR/chunks/<CID>     the chunks of checkpoint encodings
//	DIR/manifests/<CID>  manifests; a manifest's CID is a checkpoint's ID
//	DIR/index.json       arrival order, labels and pins
//	DIR/lock             an advisory lock between processes
//
// Every file is written atomically (temporary file, fsync, rename), chunks
// before the manifest that lists them, so a writer killed at any point
// leaves at worst temporary files, which OpenStore removes, or a manifest
// whose chunks are not all there, which is not listed. Every read checks
// the content against its CID: a damaged file is reported, never served.
//
// A Store is safe for concurrent use by goroutines. Where the system has
// flock, processes sharing a directory exclude each other too: writes of
// objects share the lock, while index changes and garbage collection take
// it alone, and OpenStore skips its clean-up while another process holds
// it.
type Store struct {
	dir string
	mu  sync.RWMutex // RLock: reads and object writes; Lock: index changes and GC

	// create writes a file atomically and remove removes one; tests
	// replace them to simulate a process killed midway.
	create func(path string, data []byte, syncDir bool) error
	remove func(path string) error
}

var errBusy = errors.New("store is in use by another process")

// OpenStore opens the store in dir, creating it if needed. Unless another
// process is using the store, it removes the temporary files left by
// writers that were killed, and adds manifests missing from the index
// (written by a process killed before it updated the index) at its end.
func OpenStore(dir string) (*Store, error) {
	s := &Store{dir: dir, create: func(path string, data []byte, syncDir bool) error {
		return writeFileAtomic(path, 0o644, func(w io.Writer) error { _, err := w.Write(data); return err }, syncDir)
	}, remove: os.Remove}
	for _, d := range []string{dir, s.sub("chunks"), s.sub("manifests")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	unlock, err := lockFile(s.sub("lock"), true, false)
	if err == errBusy {
		_, err := s.loadIndex()
		return s, err
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer unlock()
	for _, d := range []string{dir, s.sub("chunks"), s.sub("manifests")} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		for _, e := range ents {
			if isTemp(e.Name()) {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					return nil, fmt.Errorf("open store: remove temporary file: %w", err)
				}
			}
		}
	}
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	ids, err := s.ids("manifests")
	if err != nil {
		return nil, err
	}
	changed := false
	for _, id := range ix.arrange(ids) {
		changed = ix.add(id) || changed
	}
	if changed {
		if err := s.saveIndex(ix); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) sub(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) chunkPath(id cid.Cid) string {
	return filepath.Join(s.dir, "chunks", id.String())
}

func (s *Store) manifestPath(id cid.Cid) string {
	return filepath.Join(s.dir, "manifests", id.String())
}

// shared takes the store's lock for writing objects.
func (s *Store) shared() (func(), error) {
	s.mu.RLock()
	unlock, err := lockFile(s.sub("lock"), false, true)
	if err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	return func() { unlock(); s.mu.RUnlock() }, nil
}

// exclusive takes the store's lock for index changes and GC.
func (s *Store) exclusive() (func(), error) {
	s.mu.Lock()
	unlock, err := lockFile(s.sub("lock"), true, true)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); s.mu.Unlock() }, nil
}

// ids returns the objects in a sub-directory, skipping any file whose name
// is not a canonical ID (temporary files among them).
func (s *Store) ids(sub string) ([]cid.Cid, error) {
	ents, err := os.ReadDir(s.sub(sub))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []cid.Cid
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if c, err := parseID(e.Name()); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Store) loadIndex() (*index, error) {
	path := s.sub(indexName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if len(b) > maxIndexSize {
		return nil, fmt.Errorf("store: %s: longer than %d bytes", path, maxIndexSize)
	}
	ix, err := parseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return ix, nil
}

func (s *Store) saveIndex(ix *index) error {
	return s.create(s.sub(indexName), ix.marshal(), true)
}

// updateIndex applies change to the index under the exclusive lock and
// saves it if change reports a change.
func (s *Store) updateIndex(change func(ix *index) (bool, error)) error {
	unlock, err := s.exclusive()
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := s.loadIndex()
	if err != nil {
		return err
	}
	changed, err := change(ix)
	if err != nil || !changed {
		return err
	}
	return s.saveIndex(ix)
}

// readObject reads the file at path and checks it against id. size is the
// expected length, or -1 for any length up to limit.
func readObject(path string, id cid.Cid, size int64, limit int64) ([]byte, error) {
	var b []byte
	if err := readFile(path, id, size, limit, func(n int64) []byte { b = make([]byte, n); return b }); err != nil {
		return nil, err
	}
	if err := content.Verify(id, b); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", id, path, ErrCorrupt)
	}
	return b, nil
}

// readFile reads the file at path, which holds object id, into the buffer
// that buf returns for its length, after checking that length against size
// (if not -1) and limit. It does not check the content.
func readFile(path string, id cid.Cid, size, limit int64, buf func(n int64) []byte) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	switch n := st.Size(); {
	case size >= 0 && n != size:
		return fmt.Errorf("%s (%s): %d bytes, want %d: %w", id, path, n, size, ErrCorrupt)
	case n > limit:
		return fmt.Errorf("%s (%s): %d bytes, more than the %d allowed: %w", id, path, n, limit, ErrCorrupt)
	}
	if _, err := io.ReadFull(f, buf(st.Size())); err != nil {
		return fmt.Errorf("%s (%s): %w", id, path, err)
	}
	return nil
}

// present reports whether the file at path holds the content of id.
func present(path string, id cid.Cid, size int64) bool {
	_, err := readObject(path, id, size, MaxChunkSize)
	return err == nil
}

// Chunk returns the content of a chunk, checked against its CID. A missing
// chunk gives an error wrapping ErrNotFound, a damaged one ErrCorrupt.
func (s *Store) Chunk(id cid.Cid) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := readObject(s.chunkPath(id), id, -1, MaxChunkSize)
	if err != nil {
		return nil, fmt.Errorf("chunk %w", err)
	}
	return b, nil
}

// Manifest returns the manifest of a checkpoint, checked against its CID.
func (s *Store) Manifest(id cid.Cid) (*Manifest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.manifest(id)
}

func (s *Store) manifest(id cid.Cid) (*Manifest, error) {
	b, err := readObject(s.manifestPath(id), id, -1, MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %w", err)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", id, ErrCorrupt, err)
	}
	return m, nil
}

// PutChunk stores a chunk after checking it against id. A chunk already
// stored intact is left alone; a damaged copy is replaced. Store the
// manifest that lists a chunk first (PutManifest): GC removes chunks that
// no manifest lists.
func (s *Store) PutChunk(id cid.Cid, data []byte) error {
	if err := content.Verify(id, data); err != nil {
		return err
	}
	return s.putChunk(id, data)
}

// Objects returns the store as a content.Store of chunks and manifests,
// so that the blob exchange fetches into it and serves from it directly:
// a fetched checkpoint lands on disk chunk by chunk as it arrives, its
// manifest first, and a fetch cut short resumes from the chunks on disk.
func (s *Store) Objects() content.Store { return objects{s} }

// objects is a Store seen as a content.Store.
type objects struct{ s *Store }

// Has reports whether the store holds chunk or manifest c intact (it reads
// and hashes the file).
func (o objects) Has(c cid.Cid) bool {
	s := o.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	return present(s.chunkPath(c), c, -1) || present(s.manifestPath(c), c, -1)
}

// Get returns chunk or manifest c (a manifest's encoding), checked against
// its CID. A missing object gives an error wrapping ErrNotFound, a damaged
// one ErrCorrupt.
func (o objects) Get(c cid.Cid) ([]byte, error) {
	s := o.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := readObject(s.chunkPath(c), c, -1, MaxChunkSize)
	if errors.Is(err, ErrNotFound) {
		b, err = readObject(s.manifestPath(c), c, -1, MaxManifestSize)
	}
	if err != nil {
		return nil, fmt.Errorf("object %w", err)
	}
	return b, nil
}

// PutVerified stores chunk id, whose bytes the caller has checked against
// id (the blob exchange hashes each chunk once, as it arrives).
func (o objects) PutVerified(id cid.Cid, data []byte) error { return o.s.putChunk(id, data) }

// PutManifest stores a manifest (see Store.PutManifest).
func (o objects) PutManifest(m *Manifest) (cid.Cid, error) { return o.s.PutManifest(m) }

// putChunk stores chunk id, whose bytes are checked against id. A chunk
// already stored intact is left alone; a damaged copy is replaced.
func (s *Store) putChunk(id cid.Cid, data []byte) error {
	if err := content.Check(id); err != nil {
		return err
	}
	if len(data) > MaxChunkSize {
		return fmt.Errorf("chunk %s: %d bytes, more than the %d allowed", id, len(data), MaxChunkSize)
	}
	unlock, err := s.shared()
	if err != nil {
		return err
	}
	defer unlock()
	path := s.chunkPath(id)
	if present(path, id, int64(len(data))) {
		return nil
	}
	return s.create(path, data, true)
}

// PutManifest stores a manifest and returns its CID, the checkpoint's ID.
// Its chunks may follow (see Missing and PutChunk): the checkpoint is
// listed once they are all there.
func (s *Store) PutManifest(m *Manifest) (cid.Cid, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return cid.Undef, err
	}
	id := content.Sum(b)
	unlock, err := s.shared()
	if err != nil {
		return cid.Undef, err
	}
	err = s.putManifest(id, b)
	unlock()
	if err != nil {
		return cid.Undef, err
	}
	return id, s.updateIndex(func(ix *index) (bool, error) { return ix.add(id), nil })
}

func (s *Store) putManifest(id cid.Cid, b []byte) error {
	path := s.manifestPath(id)
	if present(path, id, int64(len(b))) {
		return nil
	}
	return s.create(path, b, true)
}

// Put stores c in chunks of ChunkSize and returns its ID.
func (s *Store) Put(c *Checkpoint) (cid.Cid, error) {
	ch, err := Build(c)
	if err != nil {
		return cid.Undef, err
	}
	return ch.ID, s.PutChunked(ch)
}

// PutChunked stores an encoding already cut into chunks: the chunks, then
// the manifest, then the manifest's place in the index.
func (s *Store) PutChunked(ch *Chunked) error {
	b, err := ch.Manifest.MarshalBinary()
	if err != nil {
		return err
	}
	if content.Sum(b) != ch.ID {
		return fmt.Errorf("checkpoint %s: manifest has CID %s", ch.ID, content.Sum(b))
	}
	unlock, err := s.shared()
	if err != nil {
		return err
	}
	err = s.putChunks(ch)
	if err == nil {
		err = s.putManifest(ch.ID, b)
	}
	unlock()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", ch.ID, err)
	}
	return s.updateIndex(func(ix *index) (bool, error) { return ix.add(ch.ID), nil })
}

func (s *Store) putChunks(ch *Chunked) error {
	wrote := false
	for i, id := range ch.Manifest.Chunks {
		data := ch.Chunk(i)
		path := s.chunkPath(id)
		if present(path, id, int64(len(data))) {
			continue
		}
		// The directory is synced once, below, before the manifest is
		// written.
		if err := s.create(path, data, false); err != nil {
			return err
		}
		wrote = true
	}
	if wrote {
		syncDirectory(s.sub("chunks"))
	}
	return nil
}

// Missing returns the chunks of checkpoint id that the store lacks or
// holds damaged, in manifest order.
func (s *Store) Missing(id cid.Cid) ([]cid.Cid, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err := s.manifest(id)
	if err != nil {
		return nil, err
	}
	var out []cid.Cid
	for i, c := range m.Chunks {
		if !present(s.chunkPath(c), c, int64(m.ChunkLen(i))) {
			out = append(out, c)
		}
	}
	return out, nil
}

// chunks calls fn with each chunk of m in order, read and checked, until
// fn returns false.
func (s *Store) chunks(id cid.Cid, m *Manifest, fn func(i int, b []byte) bool) error {
	for i, c := range m.Chunks {
		b, err := readObject(s.chunkPath(c), c, int64(m.ChunkLen(i)), MaxChunkSize)
		if err != nil {
			return fmt.Errorf("checkpoint %s: chunk %d: %w", id, i, err)
		}
		if !fn(i, b) {
			return nil
		}
	}
	return nil
}

// Get reads checkpoint id, checking every chunk and the encoding. It
// reads a chunk at a time (see Load): memory holds the checkpoint's
// values and one chunk.
func (s *Store) Get(id cid.Cid) (*Checkpoint, error) {
	c := &Checkpoint{}
	h, err := s.Load(id, func(name string, shape []int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		c.Tensors = append(c.Tensors, Tensor{Name: name, Shape: shape, Data: v})
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	c.Meta = h.Meta
	return c, nil
}

// Header reads the header of checkpoint id (metadata, tensor names and
// shapes) from its leading chunks, checking each.
func (s *Store) Header(id cid.Cid) (*Header, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err := s.manifest(id)
	if err != nil {
		return nil, err
	}
	h, err := s.header(id, m, false)
	return h, err
}

// header decodes the header of checkpoint id from its leading chunks, or
// from all of them if all is true, so that every chunk is checked, and
// checks that the header's size is the manifest's.
func (s *Store) header(id cid.Cid, m *Manifest, all bool) (*Header, error) {
	var prefix []byte
	var h *Header
	var herr error
	err := s.chunks(id, m, func(_ int, b []byte) bool {
		if h == nil && herr == nil {
			prefix = append(prefix, b...)
			h, herr = decodeHeader(prefix)
			if herr == errShort && len(prefix) < MaxHeader {
				herr = nil
			}
		}
		return all || (h == nil && herr == nil)
	})
	if err != nil {
		return nil, err
	}
	if herr == nil && h == nil {
		_, herr = DecodeHeader(prefix)
	}
	if herr != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %w", id, ErrCorrupt, herr)
	}
	if h.Size != m.Size {
		return nil, fmt.Errorf("checkpoint %s: %w: header describes %d bytes, manifest %d", id, ErrCorrupt, h.Size, m.Size)
	}
	return h, nil
}

// Resolve returns the ID that ref names: a label, or a checkpoint's CID.
func (s *Store) Resolve(ref string) (cid.Cid, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.loadIndex()
	if err != nil {
		return cid.Undef, err
	}
	if c, ok := ix.labels[ref]; ok {
		return c, nil
	}
	if c, err := parseID(ref); err == nil {
		return c, nil
	}
	return cid.Undef, fmt.Errorf("%q is neither a label of this store nor a checkpoint CID: %w", ref, ErrNotFound)
}

// Info describes a complete checkpoint of a store.
type Info struct {
	ID      cid.Cid
	Size    int64 // bytes of the encoding
	Chunks  int
	Meta    map[string]string
	Tensors []TensorSpec
	Labels  []string // sorted
	Pinned  bool
}

// Step returns the step number in the checkpoint's metadata, if any.
func (i *Info) Step() (int64, bool) { return metaStep(i.Meta) }

// List returns the store's complete checkpoints, oldest first: those whose
// manifest and every chunk are present and match their CIDs and whose
// header is valid. It reads and hashes every chunk.
func (s *Store) List() ([]Info, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	ids, err := s.ids("manifests")
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, id := range ix.arrange(ids) {
		m, err := s.manifest(id)
		if err != nil {
			continue
		}
		h, err := s.header(id, m, true)
		if err != nil {
			continue
		}
		out = append(out, Info{ID: id, Size: m.Size, Chunks: len(m.Chunks), Meta: h.Meta, Tensors: h.Tensors,
			Labels: ix.labelsOf(id), Pinned: ix.pins[id]})
	}
	return out, nil
}

// Labels returns the store's labels.
func (s *Store) Labels() (map[string]cid.Cid, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	return ix.labels, nil
}

// Pins returns the pinned checkpoints, sorted.
func (s *Store) Pins() ([]cid.Cid, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	var out []cid.Cid
	for c := range ix.pins {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b cid.Cid) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

func (s *Store) hasManifest(id cid.Cid) error {
	if _, err := os.Stat(s.manifestPath(id)); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, ErrNotFound)
	}
	return nil
}

// SetLabel makes label name checkpoint id, which the store must hold,
// moving it from any checkpoint it named before.
func (s *Store) SetLabel(label string, id cid.Cid) error {
	if err := ValidLabel(label); err != nil {
		return err
	}
	return s.updateIndex(func(ix *index) (bool, error) {
		if err := s.hasManifest(id); err != nil {
			return false, err
		}
		if c, ok := ix.labels[label]; ok && c == id {
			return false, nil
		}
		ix.labels[label] = id
		return true, nil
	})
}

// RemoveLabel removes a label; removing an absent one is not an error.
func (s *Store) RemoveLabel(label string) error {
	return s.updateIndex(func(ix *index) (bool, error) {
		_, ok := ix.labels[label]
		delete(ix.labels, label)
		return ok, nil
	})
}

// Pin protects checkpoint id, which the store must hold, from GC.
func (s *Store) Pin(id cid.Cid) error {
	return s.updateIndex(func(ix *index) (bool, error) {
		if err := s.hasManifest(id); err != nil {
			return false, err
		}
		changed := !ix.pins[id]
		ix.pins[id] = true
		return changed, nil
	})
}

// Unpin removes the protection of Pin.
func (s *Store) Unpin(id cid.Cid) error {
	return s.updateIndex(func(ix *index) (bool, error) {
		changed := ix.pins[id]
		delete(ix.pins, id)
		return changed, nil
	})
}
