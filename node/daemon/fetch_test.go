package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/p2p/blob"
)

// countingStore is a provider's store that counts the objects peers ask
// it for and, once it has served chunks chunks (if chunks >= 0), serves no
// more of them, as if the provider went away mid-fetch.
type countingStore struct {
	*Store
	mu     sync.Mutex
	gets   map[cid.Cid]int
	chunks int
}

func (s *countingStore) Get(c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[c]++
	b, err := s.Store.Get(c)
	if err != nil || s.chunks < 0 {
		return b, err
	}
	if _, merr := content.DecodeManifest(b); merr == nil {
		return b, nil // the manifest, not a chunk
	}
	if s.chunks == 0 {
		return nil, fmt.Errorf("%s: %w", c, content.ErrNotFound)
	}
	s.chunks--
	return b, nil
}

// take returns the counts so far and starts again from zero.
func (s *countingStore) take() map[cid.Cid]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gets
	s.gets = map[cid.Cid]int{}
	return g
}

// fetchPair starts a providing and a fetching host on loopback, the
// fetcher's in-memory objects bounded by maxObjects, and a checkpoint of
// n random floats at the provider.
func fetchPair(t *testing.T, ctx context.Context, n int, maxObjects int64) (src *countingStore, dst *p2p.Host, dstDir string, srcID peer.ID, id cid.Cid, ck *checkpoint.Checkpoint) {
	t.Helper()
	newHost := func(name string, store func(*Store) blob.Store, max int64, boot []peer.AddrInfo) (*p2p.Host, *Store, string) {
		dir := filepath.Join(t.TempDir(), name)
		ck, err := checkpoint.OpenStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		st, err := NewStore(ck, max)
		if err != nil {
			t.Fatal(err)
		}
		opts := p2p.LoopbackOptions()
		opts.Store = store(st)
		opts.Bootstrap = boot
		h, err := p2p.New(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, st, dir
	}
	var srcStore *Store
	srcHost, srcStore, _ := newHost("src", func(s *Store) blob.Store {
		src = &countingStore{Store: s, gets: map[cid.Cid]int{}, chunks: -1}
		return src
	}, 0, nil)
	dst, _, dstDir = newHost("dst", func(s *Store) blob.Store { return s }, maxObjects, []peer.AddrInfo{srcHost.AddrInfo()})

	r := rand.New(rand.NewPCG(3, 4))
	w := make([]float32, n)
	for i := range w {
		w[i] = r.Float32()
	}
	ck = &checkpoint.Checkpoint{Meta: map[string]string{"step": "7"}, Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{n}, Data: w}}}
	id, err := srcStore.PutCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { return len(dst.Libp2p().Network().ConnsToPeer(srcHost.ID())) > 0 }); err != nil {
		t.Fatal(err)
	}
	return src, dst, dstDir, srcHost.ID(), id, ck
}

func sameTensors(t *testing.T, got, want *checkpoint.Checkpoint) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) || !slices.Equal(got.Tensors[0].Data, want.Tensors[0].Data) || got.Meta["step"] != want.Meta["step"] {
		t.Fatal("the fetched checkpoint differs from the provider's")
	}
}

// TestFetchCheckpointLargerThanMemory fetches a checkpoint four times
// larger than the fetching node's in-memory object store (NewStore's
// bound, ErrFull beyond it, which the exchange's fetches filled before
// the checkpoint moved to disk): it lands on disk, verified, and nothing
// of it stays in memory.
func TestFetchCheckpointLargerThanMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const budget = 2 << 20
	_, dst, dstDir, srcID, id, want := fetchPair(t, ctx, 2<<20, budget) // 8 MiB of floats
	dstStore := dst.Store().(*Store)

	ch, err := checkpoint.Build(want)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Manifest.Size <= 4*budget {
		t.Fatalf("checkpoint of %d bytes does not exceed four times the %d-byte budget", ch.Manifest.Size, budget)
	}
	// The in-memory route cannot take it.
	if _, err := blob.Put(dstStore, ch.Data, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("storing the checkpoint in memory: %v, want ErrFull", err)
	}
	dstStore.Sweep(0)
	if dstStore.ObjectBytes() != 0 {
		t.Fatal("sweep left objects")
	}

	res, err := dstStore.FetchCheckpoint(ctx, dst.Blobs(), id, []peer.ID{srcID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != len(ch.Manifest.Chunks) || res.Size != ch.Manifest.Size {
		t.Fatalf("fetched %d of %d chunks, %d bytes", res.Fetched, len(ch.Manifest.Chunks), res.Size)
	}
	if !dstStore.HasCheckpoint(id) {
		t.Fatal("the checkpoint is not recorded as whole")
	}
	if n := dstStore.ObjectBytes(); n != 0 {
		t.Fatalf("%d bytes of the fetch stayed in memory", n)
	}
	// On disk, verified: a store opened afresh on the directory lists it
	// (List hashes every chunk) and reads it back.
	ck, err := checkpoint.OpenStore(dstDir)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ck.List()
	if err != nil || len(infos) != 1 || !infos[0].ID.Equals(id) {
		t.Fatalf("store on disk lists %v (%v), want %s", infos, err, id)
	}
	got, err := ck.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, got, want)
}

// TestFetchCheckpointResumes cuts a checkpoint's fetch short (the provider
// serves a few chunks, then no more), restarts it on a store opened afresh on the same directory (as a
// restarted node would), and counts the requests at the provider: the
// second fetch asks for the missing chunks only, each once, and not for
// the manifest.
func TestFetchCheckpointResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst, dstDir, srcID, id, want := fetchPair(t, ctx, 3<<20, 0) // 12 MiB of floats
	ck, err := checkpoint.OpenStore(dstDir)
	if err != nil {
		t.Fatal(err)
	}

	const limit = 4
	src.mu.Lock()
	src.chunks = limit
	src.mu.Unlock()
	_, err = dst.Blobs().FetchInto(ctx, ck.Objects(), id, []peer.ID{srcID})
	if err == nil {
		t.Fatal("the fetch from a provider that stops serving succeeded")
	}
	t.Logf("cut fetch: %v", err)
	src.mu.Lock()
	src.chunks = -1
	src.mu.Unlock()
	first := src.take()

	// The node restarts: a new store on the same directory.
	ck, err = checkpoint.OpenStore(dstDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ck.Manifest(id)
	if err != nil {
		t.Fatalf("manifest not kept by the cut fetch: %v", err)
	}
	missing, err := ck.Missing(id)
	if err != nil {
		t.Fatal(err)
	}
	if have := len(m.Chunks) - len(missing); have != limit {
		t.Fatalf("after the cut %d of %d chunks are on disk, want %d", have, len(m.Chunks), limit)
	}
	st, err := NewStore(ck, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.FetchCheckpoint(ctx, dst.Blobs(), id, []peer.ID{srcID})
	if err != nil {
		t.Fatal(err)
	}
	second := src.take()
	t.Logf("%d chunks: the cut fetch asked for %d objects, the resumed one for %d (%d missing)", len(m.Chunks), len(first), len(second), len(missing))
	if second[id] != 0 {
		t.Error("the resumed fetch asked for the manifest again")
	}
	for _, c := range missing {
		if second[c] != 1 {
			t.Errorf("missing chunk %s asked for %d times", c, second[c])
		}
	}
	if len(second) != len(missing) || res.Fetched != len(missing) {
		t.Errorf("resumed fetch asked for %d objects and fetched %d chunks; %d were missing", len(second), res.Fetched, len(missing))
	}
	got, err := st.Checkpoint(id)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, got, want)
}
