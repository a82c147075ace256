package blob

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Chunk sizes and manifest bounds.
const (
	DefaultChunkSize = 1 << 20
	MinChunkSize     = 1 << 10
	MaxChunkSize     = 16 << 20
	// MaxChunks is the most chunks one manifest lists: 64 GiB at the
	// default chunk size, 1 TiB at the largest.
	MaxChunks = 1 << 16
	// MaxManifestSize is the size of the largest valid manifest.
	MaxManifestSize = len(manifestMagic) + 2*binary.MaxVarintLen64 + MaxChunks*sha256.Size
	// MaxObjectSize is the largest object (chunk or manifest) the wire
	// protocol carries.
	MaxObjectSize = MaxChunkSize
)

// manifestMagic opens every manifest; the last byte is the format version.
const manifestMagic = "shoalbm\x01"

// A Manifest describes a blob stored as fixed-size chunks: every chunk but
// the last holds ChunkSize bytes, and Chunks lists the chunks' CIDs in order.
// The blob's root CID is the CID of the manifest's canonical encoding, so it
// commits to every chunk.
//
// Encoding: the 8 bytes "shoalbm\x01", Size and ChunkSize as minimal
// unsigned varints, then each chunk's 32-byte sha2-256 digest. The number of
// chunks is implied by Size and ChunkSize.
type Manifest struct {
	Size      int64
	ChunkSize int
	Chunks    []cid.Cid
}

// chunkCount is the number of chunks a blob of size bytes needs.
func chunkCount(size int64, chunkSize int) int64 {
	if size == 0 {
		return 0
	}
	return (size-1)/int64(chunkSize) + 1
}

// ChunkLen returns the length of chunk i.
func (m *Manifest) ChunkLen(i int) int {
	if i < len(m.Chunks)-1 {
		return m.ChunkSize
	}
	return int(m.Size - int64(i)*int64(m.ChunkSize))
}

// Validate checks the manifest's shape: chunk size in range, chunk count
// matching the size, every CID of a supported kind.
func (m *Manifest) Validate() error {
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("blob manifest: chunk size %d outside [%d, %d]", m.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if m.Size < 0 || m.Size > int64(MaxChunks)*int64(m.ChunkSize) {
		return fmt.Errorf("blob manifest: size %d outside [0, %d]", m.Size, int64(MaxChunks)*int64(m.ChunkSize))
	}
	if n := chunkCount(m.Size, m.ChunkSize); int64(len(m.Chunks)) != n {
		return fmt.Errorf("blob manifest: %d chunks listed, size %d needs %d", len(m.Chunks), m.Size, n)
	}
	for i, c := range m.Chunks {
		if err := CheckCID(c); err != nil {
			return fmt.Errorf("blob manifest: chunk %d: %w", i, err)
		}
	}
	return nil
}

// Encode returns the canonical encoding of a valid manifest.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(manifestMagic)+2*binary.MaxVarintLen64+len(m.Chunks)*sha256.Size)
	out = append(out, manifestMagic...)
	out = binary.AppendUvarint(out, uint64(m.Size))
	out = binary.AppendUvarint(out, uint64(m.ChunkSize))
	for _, c := range m.Chunks {
		d, _ := digestOf(c)
		out = append(out, d[:]...)
	}
	return out, nil
}

// Root returns the blob's root CID: the CID of the manifest's encoding.
func (m *Manifest) Root() (cid.Cid, error) {
	b, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return Sum(b), nil
}

// ErrBadManifest wraps every decoding failure.
var ErrBadManifest = errors.New("blob: malformed manifest")

// DecodeManifest parses a manifest's canonical encoding. It rejects
// anything else: a wrong magic or version, non-minimal varints, a size or
// chunk size out of range, a length that does not match the chunk count.
func DecodeManifest(data []byte) (*Manifest, error) {
	bad := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxManifestSize {
		return bad("%d bytes exceeds the %d-byte limit", len(data), MaxManifestSize)
	}
	if len(data) < len(manifestMagic) || string(data[:len(manifestMagic)]) != manifestMagic {
		return bad("missing magic")
	}
	rest := data[len(manifestMagic):]
	size, n, err := uvarint(rest)
	if err != nil {
		return bad("size: %v", err)
	}
	rest = rest[n:]
	chunkSize, n, err := uvarint(rest)
	if err != nil {
		return bad("chunk size: %v", err)
	}
	rest = rest[n:]
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return bad("chunk size %d outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	if size > uint64(MaxChunks)*chunkSize {
		return bad("size %d exceeds %d chunks of %d bytes", size, MaxChunks, chunkSize)
	}
	count := chunkCount(int64(size), int(chunkSize))
	if int64(len(rest)) != count*sha256.Size {
		return bad("%d digest bytes for %d chunks", len(rest), count)
	}
	m := &Manifest{Size: int64(size), ChunkSize: int(chunkSize), Chunks: make([]cid.Cid, count)}
	for i := range m.Chunks {
		var d [sha256.Size]byte
		copy(d[:], rest[i*sha256.Size:])
		m.Chunks[i] = cidOfDigest(d)
	}
	return m, nil
}

