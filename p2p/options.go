package p2p

import (
	"golang.org/x/time/rate"

	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-network/shoal/p2p/blob"
)

// Options configures a Host. Start from DefaultOptions (a volunteer's
// daemon on the internet) or LoopbackOptions (a network on one machine), then
// adjust; New fills zero numeric fields with defaults and rejects the rest
// through Validate.
type Options struct {
	// Logger receives the package's log lines; nil discards them.
	Logger *slog.Logger

	// IdentityPath is the file holding the host's Ed25519 key, created on
	// first use (see LoadOrCreateIdentity). Identity, if set, takes its
	// place; with neither, the host gets a fresh key every start.
	IdentityPath string
	Identity     crypto.PrivKey

	// ListenAddrs are the TCP and QUIC (quic-v1) multiaddrs to listen on.
	ListenAddrs []ma.Multiaddr

	// Bootstrap peers are dialled at start and redialled whenever the
	// connection to them drops (they may restart).
	Bootstrap []peer.AddrInfo

	// Store holds blobs this host serves and fetches; nil means an
	// in-memory store that is lost on Close.
	Store blob.Store

	// Metrics, if set, receives libp2p's Prometheus metrics; nil disables them.
	Metrics prometheus.Registerer

	Resources   ResourceOptions
	Connections ConnectionOptions
	NAT         NATOptions
	Gossip      GossipOptions
	Discovery   DiscoveryOptions
	Blob        blob.Options
}

// ResourceOptions bound what libp2p's resource manager lets the network
// stack use. Zero values mean an automatic share of the machine (an eighth of
// its memory, at most 1 GiB; half the file descriptor limit).
type ResourceOptions struct {
	MaxMemory          int64
	MaxFileDescriptors int
}

// ConnectionOptions configure the connection manager: above High connections
// it trims down to Low, sparing connections younger than Grace and peers
// that are protected (bootstrap peers, peers of a joined round).
type ConnectionOptions struct {
	Low, High int
	Grace     time.Duration
}

// NATOptions switch the features that let peers behind NATs reach each
// other. They are on for the daemon and off on loopback, where they would
// only make the host dial out to find what is not there.
type NATOptions struct {
	// PortMap asks the router for a port mapping (UPnP, NAT-PMP).
	PortMap bool
	// HolePunching coordinates direct connections through NATs (DCUtR).
	HolePunching bool
	// RelayClient lets the host be reached through circuit relays: the
	// StaticRelays if given, otherwise relays found among connected peers.
	RelayClient  bool
	StaticRelays []peer.AddrInfo
	// RelayService makes this host a relay for others (for public hosts).
	RelayService bool
	// AutoNATService answers other hosts' reachability self-tests.
	AutoNATService bool
}

// GossipOptions configure gossipsub.
type GossipOptions struct {
	// MaxMessageSize is the largest payload accepted or published, in bytes;
	// larger content travels as a blob. Default 1 MiB. The wire limit handed
	// to gossipsub is larger by a framing allowance, so a payload of exactly
	// MaxMessageSize is delivered, not dropped.
	MaxMessageSize int
	// HeartbeatInterval is gossipsub's mesh maintenance period (default 1 s).
	HeartbeatInterval time.Duration
	// SeenTTL is how long gossipsub's own duplicate filter remembers a
	// message ID (default 2 min); ReplayWindow is how long the host's replay
	// guard keeps refusing a message it already accepted (default 30 min),
	// holding at most ReplayCacheSize IDs (default 65536).
	SeenTTL         time.Duration
	ReplayWindow    time.Duration
	ReplayCacheSize int
	// ValidatorTimeout bounds one call of a topic Validator; a validator
	// that runs out of time ignores the message (default 5 s).
	ValidatorTimeout time.Duration
	// AuthorRate and AuthorBurst bound the messages one author may have
	// this host validate and relay on a topic: a token bucket per author
	// of AuthorBurst messages, refilled at AuthorRate a second (defaults
	// 20 and 200); messages beyond it are ignored, neither delivered nor
	// relayed. The table of buckets holds at most AuthorTable authors
	// (default 65536).
	AuthorRate  float64
	AuthorBurst int
	AuthorTable int
	// MinMeshPeers is how many mesh peers Publish waits for (default 1).
	MinMeshPeers int
	// AllowColocation sets the IP-colocation score weight to 0, for
	// networks where many honest peers share one IP address (loopback, a
	// lab). Off, peers crowding onto one IP lose score.
	AllowColocation bool

	// up and down are the host's bandwidth buckets, shared with the blob
	// exchange (set by the Host from Options.Blob's rates; nil: no cap).
	up, down *rate.Limiter
}

