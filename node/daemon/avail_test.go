package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// lyingStore serves bytes that do not hash to the CID asked for one
// object, and what its Store holds for the rest.
type lyingStore struct {
	*Store
	lie cid.Cid
}

func (s *lyingStore) Get(c cid.Cid) ([]byte, error) {
	if c.Equals(s.lie) {
		return []byte("not the payload the update names"), nil
	}
	return s.Store.Get(c)
}

// roundWatcher is a raw peer on the round's topic that keeps the latest
// Open and Close.
type roundWatcher struct {
	mu    sync.Mutex
	open  *wire.Open
	close *wire.Close
}

func (w *roundWatcher) validate(_ context.Context, _ peer.ID, data []byte) (p2p.ValidationResult, any, error) {
	_, _, body, err := open(data)
	if err != nil {
		return p2p.Reject, nil, err
	}
	m, err := wire.Unmarshal(body)
	if err != nil {
		return p2p.Reject, nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m := m.(type) {
	case *wire.Open:
		w.open = m
	case *wire.Close:
		w.close = m
	}
	return p2p.Accept, nil, nil
}

func (w *roundWatcher) get() (*wire.Open, *wire.Close) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open, w.close
}

// TestTrackerHoldsPayloads: the tracker daemon fetches the payload of an
// update from its author before the step includes it, and then serves it
// to a peer that can reach only the tracker; an update whose author
// serves bytes that do not hash to its payload CID is refused (not
// stored, not included).
func TestTrackerHoldsPayloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	spec := smallSpec()
	spec.Trackers = []string{tid.String()}
	spec.VerificationRate = 0
	spec.TargetSamples = 2 * spec.UnitSamples() // two units, both the author's
	spec.Deadline = 40 * time.Second            // longer than the test: a Close comes from the updates
	dir := t.TempDir()

	tover, err := mn.AddPeer(key, ma.StringCast("/ip4/100.64.0.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	th, tstore, err := NewHost(ctx, HostConfig{Dir: filepath.Join(dir, "tracker"), Options: p2p.LoopbackOptions(), Over: tover})
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	// The author: a raw peer whose store lies about one payload.
	aover, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	ack, err := checkpoint.OpenStore(filepath.Join(dir, "author"))
	if err != nil {
		t.Fatal(err)
	}
	astore, err := NewStore(ack, 0)
	if err != nil {
		t.Fatal(err)
	}
	good := make([]byte, 3000)
	rand.Read(good)
	p := content.Sum(good)
	if err := astore.Put(p, good); err != nil {
		t.Fatal(err)
	}
	q := content.Sum([]byte("the payload the author never serves"))
	aopts := p2p.LoopbackOptions()
	aopts.Store = &lyingStore{Store: astore, lie: q}
	ah, err := p2p.NewFromHost(aover, aopts)
	if err != nil {
		t.Fatal(err)
	}
	defer ah.Close()
	// A peer that reaches only the tracker.
	nover, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	nh, _, err := NewHost(ctx, HostConfig{Dir: filepath.Join(dir, "node"), Options: p2p.LoopbackOptions(), Over: nover})
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	for _, other := range []*p2p.Host{ah, nh} {
		if _, err := mn.LinkPeers(th.ID(), other.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(th.ID(), other.ID()); err != nil {
			t.Fatal(err)
		}
	}

	genesis := content.Sum([]byte("genesis"))
	trk, err := NewTracker(TrackerConfig{Spec: spec, Host: th, Store: tstore, Genesis: genesis, MinMembers: 1,
		Tick: 100 * time.Millisecond, FetchTimeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- trk.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	w := &roundWatcher{}
	topic, err := ah.Gossip().Join(TopicName(spec.ID()), w.validate)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(time.Now().UnixNano())
	publish := func(m wire.Msg) {
		t.Helper()
		body, err := wire.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		if _, err := topic.Publish(ctx, seal(ah.ID().String(), seq, body)); err != nil {
			t.Fatal(err)
		}
	}
	hello := &wire.Hello{Round: spec.ID(), Role: wire.RoleWorker, Step: 0, Head: genesis}
	var o *wire.Open
	err = WaitFor(ctx, 100*time.Millisecond, func() bool {
		if o, _ = w.get(); o != nil {
			return true
		}
		hello.Time = uint64(time.Now().Unix())
		publish(hello) // until the gossip mesh carries it to the tracker
		return false
	})
	if err != nil {
		t.Fatalf("no step opened: %v", err)
	}
	deal := round.Assign(spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), spec.VerificationRate)
	if len(deal) != 2 {
		t.Fatalf("the step dealt %d copies, want 2", len(deal))
	}
	for i, a := range deal {
		payload, size := p, uint64(len(good))
		if i == 1 {
			payload, size = q, 3000
		}
		publish(&wire.Update{Round: spec.ID(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: uint32(a.Unit), Replica: uint8(a.Replica),
			Samples: uint32(spec.UnitSamples()), Loss: 2.5, Raw: content.Sum(fmt.Appendf(nil, "raw/%d", a.Unit)), Residual: genesis,
			Payload: payload, Size: size})
	}
	var cl *wire.Close
	err = WaitFor(ctx, 100*time.Millisecond, func() bool {
		_, cl = w.get()
		if cl == nil {
			publish(hello)
		}
		return cl != nil
	})
	if err != nil {
		t.Fatalf("the step did not close: %v (the tracker holds the payload: %v)", err, tstore.HasBlob(p))
	}
	if len(cl.Included) != 1 || !cl.Included[0].Payload.Equals(p) {
		t.Fatalf("the Close includes %+v, want the held payload %s alone", cl.Included, p)
	}
	if !tstore.HasBlob(p) || tstore.HasBlob(q) {
		t.Fatalf("the tracker holds the good payload: %v, the lie: %v", tstore.HasBlob(p), tstore.HasBlob(q))
	}
	// The peer that reaches only the tracker fetches the payload from it.
	b, err := nh.Blobs().FetchObject(ctx, p, []peer.ID{th.ID()})
	if err != nil || !bytes.Equal(b, good) {
		t.Fatalf("fetching the payload from the tracker: %v", err)
	}
}
