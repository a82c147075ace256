package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// StreamStore is what a Store may offer for content too large to pass
// around whole: a residual or a checkpoint of a model of hundreds of
// millions of parameters. An engine uses it when its store has it, and
// then holds such content only in the buffers it needs anyway (the
// model's parameters, the residual), a chunk at a time besides; without
// it, the engine passes content whole through the Store's methods.
// Both ways give the same CIDs (content.ID).
type StreamStore interface {
	// PutBlobStream stores content of size bytes that fill produces a
	// byte range at a time (fill may be called from several goroutines)
	// and returns its CID, content.ID of the bytes.
	PutBlobStream(size int64, fill func(dst []byte, off int64) error) (cid.Cid, error)
	// OpenBlob returns a reader of a blob, which checks what it reads
	// against the blob's CID, and the blob's size.
	OpenBlob(id cid.Cid) (io.ReadCloser, int64, error)
	// LoadCheckpoint reads checkpoint id into the buffers into returns
	// (see checkpoint.Store.Load).
	LoadCheckpoint(id cid.Cid, into func(name string, shape []int) ([]float32, error)) error
}

// putFloats stores the values of parts, one after another, as
// little-endian float32s and returns the blob's CID.
func (e *ModelEngine) putFloats(parts ...[]float32) (cid.Cid, error) {
	ends := make([]int64, len(parts)) // ends[i]: the byte just past part i
	var size int64
	for i, p := range parts {
		size += 4 * int64(len(p))
		ends[i] = size
	}
	fill := func(dst []byte, off int64) error {
		if off%4 != 0 || len(dst)%4 != 0 {
			return fmt.Errorf("engine: byte range [%d, +%d) is not whole values", off, len(dst))
		}
		i, _ := slices.BinarySearch(ends, off+1)
		for len(dst) > 0 {
			p := parts[i]
			k := int(off-(ends[i]-4*int64(len(p)))) / 4
			n := min(len(dst)/4, len(p)-k)
			putFloatBytes(dst[:4*n], p[k:k+n])
			dst, off = dst[4*n:], off+4*int64(n)
			i++
		}
		return nil
	}
	if ss, ok := e.store.(StreamStore); ok {
		return ss.PutBlobStream(size, fill)
	}
	b := make([]byte, size)
	if err := fill(b, 0); err != nil {
		return cid.Undef, err
	}
	return e.store.PutBlob(b)
}

// putFloatBytes writes the first len(dst)/4 values of v into dst.
func putFloatBytes(dst []byte, v []float32) {
	for i := range len(dst) / 4 {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v[i]))
	}
}

// readFloats reads blob id as n little-endian float32s. ok is false if the
// blob is not n values long (a blob of the wrong form).
func (e *ModelEngine) readFloats(id cid.Cid, n int) (v []float32, ok bool, err error) {
	ss, stream := e.store.(StreamStore)
	if !stream {
		b, err := e.store.Blob(id)
		if err != nil {
			return nil, false, err
		}
		v, err := floatsOf(b)
		if err != nil || len(v) != n {
			return nil, false, nil
		}
		return v, true, nil
	}
	r, size, err := ss.OpenBlob(id)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	if size != 4*int64(n) {
		return nil, false, nil
	}
	v = make([]float32, n)
	buf := make([]byte, 256<<10)
	for off := 0; off < n; {
		k := min(n-off, len(buf)/4)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, false, fmt.Errorf("blob %s: %w", id, err)
		}
		for i := range k {
			v[off+i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		off += k
	}
	return v, true, nil
}

// loadCheckpoint reads checkpoint id into the buffers into returns, from
// the store a chunk at a time if it can, else whole.
func loadCheckpoint(store Store, id cid.Cid, into func(name string, shape []int) ([]float32, error)) error {
	if ss, ok := store.(StreamStore); ok {
		return ss.LoadCheckpoint(id, into)
	}
	c, err := store.Checkpoint(id)
	if err != nil {
		return err
	}
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

// rawCID is RawCID without the copy: the hash of v as little-endian
// float32s, a block at a time.
func rawCID(v []float32) cid.Cid {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for len(v) > 0 {
		k := min(len(v), len(buf)/4)
		putFloatBytes(buf[:4*k], v[:k])
		h.Write(buf[:4*k])
		v = v[k:]
	}
	return content.OfDigest([32]byte(h.Sum(nil)))
}
