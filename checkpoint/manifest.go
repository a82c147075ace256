package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// ChunkSize is the size of every chunk of a checkpoint but the last. It is
// part of the protocol: a checkpoint's ID is that of its manifest with this
// chunk size, so every peer must use it.
const ChunkSize = 1 << 20

// MaxChunkSize bounds the chunk size a manifest may declare.
const MaxChunkSize = 64 << 20

// MaxManifestSize bounds the length of an encoded manifest: its 24-byte
// header and 2^19 digests, enough for 512 GiB in chunks of ChunkSize.
const MaxManifestSize = 24 + 32<<19

// Errors wrapped by what this package returns.
var (
	// ErrCorrupt reports content that does not match its CID, or that
	// matches it but does not decode.
	ErrCorrupt = errors.New("content does not match its CID")
	// ErrNotFound reports an object missing from a store.
	ErrNotFound = errors.New("not found")
)

// Manifest lists the chunks of a checkpoint's encoding. Its CID is the
// checkpoint's ID.
type Manifest struct {
	Size      int64     // length of the encoding in bytes
	ChunkSize int       // length of every chunk but the last
	Chunks    []cid.Cid // CIDv1, raw codec, sha2-256 of each chunk, in order
}

const (
	manMagic       = "SHOALMF\x01"
	manifestHeader = 8 + 8 + 4 + 4 // magic, size, chunk size, count
)

// NumChunks returns the number of chunks of size bytes cut chunkSize at a
// time.
func NumChunks(size int64, chunkSize int) int {
	return int((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// ChunkLen returns the length of chunk i.
func (m *Manifest) ChunkLen(i int) int {
	return int(min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize)))
}

func (m *Manifest) check() error {
	if m.ChunkSize < 1 || m.ChunkSize > MaxChunkSize {
		return manErr("chunk_size", "%d is outside [1, %d]", m.ChunkSize, MaxChunkSize)
	}
	if m.Size < 0 {
		return manErr("size", "negative")
	}
	if n := NumChunks(m.Size, m.ChunkSize); len(m.Chunks) != n {
		return manErr("count", "%d chunks, but %d bytes in chunks of %d make %d", len(m.Chunks), m.Size, m.ChunkSize, n)
	}
	if manifestHeader+32*int64(len(m.Chunks)) > MaxManifestSize {
		return manErr("count", "%d chunks exceed the limit", len(m.Chunks))
	}
	for i, c := range m.Chunks {
		if _, err := chunkDigest(c); err != nil {
			return manErr(fmt.Sprintf("chunks[%d]", i), "%v", err)
		}
	}
	return nil
}

// MarshalBinary returns the canonical encoding of m, version 1 (integers
// little endian):
//
//	magic   "SHOALMF" and the version byte 0x01
//	size    uint64, the length of the checkpoint encoding
//	chunk   uint32, the chunk size, in [1, MaxChunkSize]
//	count   uint32, the number of chunks: ceil(size / chunk)
//	digests count × 32 bytes, the sha2-256 digest of each chunk in order
//
// A chunk's CID is CIDv1 with the raw codec and its sha2-256 multihash; the
// manifest's CID, the checkpoint's ID, is formed the same way from these
// bytes.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, manifestHeader+32*len(m.Chunks))
	b = append(b, manMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Size))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.ChunkSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Chunks)))
	for _, c := range m.Chunks {
		d, _ := chunkDigest(c)
		b = append(b, d...)
	}
	return b, nil
}

// ID returns the CID of m: the checkpoint's ID.
func (m *Manifest) ID() (cid.Cid, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return cid.Undef, err
	}
	return rawCID(sha256.Sum256(b)), nil
}

func manErr(field, format string, args ...any) error {
	return &FormatError{Format: "manifest", Field: field, Msg: fmt.Sprintf(format, args...)}
}

// DecodeManifest parses a manifest's canonical encoding (see
// Manifest.MarshalBinary), rejecting anything Manifest.MarshalBinary would
// not produce with a *FormatError.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) < manifestHeader {
		return nil, manErr("header", "%d bytes, shorter than the %d-byte header", len(b), manifestHeader)
	}
	if string(b[:7]) != manMagic[:7] {
		return nil, manErr("magic", "not a manifest")
	}
	if b[7] != manMagic[7] {
		return nil, manErr("version", "unsupported version %d", b[7])
	}
	size := binary.LittleEndian.Uint64(b[8:])
	chunk := binary.LittleEndian.Uint32(b[16:])
	count := binary.LittleEndian.Uint32(b[20:])
	if size > math.MaxInt64 {
		return nil, manErr("size", "%d is too large", size)
	}
	if chunk < 1 || chunk > MaxChunkSize {
		return nil, manErr("chunk_size", "%d is outside [1, %d]", chunk, MaxChunkSize)
	}
	if n := NumChunks(int64(size), int(chunk)); int64(count) != int64(n) {
		return nil, manErr("count", "%d chunks, but %d bytes in chunks of %d make %d", count, size, chunk, n)
	}
	if manifestHeader+32*int64(count) > MaxManifestSize {
		return nil, manErr("count", "%d chunks exceed the limit", count)
	}
	if rest := int64(len(b) - manifestHeader); rest != 32*int64(count) {
		return nil, manErr("digests", "%d bytes for %d chunks, want %d", rest, count, 32*int64(count))
	}
	m := &Manifest{Size: int64(size), ChunkSize: int(chunk), Chunks: make([]cid.Cid, count)}
	for i := range m.Chunks {
		m.Chunks[i] = rawCID([32]byte(b[manifestHeader+32*i:]))
	}
	return m, nil
}

// rawCID returns the CIDv1 (raw codec) of a sha2-256 digest.
func rawCID(d [32]byte) cid.Cid {
	h, _ := mh.Encode(d[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, h)
}

// SumCID returns the CID of data: CIDv1, raw codec, sha2-256.
func SumCID(data []byte) cid.Cid { return rawCID(sha256.Sum256(data)) }

// chunkDigest returns the digest of a CID of the form SumCID makes.
func chunkDigest(c cid.Cid) ([]byte, error) {
	if !c.Defined() {
		return nil, errors.New("undefined CID")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return nil, fmt.Errorf("CID %s is not CIDv1 raw sha2-256", c)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, err
	}
	return d.Digest, nil
}

// VerifyChunk checks that data is the content of the chunk id (a CIDv1,
// raw codec, sha2-256). A mismatch wraps ErrCorrupt.
func VerifyChunk(id cid.Cid, data []byte) error {
	want, err := chunkDigest(id)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(data); !bytes.Equal(got[:], want) {
		return fmt.Errorf("chunk %s: %w", id, ErrCorrupt)
	}
	return nil
}

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
		m.Chunks[i] = rawCID(d)
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
		m.Chunks[i] = rawCID(d)
	}
	return m.ID()
}

// Assemble checks chunks against m (each its CID and expected length) and
// returns the encoding they make. Errors name the chunk; a hash mismatch
// wraps ErrCorrupt.
func Assemble(m *Manifest, chunks [][]byte) ([]byte, error) {
	if err := m.check(); err != nil {
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
	each(len(chunks), func(i int) { errs[i] = VerifyChunk(m.Chunks[i], chunks[i]) })
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return bytes.Join(chunks, nil), nil
}
