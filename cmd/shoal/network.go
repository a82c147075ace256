package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/pflag"
	"go.uber.org/zap/exp/zapslog"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
)

// netOptions are the flags every networked command shares.
type netOptions struct {
	Listen      []string
	Loopback    bool
	MaxUpload   byteSize
	MaxDownload byteSize
	MaxMemory   byteSize
}

func (o *netOptions) addFlags(fl *pflag.FlagSet) {
	fl.StringSliceVar(&o.Listen, "listen", nil, "multiaddrs to listen on (default: TCP and QUIC on port 4001, all interfaces; with --loopback, free ports on 127.0.0.1)")
	fl.BoolVar(&o.Loopback, "loopback", false, "stay on this machine: listen on 127.0.0.1 and turn off NAT traversal and mDNS")
	fl.Var(&o.MaxUpload, "max-upload", "cap on what the node sends (content and gossip), bytes per second (e.g. 2MB; 0: no cap)")
	fl.Var(&o.MaxDownload, "max-download", "cap on what the node receives (content and gossip), bytes per second (0: no cap)")
	fl.Var(&o.MaxMemory, "max-memory", "memory the network stack and the content in memory may use (e.g. 2GB; 0: automatic); round start also refuses a model that needs more to train")
}

// hostOptions builds the p2p options from the flags.
func (o *netOptions) hostOptions(log *slog.Logger, store *daemon.Store, identity string, boot []peer.AddrInfo) (p2p.Options, error) {
	opts := p2p.DefaultOptions()
	if o.Loopback {
		opts = p2p.LoopbackOptions()
	}
	if len(o.Listen) > 0 {
		opts.ListenAddrs = nil
		for _, s := range o.Listen {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return opts, fmt.Errorf("--listen %q: %v", s, err)
			}
			opts.ListenAddrs = append(opts.ListenAddrs, a)
		}
	}
	opts.Logger = log
	opts.IdentityPath = identity
	opts.Store = store
	opts.Bootstrap = boot
	opts.Blob.UploadRate = int64(o.MaxUpload)
	opts.Blob.DownloadRate = int64(o.MaxDownload)
	if o.MaxMemory > 0 {
		opts.Resources.MaxMemory = int64(o.MaxMemory) / 4
	}
	return opts, nil
}

// openStore opens the content store under dir.
func openStore(dir string, maxObjects int64) (*daemon.Store, error) {
	ck, err := checkpoint.OpenStore(filepath.Join(dir, "checkpoints"))
	if err != nil {
		return nil, err
	}
	return daemon.NewStore(ck, maxObjects)
}

// slogFor returns a log/slog logger writing to the command's log.
func slogFor(f *factory) *slog.Logger { return slog.New(zapslog.NewHandler(f.Logger().Core())) }

// ensureDir creates a data directory, private to the user.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("--data-dir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	return nil
}

// fetchSpec gets a round's spec by its ID from the invite's peers and
// checks that it hashes to the ID.
func fetchSpec(ctx context.Context, h *p2p.Host, inv daemon.Invite, wait time.Duration) (*round.Spec, error) {
	var ids []peer.ID
	for _, ai := range inv.Peers {
		ids = append(ids, ai.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for {
		b, err := h.Blobs().FetchObject(ctx, inv.Round, ids)
		if err == nil {
			s, err := round.Parse(b, "round "+inv.Round.String())
			if err != nil {
				return nil, fmt.Errorf("the round's spec does not parse: %w", err)
			}
			if !s.ID().Equals(inv.Round) {
				return nil, fmt.Errorf("the spec served for round %s hashes to %s", inv.Round, s.ID())
			}
			return s, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("could not get the round's spec from the invite's peers within %v: %v", wait, last)
		case <-time.After(time.Second):
		}
	}
}

// byteSize is a flag holding a number of bytes, written as a plain number
// or with a unit: 1500, 64kB, 2MB, 1GiB, 512MiB.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseBytes(s string) (int64, error) { return bytesize.Parse(s) }
