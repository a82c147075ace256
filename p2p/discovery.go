package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// RendezvousCID returns the DHT key under which the peers of a round
// announce themselves: the CID of "shoal/rendezvous/v1/" + round.
func RendezvousCID(round string) cid.Cid {
	return content.Sum([]byte("shoal/rendezvous/v1/" + round))
}

// Connection manager tags: protected peers are never trimmed.
const (
	tagBootstrap = "shoal-bootstrap"
	tagRound     = "shoal-round"
)

// Discovery finds and keeps peers: it dials the bootstrap peers and redials
// them when they drop (a bootstrap host may restart), runs the Kademlia DHT
// (under its own protocol prefix, never the public IPFS one), meets the
// peers of a round at a rendezvous key in the DHT, and optionally finds
// peers on the local network by mDNS.
type Discovery struct {
	h         host.Host
	dht       *dht.IpfsDHT
	opts      DiscoveryOptions
	bootstrap []peer.AddrInfo
	log       *slog.Logger
	mdns      mdns.Service

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	found  chan peer.AddrInfo // from mDNS

	mu     sync.Mutex
	rounds map[string]*rendezvous
}

type rendezvous struct {
	cancel context.CancelFunc
	peers  map[peer.ID]bool
}

// NewDiscovery starts discovery on h. Close stops it.
func NewDiscovery(h host.Host, opts DiscoveryOptions, bootstrap []peer.AddrInfo, log *slog.Logger) (*Discovery, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mode := dht.ModeAuto
	switch opts.DHTMode {
	case DHTServer:
		mode = dht.ModeServer
	case DHTClient:
		mode = dht.ModeClient
	}
	ctx, cancel := context.WithCancel(context.Background())
	kad, err := dht.New(h,
		dht.Mode(mode),
		dht.ProtocolPrefix(opts.DHTProtocolPrefix),
		dht.BootstrapPeers(bootstrap...),
		dht.DisableValues(),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	d := &Discovery{
		h:         h,
		dht:       kad,
		opts:      opts,
		bootstrap: bootstrap,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		found:     make(chan peer.AddrInfo, 64),
		rounds:    make(map[string]*rendezvous),
	}
	if cm := h.ConnManager(); cm != nil {
		for _, b := range bootstrap {
			cm.Protect(b.ID, tagBootstrap)
		}
	}
	d.wg.Add(1)
	go d.bootstrapLoop()
	if opts.MDNS {
		d.mdns = newMDNS(h, opts.MDNSService, mdnsNotifee{d})
		if err := d.mdns.Start(); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("start mDNS: %w", err)
		}
		d.wg.Add(1)
		go d.mdnsLoop()
	}
	return d, nil
}

// DHT returns the Kademlia DHT.
func (d *Discovery) DHT() *dht.IpfsDHT { return d.dht }

// Close stops every rendezvous and loop and shuts the DHT down.
func (d *Discovery) Close() error {
	d.cancel()
	var err error
	if d.mdns != nil {
		err = d.mdns.Close()
	}
	d.wg.Wait()
	return errors.Join(err, d.dht.Close())
}

// bootstrapLoop dials every bootstrap peer now, then redials any that is
// disconnected every ReconnectInterval. A successful redial refreshes the
// DHT's routing table, so a restarted bootstrap host learns the network
// again and new hosts that know only it can join.
func (d *Discovery) bootstrapLoop() {
	defer d.wg.Done()
	if len(d.bootstrap) == 0 {
		return
	}
	t := time.NewTicker(d.opts.ReconnectInterval)
	defer t.Stop()
	for {
		if n := d.dialBootstrap(); n > 0 {
			select {
			case <-d.dht.RefreshRoutingTable():
			case <-d.ctx.Done():
				return
			}
		}
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
	}
}

// dialBootstrap dials the disconnected bootstrap peers in parallel and
// returns how many it connected.
func (d *Discovery) dialBootstrap() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for _, b := range d.bootstrap {
		if b.ID == d.h.ID() || d.h.Network().Connectedness(b.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(d.ctx, d.opts.DialTimeout)
			defer cancel()
			// A forced direct dial skips the dial backoff a restarting
			// bootstrap host leaves behind.
			if err := d.h.Connect(network.WithForceDirectDial(ctx, "bootstrap redial"), b); err != nil {
				if d.ctx.Err() == nil {
					d.log.Debug("bootstrap dial failed", "peer", b.ID.String(), "err", err)
				}
				return
			}
			d.log.Debug("connected to bootstrap peer", "peer", b.ID.String())
			mu.Lock()
			n++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}

// newMDNS starts the multicast DNS service; tests, which may not send
// multicast, replace it with a LAN of their own.
var newMDNS = func(h host.Host, service string, n mdns.Notifee) mdns.Service {
	return mdns.NewMdnsService(h, service, n)
}

type mdnsNotifee struct{ d *Discovery }

// HandlePeerFound is called by the mDNS service; it must not block.
func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	select {
	case n.d.found <- ai:
	default:
	}
}

