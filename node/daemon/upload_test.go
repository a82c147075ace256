package daemon

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/p2p"
)

// TestUploadCap: a node whose uploads are capped (shoal node join
// --max-upload) serves a checkpoint to a peer catching up no faster than
// the cap: the rate measured over a window of the transfer is at most 10%
// above it. (How close to the cap it gets depends on the machine's load,
// which a test does not judge.)
func TestUploadCap(t *testing.T) {
	const rate = 2 << 20 // bytes/s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newHost := func(name string, upload int64, boot []peer.AddrInfo) (*p2p.Host, *Store) {
		ck, err := checkpoint.OpenStore(filepath.Join(t.TempDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		st, err := NewStore(ck, 0)
		if err != nil {
			t.Fatal(err)
		}
		opts := p2p.LoopbackOptions()
		opts.Store = st
		opts.Bootstrap = boot
		opts.Blob.UploadRate = upload
		h, err := p2p.New(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, st
	}
	src, srcStore := newHost("src", rate, nil)
	dst, dstStore := newHost("dst", 0, []peer.AddrInfo{src.AddrInfo()})

	// A 12 MiB checkpoint of random values.
	r := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, 3<<20)
	for i := range w {
		w[i] = r.Float32()
	}
	id, err := srcStore.PutCheckpoint(&checkpoint.Checkpoint{Meta: map[string]string{"step": "1"},
		Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{len(w)}, Data: w}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, 50*time.Millisecond, func() bool { return len(dst.Libp2p().Network().ConnsToPeer(src.ID())) > 0 }); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if _, err := dstStore.FetchCheckpoint(ctx, dst.Blobs(), id, []peer.ID{src.ID()}); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if !dstStore.HasCheckpoint(id) {
		t.Fatal("the checkpoint did not arrive whole")
	}
	// The window is the whole transfer; the served-bytes counter moves a
	// chunk at a time, so sampling it mid-transfer would be coarse. The
	// token bucket's initial burst (a tenth of a second) is 2% of it.
	served, _ := src.Blobs().Stats()
	got := float64(served) / el.Seconds()
	t.Logf("uploaded %.1f MiB in %.2f s: %.3f MiB/s with a cap of %.3f MiB/s", float64(served)/(1<<20), el.Seconds(), got/(1<<20), float64(rate)/(1<<20))
	if got > 1.1*rate {
		t.Fatalf("upload rate %.0f B/s is over the cap %d B/s by more than 10%%", got, rate)
	}
}
