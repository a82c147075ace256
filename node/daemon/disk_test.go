package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
)

// randomCheckpoint is a checkpoint of n random floats, different for
// every seed.
func randomCheckpoint(n int, seed uint64) *checkpoint.Checkpoint {
	r := rand.New(rand.NewPCG(seed, 1))
	w := make([]float32, n)
	for i := range w {
		w[i] = r.Float32()
	}
	return &checkpoint.Checkpoint{Meta: map[string]string{"step": fmt.Sprint(seed)}, Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{n}, Data: w}}}
}

// TestDiskCapWithinOneCheckpoint writes checkpoints step after step into
// a store capped at four and a half checkpoints that keeps three, as a
// node does (the head labelled, a collection every third step): the
// disk never holds more than the cap, not even between collections,
// and every write succeeds. A cap that cannot hold what is kept plus the
// new checkpoint refuses the write with ErrDiskFull, writing nothing; so
// does a fetch into it.
func TestDiskCapWithinOneCheckpoint(t *testing.T) {
	const n = 64 << 10 // 256 KiB of floats per checkpoint
	ck, err := checkpoint.OpenStore(filepath.Join(t.TempDir(), "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(ck, 0)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(n * 4)
	const keep = 3
	limit := size*9/2 + 64<<10
	if err := st.LimitDisk(limit, keep); err != nil {
		t.Fatal(err)
	}
	peak := int64(0)
	for step := uint64(1); step <= 12; step++ {
		id, err := st.PutCheckpoint(randomCheckpoint(n, step))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if err := ck.SetLabel("head", id); err != nil {
			t.Fatal(err)
		}
		if step%keep == 0 {
			if _, err := ck.GC(keep); err != nil {
				t.Fatal(err)
			}
		}
		used, err := dirBytes(ck.Dir())
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, used)
		if used > limit {
			t.Errorf("step %d: the checkpoints take %d bytes on disk, over the cap of %d", step, used, limit)
		}
		if !st.HasCheckpoint(id) {
			t.Errorf("step %d: the checkpoint just written is not whole", step)
		}
	}
	t.Logf("peak %d bytes for a cap of %d (checkpoints of %d bytes, %d kept)", peak, limit, size, keep)

	// Room for one checkpoint only, yet one kept: the next write would
	// need two.
	if err := st.LimitDisk(size*3/2, 1); err != nil {
		t.Fatal(err)
	}
	before, _ := dirBytes(ck.Dir())
	_, err = st.PutCheckpoint(randomCheckpoint(n, 100))
	if !errors.Is(err, ErrDiskFull) || !IsDiskFull(err) {
		t.Fatalf("a checkpoint over the cap: got %v, want ErrDiskFull", err)
	}
	if after, _ := dirBytes(ck.Dir()); after > before || after > size*3/2 {
		t.Errorf("the refused write left %d bytes on disk (%d before, cap %d)", after, before, size*3/2)
	}

	t.Run("fetch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, dst, _, srcID, id, _ := fetchPair(t, ctx, n, 0)
		dstStore := dst.Store().(*Store)
		limit := size / 2
		if err := dstStore.LimitDisk(limit, 1); err != nil {
			t.Fatal(err)
		}
		_, err := dstStore.FetchCheckpoint(ctx, dst.Blobs(), id, []peer.ID{srcID})
		if !IsDiskFull(err) {
			t.Fatalf("fetching a checkpoint over the cap: got %v, want a disk-full error", err)
		}
		if used, _ := dirBytes(dstStore.Checkpoints().Dir()); used > limit {
			t.Errorf("the fetch left %d bytes on disk, over the cap of %d", used, limit)
		}
	})
}
