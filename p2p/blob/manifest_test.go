package blob

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// testChunk is the small chunk size of most tests.
const testChunk = 1 << 10

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutReadAllRoundTrip(t *testing.T) {
	const cs = testChunk
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
		if int(m.Size) != n || len(m.Chunks) != content.NumChunks(int64(n), cs) {
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
		enc, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("n=%d: re-encoding differs (%v)", n, err)
		}
	}
}
