package daemon

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/wire"
)

// stuckEngine trains nothing: a training job waits until the test is
// over, so the round stays in its first step. training is closed when
// the first one starts (the node's validator then holds the Open: the
// daemon stores its view before it hands out jobs).
type stuckEngine struct {
	node.Engine
	ctx      context.Context
	once     sync.Once
	training chan struct{}
}

func (e *stuckEngine) Run(j node.Job) node.Result {
	if _, ok := j.(node.TrainJob); ok {
		e.once.Do(func() { close(e.training) })
		<-e.ctx.Done()
		return node.Result{Job: j, Err: e.ctx.Err()}
	}
	return e.Engine.Run(j)
}

// listener is a raw peer on the round's topic that decodes what reaches
// it: the latest Open, the authors of the updates and how many messages
// each author's reached it.
type listener struct {
	mu      sync.Mutex
	open    *wire.Open
	updates map[string]int
	msgs    map[string]int
}

func (l *listener) validate(_ context.Context, from peer.ID, data []byte) (p2p.ValidationResult, any, error) {
	_, _, body, err := open(data)
	if err != nil {
		return p2p.Reject, nil, err
	}
	m, err := wire.Unmarshal(body)
	if err != nil {
		return p2p.Reject, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[from.String()]++
	switch m := m.(type) {
	case *wire.Open:
		l.open = m
	case *wire.Update:
		l.updates[from.String()]++
	}
	return p2p.Accept, nil, nil
}

func (l *listener) get() (o *wire.Open, updates, msgs map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, maps(l.updates), maps(l.msgs)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestJunkUpdatesNotRelayed: a peer that is not in the round floods a
// relay (a worker, then the tracker) with well-formed Updates of the
// open step, inline payloads and all. The relay's gossip validator
// ignores them: an honest peer connected to the round only through the
// relay receives none, and the relay's store keeps none of the payloads
// (the honest peer does receive the tracker's messages through it).
func TestJunkUpdatesNotRelayed(t *testing.T) {
	for _, relay := range []string{"worker", "tracker"} {
		t.Run(relay, func(t *testing.T) { junkRun(t, relay == "tracker") })
	}
}

func junkRun(t *testing.T, viaTracker bool) {
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
	spec.Deadline = 40 * time.Second // the step stays open throughout; Hellos every 4 s
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	newHost := func(name string, id crypto.PrivKey) (*p2p.Host, *Store) {
		t.Helper()
		var over host.Host
		var err error
		if id != nil {
			over, err = mn.AddPeer(id, ma.StringCast("/ip4/100.64.0.1/tcp/4001"))
		} else {
			over, err = mn.GenPeer()
		}
		if err != nil {
			t.Fatal(err)
		}
		h, st, err := NewHost(ctx, HostConfig{Dir: filepath.Join(dir, name), Options: p2p.LoopbackOptions(), Over: over})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, st
	}
	th, tstore := newHost("tracker", key)
	wh, wstore := newHost("worker", nil)
	ah, _ := newHost("junk", nil)
	hh, _ := newHost("honest", nil)

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	train, _, _ := BuiltinData()
	me, err := engine.NewModelEngine(spec, train, wstore)
	if err != nil {
		t.Fatal(err)
	}
	stuck := &stuckEngine{Engine: me, ctx: rctx, training: make(chan struct{})}
	w, err := NewPeer(PeerConfig{Spec: spec, Role: wire.RoleWorker, Dir: filepath.Join(dir, "worker"), Host: wh, Store: wstore,
		Engine: stuck, Tick: 100 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, genesis := w.Core().Head()
	trk, err := NewTracker(TrackerConfig{Spec: spec, Host: th, Store: tstore, Genesis: genesis, MinMembers: 1, Tick: 100 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	// The junk peer and the honest one reach the round only through
	// the relay.
	relay := wh
	if viaTracker {
		relay = th
	}
	for _, pair := range [][2]*p2p.Host{{th, wh}, {relay, ah}, {relay, hh}} {
		if _, err := mn.LinkPeers(pair[0].ID(), pair[1].ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(pair[0].ID(), pair[1].ID()); err != nil {
			t.Fatal(err)
		}
	}
	topic := TopicName(spec.ID())
	junk := &listener{updates: map[string]int{}, msgs: map[string]int{}}
	honest := &listener{updates: map[string]int{}, msgs: map[string]int{}}
	jt, err := ah.Gossip().Join(topic, junk.validate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hh.Gossip().Join(topic, honest.validate); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 2)
	go func() { done <- trk.Run(rctx) }()
	go func() { done <- w.Run(rctx) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()

	// The worker holds the Open (it started training its unit) and the
	// junk peer has it too.
	err = WaitFor(ctx, 50*time.Millisecond, func() bool {
		o, _, _ := junk.get()
		select {
		case <-stuck.training:
			return o != nil
		default:
			return false
		}
	})
	if err != nil {
		o, _, msgs := junk.get()
		t.Fatalf("the step did not open: %v (the junk peer has %v, messages %v; the worker's status %+v)", err, o, msgs, w.Status())
	}
	o, _, _ := junk.get()
	if o.Units == 0 || !slices.Contains(o.Members, wh.ID().String()) || slices.Contains(o.Members, ah.ID().String()) {
		t.Fatalf("the Open: %+v", o)
	}

	// Junk for every copy of the open step, 64 KiB each.
	relayIn := relay.Gossip().Stats().Bytes
	const floods = 60
	var payloads []cid.Cid
	seq := uint64(time.Now().UnixNano())
	for i := range floods {
		data := make([]byte, 64<<10)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		id := content.Sum(data)
		u := &wire.Update{Round: spec.ID(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: uint32(i) % o.Units, Replica: uint8(i/int(o.Units)) % 2,
			Samples: uint32(spec.UnitSamples()), Raw: id, Residual: id, Payload: id, Size: uint64(len(data)), Data: data}
		body, err := wire.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = jt.Publish(pctx, seal(ah.ID().String(), seq, body))
		pcancel()
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, id)
	}
	// The flood reaches the relay (most of it: a gossip queue may drop
	// some).
	err = WaitFor(ctx, 50*time.Millisecond, func() bool { return relay.Gossip().Stats().Bytes-relayIn >= floods*64<<10/2 })
	if err != nil {
		t.Fatalf("the relay received %d bytes of gossip since the flood began, less than half the junk: %v", relay.Gossip().Stats().Bytes-relayIn, err)
	}
	// Let the flood pass the relay, then wait for a message of the round
	// that the relay sends or forwards after the flood (the worker's
	// next Hello) to reach the honest peer.
	_, _, before := honest.get()
	time.Sleep(time.Second)
	err = WaitFor(ctx, 50*time.Millisecond, func() bool {
		_, _, msgs := honest.get()
		return msgs[wh.ID().String()] > before[wh.ID().String()]
	})
	if err != nil {
		t.Fatalf("no message of the worker reached the honest peer after the flood: %v", err)
	}
	_, updates, msgs := honest.get()
	if n := updates[ah.ID().String()]; n > 0 {
		t.Errorf("the honest peer received %d of the junk peer's %d updates through the %s", n, floods, map[bool]string{false: "worker", true: "tracker"}[viaTracker])
	}
	if msgs[th.ID().String()] == 0 {
		t.Errorf("the honest peer received no message of the tracker")
	}
	kept := 0
	for _, id := range payloads {
		if wstore.HasBlob(id) || tstore.HasBlob(id) {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of %d junk payloads were stored", kept, floods)
	}
	t.Logf("the honest peer received %v messages (by author), updates %v", msgs, updates)
}
