package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/tokenizer"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// One way to assemble a peer: NewHost gives a data directory its content
// store and a libp2p host serving it, and NewPeer makes the node daemon of
// a round on them. `shoal node join`, `shoal round start`, the demo and
// the real-stack simulator all build their peers with these two, so they
// differ only in configuration.

// HostConfig says how to make a peer's host.
type HostConfig struct {
	// Dir is the data directory; the content store is Dir/checkpoints
	// (with Memory bytes of content in memory at most; 0: 1 GiB).
	Dir    string
	Memory int64
	// Options are the host's; NewHost sets Store, and IdentityPath to
	// Dir/identity.key unless an identity is given.
	Options p2p.Options
	// Over, if set, is a libp2p host to run over (a mocknet host, say)
	// instead of making one from Options.
	Over host.Host
}

// NewHost opens the content store in cfg.Dir and starts a host serving
// it.
func NewHost(ctx context.Context, cfg HostConfig) (*p2p.Host, *Store, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, err
	}
	ck, err := checkpoint.OpenStore(filepath.Join(cfg.Dir, "checkpoints"))
	if err != nil {
		return nil, nil, err
	}
	st, err := NewStore(ck, cfg.Memory)
	if err != nil {
		return nil, nil, err
	}
	opts := cfg.Options
	opts.Store = st
	if opts.Identity == nil && opts.IdentityPath == "" && cfg.Over == nil {
		opts.IdentityPath = filepath.Join(cfg.Dir, "identity.key")
	}
	var h *p2p.Host
	if cfg.Over != nil {
		h, err = p2p.NewFromHost(cfg.Over, opts)
	} else {
		h, err = p2p.New(ctx, opts)
	}
	if err != nil {
		return nil, nil, err
	}
	return h, st, nil
}

// PeerConfig says how to make a node daemon on a host from NewHost.
type PeerConfig struct {
	Spec   *round.Spec
	Role   wire.Role
	Dir    string // the data directory given to NewHost
	Host   *p2p.Host
	Store  *Store
	Logger *slog.Logger
	// Engine computes the jobs; nil: the round's model (node/engine),
	// trained on Train, or on the dataset's shards.
	Engine node.Engine
	Train  []byte
	// Dataset, for a round on a dataset, lists its shards: the node
	// fetches those of its units (first from DataPeers) and keeps them in
	// Dir/shards, within ShardBudget bytes (0: no cap).
	Dataset     *data.DatasetManifest
	DataPeers   []peer.ID
	ShardBudget int64
	// Eval is held-out text: an observer measures the loss of each new
	// head on it and reports it to OnEval.
	Eval   []byte
	OnEval func(step uint64, loss float64)
	// OnSample, if set, receives a short sample of text from each head an
	// observer evaluates (a gpt of bytes; see headEval.sample).
	OnSample func(step uint64, text string)
	// Tokenizer is the round's tokenizer (the spec names it), nil for a
	// byte-level round: the engine trains, and an observer evaluates, on
	// the tokens it makes of the text.
	Tokenizer *tokenizer.BPE
	// Token is the access token of a closed round.
	Token []byte
	// KeepCheckpoints and Tick are NodeConfig's (0: its defaults).
	KeepCheckpoints int
	Tick            time.Duration
	// MaxDisk caps the disk the checkpoints take (0: no cap), less
	// ShardBudget for a round on a dataset: see Store.LimitDisk. It must
	// hold KeepCheckpoints+1 checkpoints.
	MaxDisk int64
}

// NewPeer makes a node daemon of a round; run it with its Run.
func NewPeer(cfg PeerConfig) (*Node, error) {
	eng := cfg.Engine
	if eng == nil {
		train := cfg.Train
		if cfg.Dataset != nil {
			train = nil
		}
		me, err := engine.NewModelEngine(cfg.Spec, train, cfg.Store)
		if err != nil {
			return nil, err
		}
		if cfg.Tokenizer != nil {
			me.SetTokenizer(cfg.Tokenizer.Encode)
		}
		if ds := cfg.Dataset; ds != nil {
			units := cfg.Spec.UnitsPerStep()
			st := cfg.Store
			me.SetData(func(step uint64, unit uint32) ([]byte, error) { return st.Get(ds.ShardFor(step, unit, units).CID) })
		}
		eng = me
	}
	if shapes, err := gradient.Shapes(engine.ModelConfig(cfg.Spec)); err == nil {
		// The largest blob of a round is a disputant's training state
		// (parameters and the inner optimizer's two moments) or a
		// residual or fp32 payload of the model's size.
		var params int64
		for _, s := range shapes {
			n := int64(1)
			for _, d := range s.Shape {
				n *= int64(d)
			}
			params += n
		}
		cfg.Store.LimitBlobs(16*params + 1<<20)
	}
	if cfg.Dataset != nil {
		if err := cfg.Store.KeepOnDisk(filepath.Join(cfg.Dir, "shards"), cfg.ShardBudget); err != nil {
			return nil, err
		}
	}
	if cfg.MaxDisk > 0 {
		keep := cfg.KeepCheckpoints
		if keep <= 0 {
			keep = node.Retention
		}
		ckDisk := cfg.MaxDisk
		if cfg.Dataset != nil {
			ckDisk -= cfg.ShardBudget
		}
		if err := cfg.Store.LimitDisk(ckDisk, keep); err != nil {
			return nil, err
		}
	}
	nc := NodeConfig{Spec: cfg.Spec, Role: cfg.Role, DataDir: cfg.Dir, Host: cfg.Host, Store: cfg.Store, Engine: eng,
		Logger: cfg.Logger, Token: cfg.Token, Dataset: cfg.Dataset, DataPeers: cfg.DataPeers,
		KeepCheckpoints: cfg.KeepCheckpoints, Tick: cfg.Tick}
	if cfg.Role == wire.RoleObserver && len(cfg.Eval) > 0 {
		// The evaluation shares the engine's model: the worker
		// goroutine runs jobs and evaluations one at a time, and each
		// loads the parameters it needs.
		var model gradient.Model
		if me, ok := eng.(*engine.ModelEngine); ok {
			model = me.Model()
		}
		ev, err := newHeadEval(cfg.Spec, cfg.Store, cfg.Eval, 16, cfg.Tokenizer, model)
		if err != nil {
			return nil, fmt.Errorf("held-out text: %w", err)
		}
		nc.Evaluate = func(step uint64, id cid.Cid) (float64, error) {
			if err := ev.load(id); err != nil {
				return 0, err
			}
			loss := ev.loss()
			if cfg.OnEval != nil {
				cfg.OnEval(step, loss)
			}
			if cfg.OnSample != nil {
				if text := ev.sample(); text != "" {
					cfg.OnSample(step, text)
				}
			}
			return loss, nil
		}
	}
	return NewNode(nc)
}
