package blob

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutReadAllRoundTrip(t *testing.T) {
	const cs = MinChunkSize
	for _, n := range []int{0, 1, cs - 1, cs, cs + 1, 3*cs + 17} {
		data := randBytes(uint64(n), n)
		s := NewMemStore()
		root, err := Put(s, data, cs)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		got, err := ReadAll(s, root)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		m, err := LoadManifest(s, root)
		if err != nil {
			t.Fatal(err)
		}
		if int(m.Size) != n || len(m.Chunks) != int(chunkCount(int64(n), cs)) {
			t.Fatalf("n=%d: manifest size %d chunks %d", n, m.Size, len(m.Chunks))
		}
		// Import from a reader gives the same root.
		s2 := NewMemStore()
		root2, err := Import(s2, bytes.NewReader(data), cs)
		if err != nil {
			t.Fatal(err)
		}
		if !root2.Equals(root) {
			t.Fatalf("n=%d: Import root %s, Put root %s", n, root2, root)
		}
		// The encoding is canonical.
		b, _ := s.Get(root)
		enc, err := m.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("n=%d: re-encoding differs (%v)", n, err)
		}
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	s := NewMemStore()
	root, err := Put(s, randBytes(1, 3*MinChunkSize), MinChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := s.Get(root)
	hdr := []byte(manifestMagic)
	withHeader := func(size, cs uint64, digests int) []byte {
		b := append([]byte{}, hdr...)
		b = binary.AppendUvarint(b, size)
		b = binary.AppendUvarint(b, cs)
		return append(b, make([]byte, 32*digests)...)
	}
	cases := map[string][]byte{
		"empty":           nil,
		"bad magic":       append([]byte("shoalbm\x02"), good[8:]...),
		"truncated":       good[:len(good)-1],
		"trailing":        append(append([]byte{}, good...), 0),
		"chunk too small": withHeader(10, MinChunkSize-1, 1),
		"chunk too large": withHeader(10, MaxChunkSize+1, 1),
		"too many chunks": withHeader(uint64(MaxChunks+1)*MinChunkSize, MinChunkSize, 0),
		"absurd size":     withHeader(1<<62, MaxChunkSize, 0),
		"count mismatch":  withHeader(2*MinChunkSize, MinChunkSize, 1),
		"overlong varint": append(append(append([]byte{}, hdr...), 0x80, 0x00), binary.AppendUvarint(nil, MinChunkSize)...),
		"varint overflow": append(append([]byte{}, hdr...), bytes.Repeat([]byte{0xff}, 11)...),
		"over size limit": make([]byte, MaxManifestSize+1),
		"only magic":      hdr,
		"size no chunksz": append(append([]byte{}, hdr...), 5),
	}
	for name, b := range cases {
		if _, err := DecodeManifest(b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: DecodeManifest = %v, want ErrBadManifest", name, err)
		}
	}
	if _, err := DecodeManifest(good); err != nil {
		t.Fatal(err)
	}
}
