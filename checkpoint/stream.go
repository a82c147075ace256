package checkpoint

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Content of any size passes through a Store a chunk at a time: Write
// makes it from a function that fills any byte range, Open reads it back,
// and Load decodes a checkpoint into buffers its caller owns. Memory holds
// a few chunks, never the whole content, so a checkpoint of a model of
// hundreds of millions of parameters costs its tensors and nothing more.

// chunkBufs recycles the chunk buffers of Write.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// Write stores content of size bytes in chunks of ChunkSize, asking fill
// for each chunk's bytes (fill(dst, off) writes bytes [off, off+len(dst))
// of the content into dst; it is called from several goroutines at once),
// and returns the CID of its manifest, which names the content. Each
// chunk is hashed and written as soon as it is filled; the manifest is
// written last and listed in the index, as PutChunked does. An error of
// fill stops the write and is returned; the chunks written by then stay
// until a GC removes them.
func (s *Store) Write(size int64, fill func(dst []byte, off int64) error) (cid.Cid, error) {
	if size < 0 {
		return cid.Undef, fmt.Errorf("write: negative size %d", size)
	}
	m := &Manifest{Size: size, ChunkSize: ChunkSize}
	n := NumChunks(size, ChunkSize)
	if 24+32*int64(n) > content.MaxManifestSize {
		return cid.Undef, fmt.Errorf("write: %d bytes need %d chunks, more than a manifest may list", size, n)
	}
	m.Chunks = make([]cid.Cid, n)
	unlock, err := s.shared()
	if err != nil {
		return cid.Undef, err
	}
	errs := make([]error, n)
	var stop atomic.Bool
	each(n, func(i int) {
		if stop.Load() {
			return
		}
		bp := chunkBufs.Get().(*[]byte)
		defer chunkBufs.Put(bp)
		chunk := (*bp)[:m.ChunkLen(i)]
		err := fill(chunk, m.ChunkOffset(i))
		if err == nil {
			m.Chunks[i] = content.OfDigest(sha256.Sum256(chunk))
			if path := s.chunkPath(m.Chunks[i]); !present(path, m.Chunks[i], int64(len(chunk))) {
				err = s.create(path, chunk, false)
			}
		}
		if err != nil {
			errs[i] = err
			stop.Store(true)
		}
	})
	var b []byte
	if err = errors.Join(errs...); err == nil {
		syncDirectory(s.sub("chunks"))
		if b, err = m.MarshalBinary(); err == nil {
			err = s.putManifest(content.Sum(b), b)
		}
	}
	unlock()
	if err != nil {
		return cid.Undef, fmt.Errorf("write: %w", err)
	}
	id := content.Sum(b)
	return id, s.updateIndex(func(ix *index) (bool, error) { return ix.add(id), nil })
}

// PutStream stores c as Put does, with the same ID, encoding and writing
// it a chunk at a time, so that memory holds a few chunks besides c.
func (s *Store) PutStream(c *Checkpoint) (cid.Cid, error) {
	e, err := newEncoder(c)
	if err != nil {
		return cid.Undef, err
	}
	return s.Write(e.size, func(dst []byte, off int64) error { e.fill(dst, off); return nil })
}

// EncodedSize returns the length of c's encoding.
func EncodedSize(c *Checkpoint) (int64, error) {
	e, err := newEncoder(c)
	if err != nil {
		return 0, err
	}
	return e.size, nil
}

// Reader reads the content a manifest lists, chunk by chunk, checking each
// chunk against its CID before any of its bytes are returned: a missing or
// damaged chunk makes Read fail (with an error wrapping ErrNotFound or
// ErrCorrupt) and nothing unverified is ever read.
type Reader struct {
	s   *Store
	id  cid.Cid
	m   *Manifest
	i   int    // the next chunk to read
	buf []byte // the rest of the current chunk
}

// Open returns a reader of the content manifest id lists.
func (s *Store) Open(id cid.Cid) (*Reader, error) {
	m, err := s.Manifest(id)
	if err != nil {
		return nil, err
	}
	return &Reader{s: s, id: id, m: m}, nil
}

// Size returns the length of the content.
func (r *Reader) Size() int64 { return r.m.Size }

// Read reads the next bytes of the content.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.i == len(r.m.Chunks) {
			return 0, io.EOF
		}
		c := r.m.Chunks[r.i]
		r.s.mu.RLock()
		b, err := readObject(r.s.chunkPath(c), c, int64(r.m.ChunkLen(r.i)), MaxChunkSize)
		r.s.mu.RUnlock()
		if err != nil {
			return 0, fmt.Errorf("content %s: chunk %d: %w", r.id, r.i, err)
		}
		r.i++
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Load reads checkpoint id a chunk at a time, checking each chunk, into
// the buffers into returns: for each tensor, in the encoding's order, into
// gets its name and shape and returns a slice of exactly its number of
// values to fill, or nil to skip it. It returns the checkpoint's header.
// Memory holds one chunk besides the caller's buffers.
func (s *Store) Load(id cid.Cid, into func(name string, shape []int) ([]float32, error)) (*Header, error) {
	h, err := s.Header(id)
	if err != nil {
		return nil, err
	}
	r, err := s.Open(id)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, r, h.DataOffset); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	buf := make([]byte, 256<<10)
	for _, t := range h.Tensors {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		dst, err := into(t.Name, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: tensor %s: %w", id, t.Name, err)
		}
		if dst == nil {
			if _, err := io.CopyN(io.Discard, r, 4*int64(n)); err != nil {
				return nil, fmt.Errorf("checkpoint %s: tensor %s: %w", id, t.Name, err)
			}
			continue
		}
		if len(dst) != n {
			return nil, fmt.Errorf("checkpoint %s: tensor %s of shape %v has %d values, the buffer %d", id, t.Name, t.Shape, n, len(dst))
		}
		for len(dst) > 0 {
			k := min(len(dst), len(buf)/4)
			if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
				return nil, fmt.Errorf("checkpoint %s: tensor %s: %w", id, t.Name, err)
			}
			getFloats(dst[:k], buf[:4*k])
			dst = dst[k:]
		}
	}
	if n, _ := r.Read(buf[:1]); n != 0 {
		return nil, fmt.Errorf("checkpoint %s: %w: bytes after the last tensor", id, ErrCorrupt)
	}
	return h, nil
}
