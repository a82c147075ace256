package p2p

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p/blob"
	"github.com/shoal-network/shoal/p2p/internal/testlog"
)

// loopbackOptions are LoopbackOptions logging to rec (if not nil), listening
// on the given transports ("tcp", "quic").
func loopbackOptions(rec *testlog.Recorder, transports ...string) Options {
	o := LoopbackOptions()
	if rec != nil {
		o.Logger = rec.Logger()
	}
	if len(transports) > 0 {
		o.ListenAddrs = nil
		for _, tr := range transports {
			switch tr {
			case "tcp":
				o.ListenAddrs = append(o.ListenAddrs, ma.StringCast("/ip4/127.0.0.1/tcp/0"))
			case "quic":
				o.ListenAddrs = append(o.ListenAddrs, ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
			}
		}
	}
	return o
}

func newHost(t testing.TB, opts Options) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostListensOnLoopbackOnly(t *testing.T) {
	h := newHost(t, loopbackOptions(nil))
	var tcp, quic bool
	for _, a := range h.Libp2p().Addrs() {
		ip, err := manet.ToIP(a)
		if err != nil || !ip.IsLoopback() {
			t.Fatalf("listening on non-loopback address %s", a)
		}
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = true
		}
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = true
		}
	}
	if !tcp || !quic {
		t.Fatalf("addresses %v lack TCP or QUIC", h.Libp2p().Addrs())
	}
	for _, a := range h.P2PAddrs() {
		if !strings.HasSuffix(a.String(), "/p2p/"+h.ID().String()) {
			t.Fatalf("P2PAddrs entry %s lacks the peer ID", a)
		}
	}
}

func TestBootstrapOverEachTransport(t *testing.T) {
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			boot := newHost(t, loopbackOptions(nil, tr))
			o := loopbackOptions(nil, tr)
			o.Bootstrap = []peer.AddrInfo{boot.AddrInfo()}
			h := newHost(t, o)
			waitFor(t, 10*time.Second, "bootstrap connection", func() bool {
				return h.Libp2p().Network().Connectedness(boot.ID()) == network.Connected
			})
			conns := h.Libp2p().Network().ConnsToPeer(boot.ID())
			want := map[string]int{"tcp": ma.P_TCP, "quic": ma.P_QUIC_V1}[tr]
			if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(want); err != nil {
				t.Fatalf("connection over %s, want %s", conns[0].RemoteMultiaddr(), tr)
			}
			if !h.Libp2p().ConnManager().IsProtected(boot.ID(), tagBootstrap) {
				t.Fatal("bootstrap peer not protected from connection trimming")
			}
		})
	}
}

func TestReachabilityInPlainWords(t *testing.T) {
	h := newHost(t, loopbackOptions(nil))
	if got := h.Reachability().String(); !strings.Contains(got, "not known yet") {
		t.Fatalf("fresh host reachability %q", got)
	}
	em, err := h.Libp2p().EventBus().Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for _, c := range []struct {
		state network.Reachability
		words string
	}{
		{network.ReachabilityPrivate, "behind a router or firewall"},
		{network.ReachabilityPublic, "can connect to this computer directly"},
	} {
		if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: c.state}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, c.words, func() bool {
			return strings.Contains(h.Reachability().String(), c.words)
		})
	}
}

// TestNoGoroutineOutlivesClosedHost is acceptance test 4: hosts that
// connected, gossiped, met at a rendezvous and moved a blob leave no
// goroutine behind once closed.
// missingCID returns a CID no host has.
func missingCID(i int) cid.Cid { return content.Sum([]byte{byte(i), 'x'}) }

func TestNoGoroutineOutlivesClosedHost(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(ctx, loopbackOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := loopbackOptions(nil)
	o.Bootstrap = []peer.AddrInfo{a.AddrInfo()}
	b, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{a, b} {
		if err := h.Discovery().Join("leak-test"); err != nil {
			t.Fatal(err)
		}
	}
	ta, err := a.Gossip().Join("leak-test/updates", nil)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Gossip().Join("leak-test/updates", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Publish(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m, err := tb.Next(ctx); err != nil || string(m.Data) != "hello" {
		t.Fatalf("next: %v %v", m, err)
	}
	root, err := a.PutBlob(ctx, make([]byte, 3<<20), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.FetchBlob(ctx, root, a.ID()); err != nil {
		t.Fatal(err)
	}
	// Close while a rendezvous search and a blob fetch may be running.
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		b.FetchBlob(ctx, missingCID(3), a.ID())
	}()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	<-fetched
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// TestFetchBlobFindsProvidersInTheDHT: the fetching host knows only a
// bootstrap host; the providers announced the blob in the DHT.
func TestFetchBlobFindsProvidersInTheDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot := newHost(t, loopbackOptions(nil, "tcp"))
	o := loopbackOptions(nil, "tcp")
	o.Bootstrap = []peer.AddrInfo{boot.AddrInfo()}
	providers := []*Host{newHost(t, o), newHost(t, o)}
	fetcher := newHost(t, o)
	waitFor(t, 10*time.Second, "bootstrap connections", func() bool {
		for _, h := range append(providers, fetcher) {
			if h.Libp2p().Network().Connectedness(boot.ID()) != network.Connected {
				return false
			}
		}
		return true
	})
	data := bytes.Repeat([]byte("shard "), 1<<20)
	var root cid.Cid
	for _, p := range providers {
		r, err := p.PutBlob(ctx, data, 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		root = r
	}
	res, err := fetcher.FetchBlob(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := blob.ReadAll(fetcher.Store(), root)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched blob differs (%v)", err)
	}
	if len(res.BytesFrom) != 2 {
		t.Fatalf("bytes per provider %v, want both providers used", res.BytesFrom)
	}
}

func TestNATDefaults(t *testing.T) {
	d, l := DefaultOptions().NAT, LoopbackOptions().NAT
	if !d.PortMap || !d.HolePunching || !d.RelayClient {
		t.Fatalf("daemon NAT options %+v, want port mapping, hole punching and relay client on", d)
	}
	if l.PortMap || l.HolePunching || l.RelayClient || l.RelayService || l.AutoNATService || len(l.StaticRelays) > 0 {
		t.Fatalf("loopback NAT options %+v, want all off", l)
	}
	if !DefaultOptions().Discovery.MDNS || LoopbackOptions().Discovery.MDNS {
		t.Fatal("mDNS should be on for the daemon and off on loopback")
	}
	if n := len(natOptions(NATOptions{})); n != 1 {
		t.Fatalf("all-off NAT options give %d libp2p options, want only DisableRelay", n)
	}
}

func TestResourceManagerLimitsBlobProtocol(t *testing.T) {
	h := newHost(t, loopbackOptions(nil, "tcp"))
	rm := h.Libp2p().Network().ResourceManager()
	err := rm.ViewProtocol(blob.ProtocolID, func(s network.ProtocolScope) error {
		if s.Protocol() != blob.ProtocolID {
			t.Fatalf("scope for %s", s.Protocol())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rm.(interface{ Close() error }); !ok {
		t.Fatal("no resource manager configured")
	}
}
