package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/p2p/blob"
)

// Host is a shoal peer's network presence: a libp2p host with its
// identity, resource and connection managers, gossip, discovery and the
// blob exchange, started in that order and closed in reverse.
type Host struct {
	h     host.Host
	owns  bool
	log   *slog.Logger
	store blob.Store

	gossip *Gossip
	disc   *Discovery
	blobs  *blob.Exchange
	reach  *reachabilityWatcher

	closeOnce sync.Once
	closeErr  error
}

// New starts a host listening on opts.ListenAddrs. It dials only the
// bootstrap peers, peers it discovers and, with NAT features on, what they
// need (the router, relays). Close stops it.
func New(ctx context.Context, opts Options) (*Host, error) {
	opts = opts.withDefaults()
	if err := opts.validate(true); err != nil {
		return nil, err
	}
	key, err := hostKey(opts)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager(opts.Resources)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(opts.Connections.Low, opts.Connections.High, connmgr.WithGracePeriod(opts.Connections.Grace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	lopts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(opts.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("shoal"),
	}
	if opts.Metrics != nil {
		lopts = append(lopts, libp2p.PrometheusRegisterer(opts.Metrics))
	} else {
		lopts = append(lopts, libp2p.DisableMetrics())
	}
	lopts = append(lopts, natOptions(opts.NAT)...)
	h, err := libp2p.New(lopts...)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("start libp2p: %w", err)
	}
	out, err := attach(h, opts, true)
	if err != nil {
		return nil, err
	}
	if opts.Logger != nil {
		opts.Logger.Info("p2p host started", "peer", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	}
	return out, nil
}

// NewFromHost builds a Host on an existing libp2p host, such as one of an
// in-memory mocknet network. Start it before the host connects to peers.
// ListenAddrs, Identity, IdentityPath, Resources, Connections, NAT and
// Metrics are the given host's business and ignored. Close closes h too.
func NewFromHost(h host.Host, opts Options) (*Host, error) {
	opts = opts.withDefaults()
	if err := opts.validate(false); err != nil {
		return nil, err
	}
	return attach(h, opts, true)
}

func hostKey(opts Options) (crypto.PrivKey, error) {
	switch {
	case opts.Identity != nil:
		return opts.Identity, nil
	case opts.IdentityPath != "":
		return LoadOrCreateIdentity(opts.IdentityPath)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	return key, err
}

// natOptions maps NATOptions to libp2p options; everything off means no
// relay transport, no port mapping, no hole punching.
func natOptions(n NATOptions) []libp2p.Option {
	var out []libp2p.Option
	if n.PortMap {
		out = append(out, libp2p.NATPortMap())
	}
	if n.RelayClient || n.HolePunching {
		out = append(out, libp2p.EnableRelay())
		if len(n.StaticRelays) > 0 {
			out = append(out, libp2p.EnableAutoRelayWithStaticRelays(n.StaticRelays))
		}
	} else {
		out = append(out, libp2p.DisableRelay())
	}
	if n.HolePunching {
		out = append(out, libp2p.EnableHolePunching())
	}
	if n.RelayService {
		out = append(out, libp2p.EnableRelayService())
	}
	if n.AutoNATService {
		out = append(out, libp2p.EnableNATService())
	}
	return out
}

// newResourceManager scales libp2p's default limits to the configured
// memory and file descriptors (automatic when zero) and adds limits for
// the blob protocol.
func newResourceManager(r ResourceOptions) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.AddProtocolLimit(blob.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 256 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 64 << 20})
	limits.AddProtocolPeerLimit(blob.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 32, StreamsOutbound: 32, Streams: 64, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{})
	var concrete rcmgr.ConcreteLimitConfig
	if r.MaxMemory == 0 && r.MaxFileDescriptors == 0 {
		concrete = limits.AutoScale()
	} else {
		mem, fds := r.MaxMemory, r.MaxFileDescriptors
		if mem == 0 {
			mem = 1 << 30
		}
		if fds == 0 {
			fds = 2048
		}
		concrete = limits.Scale(mem, fds)
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(concrete))
}

// attach starts gossip, the blob exchange, discovery and the reachability
// watcher on h, in that order: gossipsub must be running before discovery
// connects to peers.
func attach(h host.Host, opts Options, owns bool) (out *Host, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Host{h: h, owns: owns, log: log, store: opts.Store}
	if x.store == nil {
		x.store = blob.NewMemStore()
	}
	defer func() {
		if err != nil {
			_ = x.Close()
		}
	}()
	x.reach, err = watchReachability(h)
	if err != nil {
		return nil, fmt.Errorf("watch reachability: %w", err)
	}
	// One bucket per direction caps the host's traffic: blobs and gossip
	// draw from the same.
	bopts := opts.Blob
	if bopts.UploadLimiter == nil {
		bopts.UploadLimiter = blob.NewLimiter(bopts.UploadRate)
	}
	if bopts.DownloadLimiter == nil {
		bopts.DownloadLimiter = blob.NewLimiter(bopts.DownloadRate)
	}
	gopts := opts.Gossip
	gopts.up, gopts.down = bopts.UploadLimiter, bopts.DownloadLimiter
	x.gossip, err = NewGossip(h, gopts, log.With("component", "gossip"))
	if err != nil {
		return nil, err
	}
	if bopts.Logger == nil {
		bopts.Logger = log.With("component", "blob")
	}
	x.blobs, err = blob.New(h, x.store, bopts)
	if err != nil {
		return nil, err
	}
	x.disc, err = NewDiscovery(h, opts.Discovery, opts.Bootstrap, log.With("component", "discovery"))
	if err != nil {
		return nil, err
	}
	return x, nil
}

// Close stops discovery, the blob exchange and gossip, then the libp2p
// host, and waits for their goroutines.
func (x *Host) Close() error {
	x.closeOnce.Do(func() {
		var errs []error
		if x.disc != nil {
			errs = append(errs, x.disc.Close())
		}
		if x.blobs != nil {
			errs = append(errs, x.blobs.Close())
		}
		if x.gossip != nil {
			errs = append(errs, x.gossip.Close())
		}
		if x.reach != nil {
			x.reach.close()
		}
		if x.owns {
			errs = append(errs, x.h.Close())
		}
		x.closeErr = errors.Join(errs...)
	})
	return x.closeErr
}

// ID returns the host's peer ID.
func (x *Host) ID() peer.ID { return x.h.ID() }

// AddrInfo returns the host's peer ID and listen addresses.
func (x *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: x.h.ID(), Addrs: x.h.Addrs()}
}