// DHTMode selects whether the host answers DHT queries.
type DHTMode int

const (
	// DHTAuto serves DHT queries once the host learns it is publicly reachable.
	DHTAuto DHTMode = iota
	// DHTServer always serves DHT queries (public hosts, loopback networks).
	DHTServer
	// DHTClient only queries.
	DHTClient
)

func (m DHTMode) String() string {
	switch m {
	case DHTAuto:
		return "auto"
	case DHTServer:
		return "server"
	case DHTClient:
		return "client"
	}
	return fmt.Sprintf("DHTMode(%d)", int(m))
}

// DiscoveryOptions configure how the host finds peers.
type DiscoveryOptions struct {
	// DHTMode and DHTProtocolPrefix configure the Kademlia DHT. The prefix
	// (default "/shoal") keeps shoal's DHT apart from the public IPFS one.
	DHTMode           DHTMode
	DHTProtocolPrefix protocol.ID
	// MDNS finds peers on the local network by multicast DNS.
	MDNS        bool
	MDNSService string
	// ReconnectInterval is how often lost bootstrap peers are redialled
	// (default 10 s).
	ReconnectInterval time.Duration
	// FindInterval is the longest pause between two searches for a
	// rendezvous's providers (default 1 min; searches start at a tenth of it
	// and back off). ProvideInterval is how often this host re-announces
	// itself (default 10 min).
	FindInterval    time.Duration
	ProvideInterval time.Duration
	// MaxRendezvousPeers caps the peers one rendezvous connects to (default 64).
	MaxRendezvousPeers int
	// DialTimeout bounds one dial (default 15 s).
	DialTimeout time.Duration
}

// DefaultOptions returns options for a volunteer's daemon: listen on all
// interfaces on port 4001 (TCP and QUIC), NAT traversal on, mDNS on, DHT mode
// chosen by reachability.
func DefaultOptions() Options {
	return Options{
		ListenAddrs: mustAddrs(
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
			"/ip6/::/tcp/4001",
			"/ip6/::/udp/4001/quic-v1",
		),
		NAT: NATOptions{
			PortMap:      true,
			HolePunching: true,
			RelayClient:  true,
		},
		Discovery: DiscoveryOptions{MDNS: true, DHTMode: DHTAuto},
	}
}

// LoopbackOptions returns options for hosts on one machine (a demo, tests):
// listen on 127.0.0.1 on free ports (TCP and QUIC), every NAT feature and
// mDNS off so nothing is dialled beyond loopback, DHT server mode, the
// IP-colocation penalty off, and short discovery intervals.
func LoopbackOptions() Options {
	return Options{
		ListenAddrs: mustAddrs(
			"/ip4/127.0.0.1/tcp/0",
			"/ip4/127.0.0.1/udp/0/quic-v1",
		),
		Gossip: GossipOptions{AllowColocation: true},
		Discovery: DiscoveryOptions{
			DHTMode:           DHTServer,
			ReconnectInterval: 500 * time.Millisecond,
			FindInterval:      2 * time.Second,
			ProvideInterval:   5 * time.Second,
			DialTimeout:       5 * time.Second,
		},
	}
}

func mustAddrs(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}

// withDefaults returns o with zero numeric fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Connections.Low == 0 && o.Connections.High == 0 {
		o.Connections.Low, o.Connections.High = 96, 160
	}
	if o.Connections.Grace == 0 {
		o.Connections.Grace = 30 * time.Second
	}
	o.Gossip = o.Gossip.withDefaults()
	o.Discovery = o.Discovery.withDefaults()
	return o
}