func (d *Discovery) mdnsLoop() {
	defer d.wg.Done()
	for {
		select {
		case ai := <-d.found:
			if ai.ID == d.h.ID() || d.h.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			ctx, cancel := context.WithTimeout(d.ctx, d.opts.DialTimeout)
			err := d.h.Connect(ctx, ai)
			cancel()
			if err != nil {
				d.log.Debug("mDNS peer dial failed", "peer", ai.ID.String(), "err", err)
			} else {
				d.log.Info("found peer on the local network", "peer", ai.ID.String())
			}
		case <-d.ctx.Done():
			return
		}
	}
}

// Join starts meeting the peers of round: this host announces itself as a
// provider of RendezvousCID(round) (every ProvideInterval), searches for
// other providers (backing off from FindInterval/10 to FindInterval),
// remembers them (RoundPeers) and keeps connections to up to
// MaxRendezvousPeers of them, protected from trimming. Leave stops it.
func (d *Discovery) Join(round string) error {
	if round == "" {
		return errors.New("discovery: empty round ID")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return errors.New("discovery: closed")
	}
	if _, ok := d.rounds[round]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(d.ctx)
	rv := &rendezvous{cancel: cancel, peers: make(map[peer.ID]bool)}
	d.rounds[round] = rv
	d.wg.Add(2)
	go d.provideLoop(ctx, round)
	go d.findLoop(ctx, round, rv)
	return nil
}

// Leave stops the rendezvous of round.
func (d *Discovery) Leave(round string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rv, ok := d.rounds[round]; ok {
		rv.cancel()
		delete(d.rounds, round)
	}
}

// RoundPeers returns the peers found at round's rendezvous so far.
func (d *Discovery) RoundPeers(round string) []peer.ID {
	d.mu.Lock()
	defer d.mu.Unlock()
	rv, ok := d.rounds[round]
	if !ok {
		return nil
	}
	out := make([]peer.ID, 0, len(rv.peers))
	for p := range rv.peers {
		out = append(out, p)
	}
	return out
}

func (d *Discovery) provideLoop(ctx context.Context, round string) {
	defer d.wg.Done()
	key := RendezvousCID(round)
	retry := d.opts.FindInterval / 10
	for {
		wait := d.opts.ProvideInterval
		if err := d.Provide(ctx, key); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Debug("rendezvous announce failed; will retry", "round", round, "err", err)
			wait = retry
			retry = min(2*retry, d.opts.FindInterval)
		} else {
			retry = d.opts.FindInterval / 10
		}
		if sleepCtx(ctx, wait) != nil {
			return
		}
	}
}

func (d *Discovery) findLoop(ctx context.Context, round string, rv *rendezvous) {
	defer d.wg.Done()
	key := RendezvousCID(round)
	wait := d.opts.FindInterval / 10
	for {
		if sleepCtx(ctx, wait) != nil {
			return
		}
		fresh := d.findRound(ctx, round, key, rv)
		if ctx.Err() != nil {
			return
		}
		if fresh > 0 {
			wait = d.opts.FindInterval / 10
		} else {
			wait = min(2*wait, d.opts.FindInterval)
		}
	}
}

// maxRoundPeers bounds the peers one rendezvous remembers.
const maxRoundPeers = 4096

// findRound runs one provider search for key, remembers the providers and
// connects to them while fewer than MaxRendezvousPeers of the round's
// peers are connected; it returns how many new peers it found.
func (d *Discovery) findRound(ctx context.Context, round string, key cid.Cid, rv *rendezvous) int {
	qctx, cancel := context.WithTimeout(ctx, max(d.opts.FindInterval, 30*time.Second))
	defer cancel()
	fresh := 0
	for ai := range d.dht.FindProvidersAsync(qctx, key, 0) {
		if ai.ID == d.h.ID() {
			continue
		}
		d.mu.Lock()
		known := rv.peers[ai.ID]
		if !known && len(rv.peers) < maxRoundPeers {
			rv.peers[ai.ID] = true
			fresh++
		}
		connected := 0
		for p := range rv.peers {
			if d.h.Network().Connectedness(p) == network.Connected {
				connected++
			}
		}
		d.mu.Unlock()
		if !known {
			d.log.Debug("found round peer", "round", round, "peer", ai.ID.String())
		}
		// Known peers that dropped (restarted, trimmed) are redialled too.
		if d.h.Network().Connectedness(ai.ID) == network.Connected || connected >= d.opts.MaxRendezvousPeers {
			continue
		}
		if cm := d.h.ConnManager(); cm != nil {
			cm.Protect(ai.ID, tagRound)
		}
		dctx, dcancel := context.WithTimeout(ctx, d.opts.DialTimeout)
		if err := d.h.Connect(dctx, ai); err != nil && ctx.Err() == nil {
			d.log.Debug("round peer dial failed", "round", round, "peer", ai.ID.String(), "err", err)
		}
		dcancel()
	}
	return fresh
}

// Provide announces in the DHT that this host has c (a blob root, a
// rendezvous key).
func (d *Discovery) Provide(ctx context.Context, c cid.Cid) error {
	return d.dht.Provide(ctx, c, true)
}

// FindProviders returns up to limit peers that announced c (all it finds
// if limit is 0), searching until ctx ends or the search completes.
func (d *Discovery) FindProviders(ctx context.Context, c cid.Cid, limit int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for ai := range d.dht.FindProvidersAsync(ctx, c, limit) {
		if ai.ID != d.h.ID() {
			out = append(out, ai)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