// P2PAddrs returns the host's addresses with its peer ID appended
// (/ip4/.../tcp/.../p2p/12D3...), as others pass them in Bootstrap.
func (x *Host) P2PAddrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: x.h.ID(), Addrs: x.h.Addrs()})
	return addrs
}

// Libp2p returns the underlying libp2p host.
func (x *Host) Libp2p() host.Host { return x.h }

// Gossip returns the host's gossipsub.
func (x *Host) Gossip() *Gossip { return x.gossip }

// Discovery returns the host's discovery.
func (x *Host) Discovery() *Discovery { return x.disc }

// Blobs returns the host's blob exchange.
func (x *Host) Blobs() *blob.Exchange { return x.blobs }

// Store returns the host's blob store.
func (x *Host) Store() blob.Store { return x.store }

// Reachability returns the latest result of the reachability self-test.
func (x *Host) Reachability() Reachability { return x.reach.get() }

// FetchBlob downloads the blob root from the given peers and from up to
// 16 providers found in the DHT, all at once; see blob.Exchange.Fetch.
func (x *Host) FetchBlob(ctx context.Context, root cid.Cid, hints ...peer.ID) (*blob.FetchResult, error) {
	providers := append([]peer.ID(nil), hints...)
	if len(providers) < 3 {
		fctx, cancel := context.WithTimeout(ctx, x.disc.opts.DialTimeout)
		for _, ai := range x.disc.FindProviders(fctx, root, 16) {
			x.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
			providers = append(providers, ai.ID)
		}
		cancel()
	}
	return x.blobs.Fetch(ctx, root, providers)
}

// PutBlob stores data as a blob (chunked, chunk size 0 meaning the
// default) and announces it in the DHT; it returns the blob's root CID.
// The announcement is best effort: the returned error concerns storage.
func (x *Host) PutBlob(ctx context.Context, data []byte, chunkSize int) (cid.Cid, error) {
	root, err := blob.Put(x.store, data, chunkSize)
	if err != nil {
		return cid.Undef, err
	}
	if err := x.disc.Provide(ctx, root); err != nil {
		x.log.Debug("blob announce failed", "root", root.String(), "err", err)
	}
	return root, nil
}
