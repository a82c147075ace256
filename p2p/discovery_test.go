package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// spawner starts hosts on some network and restarts them in place (same
// identity, same address).
type spawner interface {
	spawn(t testing.TB, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host
	restart(t testing.TB, h *Host, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host
}

func newKey(t testing.TB) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loopbackSpawner starts real hosts on 127.0.0.1 over one transport.
type loopbackSpawner struct{ transport string }

func (s loopbackSpawner) spawn(t testing.TB, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host {
	o := loopbackOptions(nil, s.transport)
	o.Identity = key
	o.Bootstrap = bootstrap
	return newHost(t, o)
}

func (s loopbackSpawner) restart(t testing.TB, h *Host, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host {
	o := loopbackOptions(nil, s.transport)
	o.Identity = key
	o.Bootstrap = bootstrap
	o.ListenAddrs = h.Libp2p().Addrs()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 50 {
		var nh *Host
		if nh, err = New(context.Background(), o); err == nil {
			t.Cleanup(func() { nh.Close() })
			return nh
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	t.Fatalf("restart on %v: %v", o.ListenAddrs, err)
	return nil
}

// mockSpawner starts hosts on a mocknet whose links all have a latency.
type mockSpawner struct {
	mn mocknet.Mocknet
	mu sync.Mutex
	n  int
}

func (s *mockSpawner) addr(id peer.ID) ma.Multiaddr {
	for _, h := range s.mn.Hosts() {
		if h.ID() == id {
			return h.Addrs()[0]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return ma.StringCast(fmt.Sprintf("/ip4/100.64.%d.%d/tcp/4001", s.n/250, s.n%250+1))
}

func (s *mockSpawner) add(t testing.TB, key crypto.PrivKey, a ma.Multiaddr, bootstrap []peer.AddrInfo) *Host {
	lh, err := s.mn.AddPeer(key, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range s.mn.Peers() {
		if other != lh.ID() {
			if _, err := s.mn.LinkPeers(lh.ID(), other); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := loopbackOptions(nil)
	o.Bootstrap = bootstrap
	h, err := NewFromHost(lh, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func (s *mockSpawner) spawn(t testing.TB, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host {
	id, _ := peer.IDFromPrivateKey(key)
	return s.add(t, key, s.addr(id), bootstrap)
}

func (s *mockSpawner) restart(t testing.TB, h *Host, key crypto.PrivKey, bootstrap []peer.AddrInfo) *Host {
	a := h.Libp2p().Addrs()[0]
	for _, other := range s.mn.Peers() {
		if other != h.ID() {
			_ = s.mn.UnlinkPeers(h.ID(), other)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	return s.add(t, key, a, bootstrap)
}

// TestSwarmDiscovery is acceptance test 1, on an in-memory network with
// 20 ms links and on real loopback TCP and QUIC.
func TestSwarmDiscovery(t *testing.T) {
	const n = 30
	t.Run("mocknet", func(t *testing.T) {
		mn := newMocknet(t)
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: 20 * time.Millisecond})
		testSwarm(t, &mockSpawner{mn: mn}, n)
	})
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			if testing.Short() {
				t.Skip("short mode runs the in-memory variant only")
			}
			testSwarm(t, loopbackSpawner{tr}, n)
		})
	}
}

// testSwarm starts a bootstrap host and n hosts that know only it, has
// them meet at a round's rendezvous in the DHT and checks that they all
// find each other and all receive a message one of them publishes. Then it
// restarts the bootstrap host and checks that new hosts that know only it
// still join the round and receive its messages.
func testSwarm(t *testing.T, sp spawner, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const round = "bafkrei-test-round"
	const topicName = "round/" + round + "/updates"
	bootKey := newKey(t)
	boot := sp.spawn(t, bootKey, nil)
	bootInfo := []peer.AddrInfo{boot.AddrInfo()}

	start := time.Now()
	hosts := make([]*Host, n)
	topics := make([]*Topic, n)
	for i := range hosts {
		hosts[i] = sp.spawn(t, newKey(t), bootInfo)
	}
	join := func(hs []*Host) []*Topic {
		out := make([]*Topic, len(hs))
		for i, h := range hs {
			tp, err := h.Gossip().Join(topicName, nil)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = tp
			if err := h.Discovery().Join(round); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	copy(topics, join(hosts))
	ids := make([]peer.ID, n)
	for i, h := range hosts {
		ids[i] = h.ID()
	}
	// Every host finds every other through the DHT rendezvous.
	waitUntil(t, ctx, "every host to find every other", func() (bool, string) {
		missing := 0
		for _, h := range hosts {
			found := h.Discovery().RoundPeers(round)
			for _, id := range ids {
				if id != h.ID() && !slices.Contains(found, id) {
					missing++
				}
			}
		}
		return missing == 0, fmt.Sprintf("%d host pairs still unaware of each other", missing)
	})
	discovered := time.Since(start)

	// All receive a message published by one of them.
	pubStart := time.Now()
	deliverAll(t, ctx, topics[0], topics[1:], "hello from host 0")
	t.Logf("%d hosts found each other in %v; a message reached all in %v",
		n, discovered.Round(time.Millisecond), time.Since(pubStart).Round(time.Millisecond))

	// Restart the bootstrap host: same identity, same address.
	boot = sp.restart(t, boot, bootKey, nil)
	waitUntil(t, ctx, "hosts to reconnect to the restarted bootstrap host", func() (bool, string) {
		c := 0
		for _, h := range hosts {
			if h.Libp2p().Network().Connectedness(boot.ID()) == network.Connected {
				c++
			}
		}
		return c == n, fmt.Sprintf("%d of %d reconnected", c, n)
	})

	// New hosts that know only the bootstrap host still join.
	restarted := time.Now()
	fresh := make([]*Host, 3)
	for i := range fresh {
		fresh[i] = sp.spawn(t, newKey(t), bootInfo)
	}
	freshTopics := join(fresh)
	waitUntil(t, ctx, "new hosts to find the round", func() (bool, string) {
		short := 0
		for _, h := range fresh {
			found := h.Discovery().RoundPeers(round)
			for _, id := range ids {
				if !slices.Contains(found, id) {
					short++
				}
			}
		}
		return short == 0, fmt.Sprintf("%d (new host, old host) pairs not yet found", short)
	})
	deliverAll(t, ctx, topics[1], freshTopics, "hello after the restart")
	t.Logf("after the bootstrap restart, 3 new hosts found all %d and got a message in %v", n, time.Since(restarted).Round(time.Millisecond))
}

// deliverAll publishes text on from (waiting for the receivers' meshes to
// form first) and waits until every receiver has it.
func deliverAll(t *testing.T, ctx context.Context, from *Topic, to []*Topic, text string) {
	t.Helper()
	waitUntil(t, ctx, "every receiver to see topic peers", func() (bool, string) {
		for i, tp := range to {
			if len(tp.Peers()) == 0 {
				return false, fmt.Sprintf("receiver %d has no topic peers", i)
			}
		}
		return true, ""
	})
	if _, err := from.Publish(ctx, []byte(text)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(to))
	for i, tp := range to {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := tp.Next(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				if string(m.Data) == text {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("receiver %d never got %q: %v", i, text, err)
		}
	}
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, status := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %s", what, status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fakeLAN stands in for multicast DNS: every service started on it with
// the same name learns of every other, as hosts on one LAN would. The
// mDNS wire protocol is the library's; this checks what shoal does with
// what it finds.
type fakeLAN struct {
	mu       sync.Mutex
	services []*fakeMDNS
}

type fakeMDNS struct {
	lan    *fakeLAN
	h      host.Host
	name   string
	notify mdns.Notifee
	closed bool
}

func (l *fakeLAN) newService(h host.Host, name string, n mdns.Notifee) mdns.Service {
	return &fakeMDNS{lan: l, h: h, name: name, notify: n}
}

func (s *fakeMDNS) Start() error {
	s.lan.mu.Lock()
	defer s.lan.mu.Unlock()
	for _, o := range s.lan.services {
		if o.closed || o.name != s.name {
			continue
		}
		o.notify.HandlePeerFound(peer.AddrInfo{ID: s.h.ID(), Addrs: s.h.Addrs()})
		s.notify.HandlePeerFound(peer.AddrInfo{ID: o.h.ID(), Addrs: o.h.Addrs()})
	}
	s.lan.services = append(s.lan.services, s)
	return nil
}

func (s *fakeMDNS) Close() error {
	s.lan.mu.Lock()
	defer s.lan.mu.Unlock()
	s.closed = true
	return nil
}

// TestMDNSFindsLANPeers: hosts with mDNS on and no bootstrap peers
// connect to the hosts of their LAN that announce the same service name,
// and not to those of another name; with mDNS off nothing is started.
func TestMDNSFindsLANPeers(t *testing.T) {
	lan := &fakeLAN{}
	orig := newMDNS
	newMDNS = lan.newService
	t.Cleanup(func() { newMDNS = orig })
	spawn := func(mdnsOn bool, service string) *Host {
		o := loopbackOptions(nil, "tcp")
		o.Discovery.MDNS, o.Discovery.MDNSService = mdnsOn, service
		return newHost(t, o)
	}
	a, b := spawn(true, "shoal"), spawn(true, "shoal")
	other := spawn(true, "another-network")
	off := spawn(false, "shoal")
	deadline := time.Now().Add(10 * time.Second)
	for !connected(a, b) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !connected(a, b) {
		t.Fatal("two hosts on one LAN with mDNS did not connect")
	}
	if connected(a, other) || connected(b, other) || connected(a, off) || connected(b, off) {
		t.Fatal("a host connected to one of another mDNS service or with mDNS off")
	}
	lan.mu.Lock()
	n := len(lan.services)
	lan.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d mDNS services started, want 3 (none for the host with mDNS off)", n)
	}
}

func connected(a, b *Host) bool {
	return a.Libp2p().Network().Connectedness(b.Libp2p().ID()) == network.Connected
}
