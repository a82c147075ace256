package p2p

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]Options{"default": DefaultOptions(), "loopback": LoopbackOptions()} {
		if err := o.Validate(); err != nil {
			t.Errorf("%s options invalid: %v", name, err)
		}
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	ed, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cases := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no listen", func(o *Options) { o.ListenAddrs = nil }, "no listen"},
		{"websocket", func(o *Options) { o.ListenAddrs = mustAddrs("/ip4/127.0.0.1/tcp/1/ws") }, "only /tcp"},
		{"dns", func(o *Options) { o.ListenAddrs = mustAddrs("/dns4/example.org/tcp/1") }, "/ip4 or /ip6"},
		{"quic draft", func(o *Options) { o.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/1/quic")} }, "only /tcp"},
		{"two identities", func(o *Options) { o.Identity, o.IdentityPath = ed, "x" }, "not both"},
		{"secp identity", func(o *Options) { o.Identity = secp }, "Ed25519"},
		{"bootstrap without addrs", func(o *Options) { o.Bootstrap = []peer.AddrInfo{{ID: peerIDOf(ed)}} }, "no address"},
		{"conn low > high", func(o *Options) { o.Connections = ConnectionOptions{Low: 10, High: 5} }, "low"},
		{"tiny memory", func(o *Options) { o.Resources.MaxMemory = 1 << 20 }, "64 MiB"},
		{"negative fds", func(o *Options) { o.Resources.MaxFileDescriptors = -1 }, "negative"},
		{"huge gossip", func(o *Options) { o.Gossip.MaxMessageSize = 1 << 30 }, "MaxMessageSize"},
		{"negative gossip", func(o *Options) { o.Gossip.MaxMessageSize = -1 }, "MaxMessageSize"},
		{"fast heartbeat", func(o *Options) { o.Gossip.HeartbeatInterval = time.Millisecond }, "HeartbeatInterval"},
		{"short replay", func(o *Options) { o.Gossip.ReplayWindow = time.Second; o.Gossip.SeenTTL = time.Minute }, "ReplayWindow"},
		{"public dht", func(o *Options) { o.Discovery.DHTProtocolPrefix = "/ipfs" }, "public IPFS"},
		{"dht mode", func(o *Options) { o.Discovery.DHTMode = 7 }, "DHTMode(7)"},
		{"blob", func(o *Options) { o.Blob.ServePerPeer = 100; o.Blob.ServeConcurrency = 10 }, "per peer"},
	}
	for _, tc := range cases {
		o := LoopbackOptions()
		tc.mutate(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func peerIDOf(k crypto.PrivKey) peer.ID {
	id, _ := peer.IDFromPrivateKey(k)
	return id
}
