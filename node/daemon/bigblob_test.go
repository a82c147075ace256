package daemon

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// TestLargeBlob stores a blob over content.MaxObject bytes, which goes to
// disk under its manifest's CID; a peer fetches it a chunk at a time,
// refuses it when it expects another size, and reads it back; sweeps
// remove it from both once it is old.
func TestLargeBlob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst, _, srcID, _, _ := fetchPair(t, ctx, 16, 0)
	dstStore := dst.Store().(*Store)

	data := make([]byte, content.MaxObject+3*content.ChunkSize/2)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id, err := src.Store.PutBlob(data)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Equals(content.ID(data)) || id.Equals(content.Sum(data)) {
		t.Fatalf("a blob of %d bytes is named %s, want its manifest's CID %s", len(data), id, content.ID(data))
	}
	if src.Store.ObjectBytes() > 1<<20 {
		t.Fatalf("the large blob takes %d bytes of memory", src.Store.ObjectBytes())
	}
	if !src.Store.HasBlob(id) {
		t.Fatal("the store does not hold the blob it made")
	}

	if _, err := dstStore.FetchBlob(ctx, dst.Blobs(), id, int64(len(data))+1, []peer.ID{srcID}); err == nil {
		t.Fatal("a blob of another size than expected was fetched")
	}
	if dstStore.HasBlob(id) {
		t.Fatal("the refused blob is held")
	}
	dstStore.LimitBlobs(int64(len(data)) - 1)
	if _, err := dstStore.FetchBlob(ctx, dst.Blobs(), id, -1, []peer.ID{srcID}); err == nil {
		t.Fatal("a blob over the bound of LimitBlobs was fetched")
	}
	dstStore.LimitBlobs(int64(len(data)))
	n, err := dstStore.FetchBlob(ctx, dst.Blobs(), id, -1, []peer.ID{srcID})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !dstStore.HasBlob(id) {
		t.Fatalf("fetched %d bytes, held %v; want %d, held", n, dstStore.HasBlob(id), len(data))
	}
	rc, size, err := dstStore.OpenBlob(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("read back %d of %d bytes (%v), equal %v", len(got), size, err, bytes.Equal(got, data))
	}
	whole, err := dstStore.Blob(id)
	if err != nil || !bytes.Equal(whole, data) {
		t.Fatalf("Blob: %v", err)
	}

	chunks := func(s *Store) int {
		ents, _ := os.ReadDir(filepath.Join(s.ck.Dir(), "blobs", "chunks"))
		return len(ents)
	}
	if chunks(dstStore) == 0 {
		t.Fatal("no chunk of the blob on disk")
	}
	for _, s := range []*Store{src.Store, dstStore} {
		s.Sweep(1)
		if !s.HasBlob(id) {
			t.Fatal("a sweep removed a blob used in the last generation")
		}
		s.Sweep(1)
		s.Sweep(1)
		if s.HasBlob(id) || chunks(s) != 0 {
			t.Fatalf("old blob still held (%v) or %d chunks left", s.HasBlob(id), chunks(s))
		}
	}
}

// TestEvalBatchesFor: an observer measures a small model on the full 16
// batches and a model of 100M parameters on one, so that it keeps up.
func TestEvalBatchesFor(t *testing.T) {
	if n := evalBatchesFor(437_760, 64); n < 16 {
		t.Errorf("gpt-tiny: %d batches", n)
	}
	if n := evalBatchesFor(100_214_784, 1024); n != 1 {
		t.Errorf("gpt-100m: %d batches, want 1", n)
	}
}
