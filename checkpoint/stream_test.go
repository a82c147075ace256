package checkpoint

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// TestPutStreamMatchesPut checks that a checkpoint written a chunk at a
// time has the ID, chunks and bytes of one built whole, and that Load and
// Get read it back bit for bit.
func TestPutStreamMatchesPut(t *testing.T) {
	c := testCheckpoint(3, 64, 32, 96, 3) // several chunks
	want, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Manifest.Chunks) < 2 {
		t.Fatalf("the test checkpoint has %d chunks; it needs several", len(want.Manifest.Chunks))
	}
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.PutStream(c)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Equals(want.ID) {
		t.Fatalf("PutStream gave %s, Build %s", id, want.ID)
	}
	r, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want.Data) {
		t.Fatalf("Open read %d bytes (%v), want the %d of the encoding", len(got), err, len(want.Data))
	}
	back, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ID(back); !again.Equals(id) {
		t.Fatalf("Get read back a checkpoint with ID %s, want %s", again, id)
	}
	skipped := 0
	_, err = s.Load(id, func(name string, shape []int) ([]float32, error) {
		if IsState(name) {
			skipped++
			return nil, nil
		}
		tt, _ := c.Tensor(name)
		v := make([]float32, len(tt.Data))
		t.Cleanup(func() {
			if !slices.Equal(v, tt.Data) {
				t.Errorf("Load read %s wrongly", name)
			}
		})
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if skipped == 0 {
		t.Error("Load offered no state tensor to skip")
	}
}

// TestLoadRefusesDamage checks that a damaged chunk fails Load and Get
// with ErrCorrupt, and that a buffer of the wrong size is refused.
func TestLoadRefusesDamage(t *testing.T) {
	c := testCheckpoint(4, 64, 32, 96, 3)
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.PutStream(c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Load(id, func(name string, shape []int) ([]float32, error) { return make([]float32, 1), nil })
	if err == nil {
		t.Fatal("Load filled a buffer of the wrong size")
	}
	m, _ := s.Manifest(id)
	last := m.Chunks[len(m.Chunks)-1]
	b, _ := os.ReadFile(s.chunkPath(last))
	b[len(b)/2] ^= 1
	if err := os.WriteFile(s.chunkPath(last), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged checkpoint: %v, want ErrCorrupt", err)
	}
}

// TestWriteFillError checks that an error of fill stops Write, is
// returned, and lists nothing.
func TestWriteFillError(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err = s.Write(3*ChunkSize+5, func(dst []byte, off int64) error {
		if off >= 2*ChunkSize {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want the fill's error", err)
	}
	if ids, _ := s.ids("manifests"); len(ids) != 0 {
		t.Fatalf("a failed Write left manifests %v", ids)
	}
	data := make([]byte, 2*ChunkSize+7)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	id, err := s.Write(int64(len(data)), func(dst []byte, off int64) error { copy(dst, data[off:]); return nil })
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := Split(data, ChunkSize)
	if !id.Equals(ch.ID) {
		t.Fatalf("Write named the content %s, Split %s", id, ch.ID)
	}
}