func (g GossipOptions) withDefaults() GossipOptions {
	if g.MaxMessageSize == 0 {
		g.MaxMessageSize = 1 << 20
	}
	if g.HeartbeatInterval == 0 {
		g.HeartbeatInterval = time.Second
	}
	if g.SeenTTL == 0 {
		g.SeenTTL = 2 * time.Minute
	}
	if g.ReplayWindow == 0 {
		g.ReplayWindow = 30 * time.Minute
	}
	if g.ReplayCacheSize == 0 {
		g.ReplayCacheSize = 1 << 16
	}
	if g.ValidatorTimeout == 0 {
		g.ValidatorTimeout = 5 * time.Second
	}
	if g.AuthorRate == 0 {
		g.AuthorRate = 20
	}
	if g.AuthorBurst == 0 {
		g.AuthorBurst = 200
	}
	if g.AuthorTable == 0 {
		g.AuthorTable = 1 << 16
	}
	if g.MinMeshPeers == 0 {
		g.MinMeshPeers = 1
	}
	return g
}

func (d DiscoveryOptions) withDefaults() DiscoveryOptions {
	if d.DHTProtocolPrefix == "" {
		d.DHTProtocolPrefix = "/shoal"
	}
	if d.MDNSService == "" {
		d.MDNSService = "shoal"
	}
	if d.ReconnectInterval == 0 {
		d.ReconnectInterval = 10 * time.Second
	}
	if d.FindInterval == 0 {
		d.FindInterval = time.Minute
	}
	if d.ProvideInterval == 0 {
		d.ProvideInterval = 10 * time.Minute
	}
	if d.MaxRendezvousPeers == 0 {
		d.MaxRendezvousPeers = 64
	}
	if d.DialTimeout == 0 {
		d.DialTimeout = 15 * time.Second
	}
	return d
}

// maxGossipMessageSize is the largest MaxMessageSize accepted: gossip is for
// updates and control messages; bulk data is a blob.
const maxGossipMessageSize = 64 << 20

// Validate reports the first problem with o, after defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	return o.validate(true)
}

func (o Options) validate(needListen bool) error {
	if o.IdentityPath != "" && o.Identity != nil {
		return errors.New("p2p options: set IdentityPath or Identity, not both")
	}
	if o.Identity != nil && o.Identity.Type() != crypto.Ed25519 {
		return fmt.Errorf("p2p options: identity is a %s key; shoal identities are Ed25519", o.Identity.Type())
	}
	if needListen && len(o.ListenAddrs) == 0 {
		return errors.New("p2p options: no listen addresses")
	}
	for _, a := range o.ListenAddrs {
		if err := checkListenAddr(a); err != nil {
			return fmt.Errorf("p2p options: listen address %s: %w", a, err)
		}
	}
	for i, b := range o.Bootstrap {
		if err := b.ID.Validate(); err != nil {
			return fmt.Errorf("p2p options: bootstrap peer %d: %w", i, err)
		}
		if len(b.Addrs) == 0 {
			return fmt.Errorf("p2p options: bootstrap peer %s has no address", b.ID)
		}
	}
	for i, r := range o.NAT.StaticRelays {
		if err := r.ID.Validate(); err != nil {
			return fmt.Errorf("p2p options: static relay %d: %w", i, err)
		}
	}
	if o.Resources.MaxMemory < 0 || o.Resources.MaxFileDescriptors < 0 {
		return errors.New("p2p options: resource limits must not be negative")
	}
	if o.Resources.MaxMemory != 0 && o.Resources.MaxMemory < 64<<20 {
		return fmt.Errorf("p2p options: MaxMemory %d is below the 64 MiB the network stack needs", o.Resources.MaxMemory)
	}
	c := o.Connections
	if c.Low < 1 || c.High < c.Low || c.Grace < 0 {
		return fmt.Errorf("p2p options: connection limits low=%d high=%d grace=%s: need 1 <= low <= high and grace >= 0", c.Low, c.High, c.Grace)
	}
	if err := o.Gossip.validate(); err != nil {
		return err
	}
	if err := o.Discovery.validate(); err != nil {
		return err
	}
	if err := o.Blob.Validate(); err != nil {
		return fmt.Errorf("p2p options: %w", err)
	}
	return nil
}

