package blob

import (
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Sizes of what the exchange moves.
const (
	// DefaultChunkSize is the chunk size of Put and Import when none is
	// given: content.ChunkSize, that of checkpoints.
	DefaultChunkSize = content.ChunkSize
	// MaxObjectSize is the largest object (chunk or manifest) the wire
	// protocol carries, so the largest chunk size Fetch accepts.
	MaxObjectSize = 16 << 20
	// maxManifestWire is the largest manifest Fetch asks for: one that
	// fits in a wire object (2^19 chunks less a few, 512 GiB at the
	// default chunk size).
	maxManifestWire = min(content.MaxManifestSize, MaxObjectSize)
)

// Manifest is the one chunk manifest format, package content's: a blob's
// root CID is its manifest's CID, which commits to every chunk. Checkpoints
// are blobs whose manifest's chunk size is content.ChunkSize.
type Manifest = content.Manifest

// checkChunkSize checks a chunk size of Put or Import.
func checkChunkSize(op string, chunkSize int) error {
	if chunkSize < 1 || chunkSize > MaxObjectSize {
		return fmt.Errorf("blob %s: chunk size %d outside [1, %d]", op, chunkSize, MaxObjectSize)
	}
	return nil
}

// Put splits data into chunks of chunkSize bytes (DefaultChunkSize if 0),
// stores every chunk and the manifest in s, and returns the blob's root
// CID. The store may keep slices of data, which must not change afterwards.
func Put(s Store, data []byte, chunkSize int) (cid.Cid, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if err := checkChunkSize("put", chunkSize); err != nil {
		return cid.Undef, err
	}
	m := &Manifest{Size: int64(len(data)), ChunkSize: chunkSize}
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(off+chunkSize, len(data))]
		c := content.Sum(chunk)
		if err := s.PutVerified(c, chunk); err != nil {
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
	if err := checkChunkSize("import", chunkSize); err != nil {
		return cid.Undef, err
	}
	m := &Manifest{ChunkSize: chunkSize}
	for {
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			chunk := buf[:n]
			c := content.Sum(chunk)
			if perr := s.PutVerified(c, chunk); perr != nil {
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
	root, err := s.PutManifest(m)
	if err != nil {
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
	return content.DecodeManifest(b)
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
