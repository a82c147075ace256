package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// ChunkSize is the size of every chunk of a checkpoint but the last. It is
// part of the protocol: a checkpoint's ID is that of its manifest with this
// chunk size, so every peer must use it.
const ChunkSize = content.ChunkSize

// MaxChunkSize bounds the chunk size a manifest may declare.
const MaxChunkSize = content.MaxChunkSize

// MaxManifestSize bounds the length of an encoded manifest.
const MaxManifestSize = content.MaxManifestSize

// Errors wrapped by what this package returns: those of package content.
var (
	// ErrCorrupt reports content that does not match its CID, or that
	// matches it but does not decode.
	ErrCorrupt = content.ErrCorrupt
	// ErrNotFound reports an object missing from a store.
	ErrNotFound = content.ErrNotFound
)

// Manifest lists the chunks of a checkpoint's encoding. Its CID is the
// checkpoint's ID. It is the one manifest format of package content.
type Manifest = content.Manifest

// NumChunks returns the number of chunks of size bytes cut chunkSize at a
// time.
func NumChunks(size int64, chunkSize int) int { return content.NumChunks(size, chunkSize) }

// DecodeManifest parses a manifest's canonical encoding, rejecting
// anything Manifest.MarshalBinary would not produce with a *FormatError.
func DecodeManifest(b []byte) (*Manifest, error) { return content.DecodeManifest(b) }

// Chunked is a checkpoint's encoding cut into chunks, with its manifest.
type Chunked struct {
	ID       cid.Cid // the manifest's CID
	Manifest *Manifest
	Data     []byte // the whole encoding
}

// Chunk returns the content of chunk i.
func (c *Chunked) Chunk(i int) []byte {
	off := i * c.Manifest.ChunkSize
	return c.Data[off : off+c.Manifest.ChunkLen(i)]
}

// Build encodes c, cuts the encoding into chunks of ChunkSize bytes and
// hashes them, using up to GOMAXPROCS goroutines. Its ID is the
// checkpoint's.
func Build(c *Checkpoint) (*Chunked, error) { return BuildSize(c, ChunkSize) }

// BuildSize is Build with another chunk size, which gives another ID:
// only ChunkSize gives the one peers agree on.
func BuildSize(c *Checkpoint, chunkSize int) (*Chunked, error) {
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("checkpoint: chunk size %d is outside [1, %d]", chunkSize, MaxChunkSize)
	}
	e, err := newEncoder(c)
	if err != nil {
		return nil, err
	}
	data := make([]byte, e.size)
	return split(data, chunkSize, func(i int, chunk []byte) { e.fill(chunk, int64(i)*int64(chunkSize)) })
}

// Split cuts an encoding into chunks of chunkSize bytes and hashes them.
// The result shares data.
func Split(data []byte, chunkSize int) (*Chunked, error) {
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("checkpoint: chunk size %d is outside [1, %d]", chunkSize, MaxChunkSize)
	}
	return split(data, chunkSize, nil)
}

// split hashes the chunks of data in parallel, calling fill first (if not
// nil) to produce each chunk's content.
func split(data []byte, chunkSize int, fill func(i int, chunk []byte)) (*Chunked, error) {
	m := &Manifest{Size: int64(len(data)), ChunkSize: chunkSize}
	n := NumChunks(m.Size, chunkSize)
	m.Chunks = make([]cid.Cid, n)
	digests := make([][32]byte, n)
	each(n, func(i int) {
		chunk := data[i*chunkSize : i*chunkSize+m.ChunkLen(i)]
		if fill != nil {
			fill(i, chunk)
		}
		digests[i] = sha256.Sum256(chunk)
	})
	for i, d := range digests {
		m.Chunks[i] = content.OfDigest(d)
	}
	id, err := m.ID()
	if err != nil {
		return nil, err
	}
	return &Chunked{ID: id, Manifest: m, Data: data}, nil
}

// each calls fn(i) for i in [0, n) on up to GOMAXPROCS goroutines and
// returns when all calls have.
func each(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// ID returns the checkpoint ID of c, as Build does, without keeping the
// encoding: each goroutine encodes a chunk at a time into its own buffer
// and hashes it.
func ID(c *Checkpoint) (cid.Cid, error) {
	e, err := newEncoder(c)
	if err != nil {
		return cid.Undef, err
	}
	m := &Manifest{Size: e.size, ChunkSize: ChunkSize}
	n := NumChunks(m.Size, ChunkSize)
	digests := make([][32]byte, n)
	var bufs sync.Pool
	each(n, func(i int) {
		b, _ := bufs.Get().(*[]byte)
		if b == nil {
			b = new([]byte)
			*b = make([]byte, ChunkSize)
		}
		chunk := (*b)[:m.ChunkLen(i)]
		e.fill(chunk, int64(i)*ChunkSize)
		digests[i] = sha256.Sum256(chunk)
		bufs.Put(b)
	})
	m.Chunks = make([]cid.Cid, n)
	for i, d := range digests {
		m.Chunks[i] = content.OfDigest(d)
	}
	return m.ID()
}

// Assemble checks chunks against m (each its CID and expected length) and
// returns the encoding they make. Errors name the chunk; a hash mismatch
// wraps ErrCorrupt.
func Assemble(m *Manifest, chunks [][]byte) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if len(chunks) != len(m.Chunks) {
		return nil, fmt.Errorf("checkpoint: %d chunks, manifest lists %d", len(chunks), len(m.Chunks))
	}
	for i, c := range chunks {
		if len(c) != m.ChunkLen(i) {
			return nil, fmt.Errorf("chunk %d (%s): %d bytes, want %d: %w", i, m.Chunks[i], len(c), m.ChunkLen(i), ErrCorrupt)
		}
	}
	errs := make([]error, len(chunks))
	each(len(chunks), func(i int) { errs[i] = content.Verify(m.Chunks[i], chunks[i]) })
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return bytes.Join(chunks, nil), nil
}
