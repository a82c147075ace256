package content

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
)

// ChunkSize is the size of every chunk but the last of the content the
// network moves by manifest. It is part of the protocol: a checkpoint's ID
// is that of its manifest with this chunk size, so every peer must use it.
const ChunkSize = 1 << 20

// MaxChunkSize bounds the chunk size a manifest may declare.
const MaxChunkSize = 64 << 20

// MaxManifestSize bounds the length of an encoded manifest: its 24-byte
// header and 2^19 digests, enough for 512 GiB in chunks of ChunkSize.
const MaxManifestSize = manifestHeader + 32<<19

// Manifest lists the chunks of some content (a checkpoint's encoding, a
// large blob) by CID. Its CID, that of its canonical encoding, names the
// content and commits to every chunk.
type Manifest struct {
	Size      int64     // length of the content in bytes
	ChunkSize int       // length of every chunk but the last
	Chunks    []cid.Cid // CIDv1, raw codec, sha2-256 of each chunk, in order
}

const (
	manMagic       = "SHOALMF\x01"
	manifestHeader = 8 + 8 + 4 + 4 // magic, size, chunk size, count
)

// FormatError reports input that does not follow a format.
type FormatError struct {
	Format string // "manifest", or a format of a package using this type
	Field  string // the header field or part of the input at fault
	Msg    string
}

func (e *FormatError) Error() string { return e.Format + ": " + e.Field + ": " + e.Msg }

// NumChunks returns the number of chunks of size bytes cut chunkSize at a
// time.
func NumChunks(size int64, chunkSize int) int {
	return int((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// ChunkLen returns the length of chunk i.
func (m *Manifest) ChunkLen(i int) int {
	return int(min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize)))
}

// ChunkOffset returns the offset of chunk i in the content.
func (m *Manifest) ChunkOffset(i int) int64 { return int64(i) * int64(m.ChunkSize) }

// Validate checks what MarshalBinary requires: a chunk size in [1,
// MaxChunkSize], a chunk count that the size and chunk size make, within
// MaxManifestSize, and CIDs of the supported kind. Problems are
// *FormatError.
func (m *Manifest) Validate() error {
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
		if err := Check(c); err != nil {
			return manErr(fmt.Sprintf("chunks[%d]", i), "%v", err)
		}
	}
	return nil
}

// MarshalBinary returns the canonical encoding of m, version 1 (integers
// little endian):
//
//	magic   "SHOALMF" and the version byte 0x01
//	size    uint64, the length of the content
//	chunk   uint32, the chunk size, in [1, MaxChunkSize]
//	count   uint32, the number of chunks: ceil(size / chunk)
//	digests count × 32 bytes, the sha2-256 digest of each chunk in order
//
// A chunk's CID is CIDv1 with the raw codec and its sha2-256 multihash; the
// manifest's CID (a checkpoint's ID) is formed the same way from these
// bytes.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, manifestHeader+32*len(m.Chunks))
	b = append(b, manMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Size))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.ChunkSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Chunks)))
	for _, c := range m.Chunks {
		d, _ := Digest(c)
		b = append(b, d[:]...)
	}
	return b, nil
}

// ID returns the CID of m, which names the content it lists.
func (m *Manifest) ID() (cid.Cid, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return cid.Undef, err
	}
	return Sum(b), nil
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
		m.Chunks[i] = OfDigest([32]byte(b[manifestHeader+32*i:]))
	}
	return m, nil
}