var (
	errVarintOverflow = errors.New("varint overflows 64 bits")
	errVarintShort    = errors.New("truncated varint")
	errVarintLong     = errors.New("varint not minimally encoded")
)

// uvarint decodes a minimally encoded unsigned varint.
func uvarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, errVarintShort
	case n < 0:
		return 0, 0, errVarintOverflow
	case n > 1 && b[n-1] == 0:
		return 0, 0, errVarintLong
	}
	return v, n, nil
}

// readUvarint reads a minimally encoded unsigned varint from r.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, errVarintOverflow
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, errVarintLong
			}
			return v, nil
		}
	}
	return 0, errVarintOverflow
}

// Put splits data into chunks of chunkSize bytes (DefaultChunkSize if 0),
// stores every chunk and the manifest in s, and returns the blob's root
// CID. The store may keep slices of data, which must not change afterwards.
func Put(s Store, data []byte, chunkSize int) (cid.Cid, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	m := &Manifest{Size: int64(len(data)), ChunkSize: chunkSize}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return cid.Undef, fmt.Errorf("blob put: chunk size %d outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(off+chunkSize, len(data))]
		c := Sum(chunk)
		if err := s.Put(c, chunk); err != nil {
			return cid.Undef, fmt.Errorf("blob put: %w", err)
		}
		m.Chunks = append(m.Chunks, c)
	}
	return putManifest(s, m)
}

// Import reads r to its end and stores it like Put, reading one chunk at a
// time.
func Import(s Store, r io.Reader, chunkSize int) (cid.Cid, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return cid.Undef, fmt.Errorf("blob import: chunk size %d outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	m := &Manifest{ChunkSize: chunkSize}
	for {
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			chunk := buf[:n]
			c := Sum(chunk)
			if perr := s.Put(c, chunk); perr != nil {
				return cid.Undef, fmt.Errorf("blob import: %w", perr)
			}
			m.Chunks = append(m.Chunks, c)
			m.Size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("blob import: %w", err)
		}
	}
	return putManifest(s, m)
}

func putManifest(s Store, m *Manifest) (cid.Cid, error) {
	b, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	root := Sum(b)
	if err := s.Put(root, b); err != nil {
		return cid.Undef, fmt.Errorf("blob put manifest: %w", err)
	}
	return root, nil
}

// LoadManifest reads and decodes the manifest of root from s.
func LoadManifest(s Store, root cid.Cid) (*Manifest, error) {
	b, err := s.Get(root)
	if err != nil {
		return nil, err
	}
	return DecodeManifest(b)
}

// WriteTo writes the blob root, held complete in s, to w.
func WriteTo(s Store, root cid.Cid, w io.Writer) (int64, error) {
	m, err := LoadManifest(s, root)
	if err != nil {
		return 0, err
	}
	var total int64
	for i, c := range m.Chunks {
		b, err := s.Get(c)
		if err != nil {
			return total, fmt.Errorf("blob %s chunk %d: %w", root, i, err)
		}
		if len(b) != m.ChunkLen(i) {
			return total, fmt.Errorf("blob %s chunk %d: stored %d bytes, manifest says %d", root, i, len(b), m.ChunkLen(i))
		}
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// ReadAll returns the blob root, held complete in s, as one slice.
func ReadAll(s Store, root cid.Cid) ([]byte, error) {
	m, err := LoadManifest(s, root)
	if err != nil {
		return nil, err
	}
	buf := &sliceWriter{b: make([]byte, 0, m.Size)}
	if _, err := WriteTo(s, root, buf); err != nil {
		return nil, err
	}
	return buf.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