func (g GossipOptions) validate() error {
	switch {
	case g.MaxMessageSize < 1 || g.MaxMessageSize > maxGossipMessageSize:
		return fmt.Errorf("p2p options: gossip MaxMessageSize %d outside [1, %d]", g.MaxMessageSize, maxGossipMessageSize)
	case g.HeartbeatInterval < 10*time.Millisecond:
		return fmt.Errorf("p2p options: gossip HeartbeatInterval %s below 10ms", g.HeartbeatInterval)
	case g.SeenTTL < time.Second:
		return fmt.Errorf("p2p options: gossip SeenTTL %s below 1s", g.SeenTTL)
	case g.ReplayWindow < g.SeenTTL:
		return fmt.Errorf("p2p options: gossip ReplayWindow %s shorter than SeenTTL %s", g.ReplayWindow, g.SeenTTL)
	case g.ReplayCacheSize < 1:
		return fmt.Errorf("p2p options: gossip ReplayCacheSize %d below 1", g.ReplayCacheSize)
	case g.ValidatorTimeout <= 0:
		return fmt.Errorf("p2p options: gossip ValidatorTimeout %s not positive", g.ValidatorTimeout)
	case !(g.AuthorRate > 0) || g.AuthorBurst < 1 || g.AuthorTable < 1:
		return fmt.Errorf("p2p options: gossip AuthorRate %v, AuthorBurst %d, AuthorTable %d: need positive values", g.AuthorRate, g.AuthorBurst, g.AuthorTable)
	case g.MinMeshPeers < 1:
		return fmt.Errorf("p2p options: gossip MinMeshPeers %d below 1", g.MinMeshPeers)
	}
	return nil
}

func (d DiscoveryOptions) validate() error {
	switch {
	case d.DHTMode != DHTAuto && d.DHTMode != DHTServer && d.DHTMode != DHTClient:
		return fmt.Errorf("p2p options: unknown %s", d.DHTMode)
	case d.DHTProtocolPrefix == "/ipfs":
		return errors.New("p2p options: DHT protocol prefix /ipfs would join the public IPFS DHT")
	case d.DHTProtocolPrefix[0] != '/':
		return fmt.Errorf("p2p options: DHT protocol prefix %q must start with /", d.DHTProtocolPrefix)
	case d.ReconnectInterval < 10*time.Millisecond:
		return fmt.Errorf("p2p options: ReconnectInterval %s below 10ms", d.ReconnectInterval)
	case d.FindInterval < 100*time.Millisecond:
		return fmt.Errorf("p2p options: FindInterval %s below 100ms", d.FindInterval)
	case d.ProvideInterval < 100*time.Millisecond:
		return fmt.Errorf("p2p options: ProvideInterval %s below 100ms", d.ProvideInterval)
	case d.MaxRendezvousPeers < 1:
		return fmt.Errorf("p2p options: MaxRendezvousPeers %d below 1", d.MaxRendezvousPeers)
	case d.DialTimeout <= 0:
		return fmt.Errorf("p2p options: DialTimeout %s not positive", d.DialTimeout)
	}
	return nil
}

// checkListenAddr accepts TCP and QUIC (v1) addresses over IPv4 or IPv6.
func checkListenAddr(a ma.Multiaddr) error {
	if a == nil || len(a) == 0 {
		return errors.New("empty")
	}
	var codes []int
	for _, c := range a {
		codes = append(codes, c.Protocol().Code)
	}
	if codes[0] != ma.P_IP4 && codes[0] != ma.P_IP6 {
		return errors.New("must start with /ip4 or /ip6")
	}
	switch {
	case len(codes) == 2 && codes[1] == ma.P_TCP:
		return nil
	case len(codes) == 3 && codes[1] == ma.P_UDP && codes[2] == ma.P_QUIC_V1:
		return nil
	}
	return errors.New("only /tcp/PORT and /udp/PORT/quic-v1 are supported")
}
