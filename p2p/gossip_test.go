package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p/internal/testlog"
)

// mockHosts starts n Hosts on mn, each configured by opts(i), and links
// every pair (without connecting them).
func mockHosts(t testing.TB, mn mocknet.Mocknet, n int, opts func(i int) Options) []*Host {
	t.Helper()
	hosts := make([]*Host, n)
	for i := range hosts {
		lh, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewFromHost(lh, opts(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts[i] = h
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return hosts
}

// newMocknet returns an in-memory network that is closed after every host
// the test starts on it (hosts close first, so none of them is still
// opening streams while the network goes away).
func newMocknet(t testing.TB) mocknet.Mocknet {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	return mn
}

// connectAll connects every pair of peers once (mocknet's
// ConnectAllButSelf dials both ways, leaving two connections per pair).
func connectAll(t testing.TB, mn mocknet.Mocknet) {
	t.Helper()
	ids := mn.Peers()
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if _, err := mn.ConnectPeers(ids[i], ids[j]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testValidator accepts payloads starting with "ok", rejects "bad" and
// ignores the rest.
// testValidator accepts "ok…" (handing the reader the text after "ok:"),
// rejects "bad…" and ignores the rest.
func testValidator(_ context.Context, _ peer.ID, msg []byte) (ValidationResult, any, error) {
	switch {
	case bytes.HasPrefix(msg, []byte("ok")):
		return Accept, strings.TrimSpace(strings.TrimPrefix(string(msg), "ok:")), nil
	case bytes.HasPrefix(msg, []byte("bad")):
		return Reject, nil, errors.New("payload marked bad")
	}
	return Ignore, nil, errors.New("cannot judge yet")
}

func joinAll(t testing.TB, hosts []*Host, topic string, v Validator) []*Topic {
	t.Helper()
	out := make([]*Topic, len(hosts))
	for i, h := range hosts {
		tp, err := h.Gossip().Join(topic, v)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tp
	}
	return out
}

// waitTopicPeers waits until every topic sees want subscribed peers, so a
// publication (flooded to every subscribed peer) reaches them all.
func waitTopicPeers(t testing.TB, topics []*Topic, want int) {
	t.Helper()
	waitFor(t, 20*time.Second, "topic peers", func() bool {
		for _, tp := range topics {
			if len(tp.Peers()) < want {
				return false
			}
		}
		return true
	})
}

// expectNothing fails if any topic delivers a message within d.
func expectNothing(t testing.TB, topics []*Topic, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, tp := range topics {
		if m, err := tp.Next(ctx); err == nil {
			t.Fatalf("unexpected delivery of %q", m.Data)
		}
	}
}

func TestGossipValidatorVerdicts(t *testing.T) {
	mn := newMocknet(t)
	recs := make([]*testlog.Recorder, 4)
	hosts := mockHosts(t, mn, 4, func(i int) Options {
		recs[i] = &testlog.Recorder{}
		return loopbackOptions(recs[i])
	})
	topics := joinAll(t, hosts, "round/r1/updates", testValidator)
	connectAll(t, mn)
	waitTopicPeers(t, topics, len(topics)-1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	id, err := topics[0].Publish(ctx, []byte("ok: first"))
	if err != nil {
		t.Fatal(err)
	}
	if !id.Equals(content.Sum([]byte("ok: first"))) {
		t.Fatalf("message ID %s is not the payload's CID", id)
	}
	for i, tp := range topics[1:] {
		m, err := tp.Next(ctx)
		if err != nil {
			t.Fatalf("host %d: %v", i+1, err)
		}
		if string(m.Data) != "ok: first" || m.From != hosts[0].ID() || !m.ID.Equals(id) {
			t.Fatalf("host %d got %+v", i+1, m)
		}
		if m.Value != "first" {
			t.Fatalf("host %d: the validator's value is %#v, want %q", i+1, m.Value, "first")
		}
	}

	if _, err := topics[0].Publish(ctx, []byte("later: ignored")); err != nil {
		t.Fatal(err)
	}
	if _, err := topics[0].Publish(ctx, []byte("bad: rejected")); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, topics[1:], 500*time.Millisecond)
	for i, rec := range recs[1:] {
		if _, ok := rec.Find("gossip: rejected message", "peer="+hosts[0].ID().String(), "reason=payload marked bad"); !ok {
			t.Fatalf("host %d logged no rejection naming the sender:\n%s", i+1, rec)
		}
	}
	waitFor(t, 5*time.Second, "the sender's score to fall", func() bool {
		return hosts[1].Gossip().PeerScore(hosts[0].ID()) < 0
	})
	// An ignored message costs nothing: the peer that only sent one keeps
	// a non-negative score.
	if _, err := topics[2].Publish(ctx, []byte("later: ignored too")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if s := hosts[1].Gossip().PeerScore(hosts[2].ID()); s < 0 {
		t.Fatalf("score after an ignored message %v", s)
	}
}

func TestGossipSizeLimit(t *testing.T) {
	mn := newMocknet(t)
	hosts := mockHosts(t, mn, 2, func(int) Options { return loopbackOptions(nil) })
	topics := joinAll(t, hosts, "big", nil)
	connectAll(t, mn)
	waitTopicPeers(t, topics, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	limit := 1 << 20 // the default, set explicitly on every node
	exact := bytes.Repeat([]byte{'o'}, limit)
	if _, err := topics[0].Publish(ctx, exact); err != nil {
		t.Fatal(err)
	}
	m, err := topics[1].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != limit {
		t.Fatalf("got %d bytes", len(m.Data))
	}
	if _, err := topics[0].Publish(ctx, append(exact, 'x')); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("publish over the limit = %v", err)
	}
}

func TestPublishWaitsForMesh(t *testing.T) {
	mn := newMocknet(t)
	hosts := mockHosts(t, mn, 2, func(int) Options { return loopbackOptions(nil) })
	topics := joinAll(t, hosts, "t", nil)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := topics[0].Publish(short, []byte("nobody")); err == nil {
		t.Fatal("publish without mesh peers returned before its deadline")
	}
	connectAll(t, mn)
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	start := time.Now()
	if _, err := topics[0].Publish(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := topics[1].Next(ctx)
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("got %v %v", m, err)
	}
	t.Logf("published %v after connecting", time.Since(start).Round(time.Millisecond))
}

func TestValidatorTimeoutIgnores(t *testing.T) {
	mn := newMocknet(t)
	rec := &testlog.Recorder{}
	hosts := mockHosts(t, mn, 2, func(i int) Options {
		o := loopbackOptions(rec)
		o.Gossip.ValidatorTimeout = 100 * time.Millisecond
		return o
	})
	slow := func(ctx context.Context, _ peer.ID, _ []byte) (ValidationResult, any, error) {
		<-ctx.Done()
		return Reject, nil, ctx.Err()
	}
	topics := joinAll(t, hosts, "slow", slow)
	connectAll(t, mn)
	waitTopicPeers(t, topics, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := topics[0].Publish(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "timeout log line", func() bool {
		_, ok := rec.Find("validator timed out", hosts[0].ID().String())
		return ok
	})
	time.Sleep(1500 * time.Millisecond)
	if s := hosts[1].Gossip().PeerScore(hosts[0].ID()); s < 0 {
		t.Fatalf("a validator timeout penalised the sender: score %v", s)
	}
}

func TestJoinTwiceAndBadNames(t *testing.T) {
	mn := newMocknet(t)
	hosts := mockHosts(t, mn, 1, func(int) Options { return loopbackOptions(nil) })
	g := hosts[0].Gossip()
	tp, err := g.Join("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Join("a", nil); err == nil {
		t.Fatal("joined a topic twice")
	}
	if _, err := g.Join("", nil); err == nil {
		t.Fatal("joined an empty topic name")
	}
	if _, err := g.Join(strings.Repeat("x", maxTopicLen+1), nil); err == nil {
		t.Fatal("joined an overlong topic name")
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Join("a", nil); err != nil {
		t.Fatalf("rejoin after close: %v", err)
	}
}

func TestReplayGuard(t *testing.T) {
	g := newReplayGuard(time.Minute, 3)
	t0 := time.Unix(1000, 0)
	g.add("a", t0)
	if !g.seen("a", t0.Add(59*time.Second)) || g.seen("a", t0.Add(61*time.Second)) {
		t.Fatal("window not honoured")
	}
	if g.seen("b", t0) {
		t.Fatal("unknown ID seen")
	}
	for i := range 10 {
		g.add(fmt.Sprint(i), t0.Add(time.Second))
	}
	if g.len() > 3 {
		t.Fatalf("guard holds %d IDs, cap 3", g.len())
	}
	if !g.seen("9", t0.Add(2*time.Second)) || g.seen("0", t0.Add(2*time.Second)) {
		t.Fatal("eviction is not oldest-first")
	}
	g.add("late", t0.Add(2*time.Minute))
	if g.seen("9", t0.Add(2*time.Minute)) {
		t.Fatal("expired ID still seen")
	}
}

// TestReplayGuardOutlastsDuplicateFilter drives a topic validator directly
// with a message accepted once and delivered again, as happens when a peer
// replays it after gossipsub's duplicate filter has forgotten it.
func TestReplayGuardOutlastsDuplicateFilter(t *testing.T) {
	mn := newMocknet(t)
	rec := &testlog.Recorder{}
	hosts := mockHosts(t, mn, 1, func(int) Options { return loopbackOptions(rec) })
	g := hosts[0].Gossip()
	calls := 0
	v := g.validator("t", func(context.Context, peer.ID, []byte) (ValidationResult, any, error) {
		calls++
		return Accept, nil, nil
	})
	author := peerIDOf(newKey(t))
	msg := func(sender peer.ID) *pubsub.Message {
		return &pubsub.Message{Message: &pb.Message{From: []byte(author), Data: []byte("update"), Topic: proto.String("t")}, ReceivedFrom: sender}
	}
	ctx := context.Background()
	if r := v(ctx, author, msg(author)); r != pubsub.ValidationAccept {
		t.Fatalf("first delivery: %v", r)
	}
	relay := peerIDOf(newKey(t))
	if r := v(ctx, relay, msg(relay)); r != pubsub.ValidationIgnore {
		t.Fatalf("replay: %v", r)
	}
	if calls != 1 {
		t.Fatalf("caller's validator ran %d times, want once", calls)
	}
	if _, ok := rec.Find("ignored message", "peer="+relay.String(), "replay of a message accepted before"); !ok {
		t.Fatalf("no replay log line:\n%s", rec)
	}
}
