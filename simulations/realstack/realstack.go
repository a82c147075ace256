// Package realstack runs a round on the real stack: the node and tracker
// daemons (package node/daemon) over libp2p hosts (package p2p), every
// host in this process on an in-memory network (mocknet) whose links have
// a latency and a bandwidth. Compute is modelled as in the discrete-event
// engine: the peers run CostEngines whose jobs take their modelled
// duration in wall time. It is the reference against which the
// discrete-event engine (package simulations) is checked: the same
// scenario on both should take about as long per step.
//
// Mocknet holds about 1.2 MiB and 64 goroutines per host, so hundreds to a
// few thousand hosts fit in memory; its latency is one way per write, and
// its bandwidth is a token bucket per link.
package realstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/simulations"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Config describes a run on the real stack.
type Config struct {
	Spec      *round.Spec   // the round; its tracker is replaced by the run's
	Peers     int           // workers
	Steps     int           // finalised steps to wait for
	Latency   time.Duration // one way, on every link
	Bandwidth float64       // bytes per second per link and direction (0: unlimited)
	// Train, Apply and Verify are the durations of the jobs, spent
	// sleeping; PayloadBytes the size of an update's payload.
	Train, Apply, Verify time.Duration
	PayloadBytes         int
	// SlowTrain gives the workers it names (by index) another training
	// time than Train.
	SlowTrain map[int]time.Duration
	// Degree is how many other workers each worker connects to, besides
	// the tracker, which every worker connects to (default 8).
	Degree int
	// NodeTick and TrackerTick are the daemons' clock periods (defaults:
	// the daemons').
	NodeTick, TrackerTick time.Duration
	Seed                  uint64
	Dir                   string // for the hosts' data (default: a temporary directory)
	Logger                *slog.Logger
}

// Result is what a run measured.
type Result struct {
	// Opened, Closed and Finalised hold when each step was (last)
	// opened, closed and finalised, since the start.
	Opened, Closed, Finalised []time.Duration
	// Merges counts the tracker's merge events among its last 100: its
	// Closes that included late updates of the step before.
	Merges int
}

// Phases returns the mean time from opening to closing a step (the
// units train and their updates arrive) and from closing to finalising
// it (the nodes apply and commit), from step skip on.
func (r *Result) Phases(skip int) (open, closed time.Duration) {
	var a, b []time.Duration
	for i := skip; i < len(r.Finalised) && i < len(r.Opened) && i < len(r.Closed); i++ {
		a = append(a, r.Closed[i]-r.Opened[i])
		b = append(b, r.Finalised[i]-r.Closed[i])
	}
	return Mean(a), Mean(b)
}

// StepDurations returns the time between consecutive finalisations from
// step skip on (the first steps include the start).
func (r *Result) StepDurations(skip int) []time.Duration {
	var out []time.Duration
	for i := max(skip, 1); i < len(r.Finalised); i++ {
		out = append(out, r.Finalised[i]-r.Finalised[i-1])
	}
	return out
}

// Mean returns the mean of durations.
func Mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// slowEngine runs a CostEngine's jobs in their modelled duration.
type slowEngine struct {
	inner                *simulations.CostEngine
	train, apply, verify time.Duration
}

func (e *slowEngine) Genesis() (cid.Cid, error) { return e.inner.Genesis() }

func (e *slowEngine) Run(j node.Job) node.Result {
	d := e.apply
	switch j.(type) {
	case node.TrainJob:
		d = e.train
	case node.VerifyJob:
		d = e.verify
	}
	time.Sleep(d)
	return e.inner.Run(j)
}

type member struct {
	h     *p2p.Host
	store *daemon.Store
	dir   string
}

// Run runs the round until Steps steps are finalised or ctx ends.
func Run(ctx context.Context, cfg Config) (_ *Result, err error) {
	if cfg.Peers < 1 || cfg.Steps < 1 {
		return nil, errors.New("realstack: need at least one peer and one step")
	}
	if cfg.Degree <= 0 {
		cfg.Degree = 8
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "shoal-realstack-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.Latency, Bandwidth: cfg.Bandwidth})

	key, spec, err := withNewTracker(cfg.Spec)
	if err != nil {
		return nil, err
	}

	var hosts []*p2p.Host
	defer func() {
		for i := len(hosts) - 1; i >= 0; i-- {
			hosts[i].Close()
		}
	}()
	newMember := func(name string, lh host.Host) (*member, error) {
		d := filepath.Join(dir, name)
		opts := p2p.LoopbackOptions()
		opts.Logger = log.With("host", name)
		opts.Gossip.MaxMessageSize = daemon.InlineLimit + 8<<10
		h, st, err := daemon.NewHost(context.Background(), daemon.HostConfig{Dir: d, Options: opts, Over: lh})
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
		return &member{h: h, store: st, dir: d}, nil
	}
	th, err := mn.AddPeer(key, ma.StringCast("/ip4/100.64.0.1/tcp/4001"))
	if err != nil {
		return nil, err
	}
	tm, err := newMember("tracker", th)
	if err != nil {
		return nil, err
	}
	engine := func(m *member, train time.Duration) *slowEngine {
		return &slowEngine{inner: &simulations.CostEngine{Store: m.store, Spec: &spec, Peer: m.h.ID().String(), PayloadBytes: cfg.PayloadBytes},
			train: train, apply: cfg.Apply, verify: cfg.Verify}
	}
	genesis, err := engine(tm, cfg.Train).Genesis()
	if err != nil {
		return nil, err
	}
	trk, err := daemon.NewTracker(daemon.TrackerConfig{Spec: &spec, Host: tm.h, Store: tm.store, Storage: &tracker.MemStorage{},
		Genesis: genesis, MinMembers: cfg.Peers, Logger: log.With("role", "tracker"), Tick: cfg.TrackerTick})
	if err != nil {
		return nil, err
	}
	var nodes []*daemon.Node
	for i := range cfg.Peers {
		lh, err := mn.GenPeer()
		if err != nil {
			return nil, err
		}
		m, err := newMember(fmt.Sprintf("worker-%04d", i), lh)
		if err != nil {
			return nil, err
		}
		train := cfg.Train
		if d, ok := cfg.SlowTrain[i]; ok {
			train = d
		}
		n, err := daemon.NewPeer(daemon.PeerConfig{Spec: &spec, Role: wire.RoleWorker, Dir: m.dir, Host: m.h, Store: m.store,
			Engine: engine(m, train), Logger: log.With("node", i), Tick: cfg.NodeTick})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if err := connect(mn, hosts, cfg); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)+1)
	start := time.Now()
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	run(trk.Run)
	for _, n := range nodes {
		run(n.Run)
	}
	defer wg.Wait()
	defer cancel()

	return watch(ctx, trk, cfg.Steps, errs, start)
}

// watch polls the tracker's dashboard snapshot until steps steps are
// finalised, ctx ends or a daemon fails.
func watch(ctx context.Context, trk *daemon.Tracker, steps int, errs <-chan error, start time.Time) (*Result, error) {
	res := &Result{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(res.Finalised) < steps {
		select {
		case <-ctx.Done():
			select {
			case err := <-errs:
				return res, err
			default:
			}
			return res, fmt.Errorf("realstack: %d of %d steps finalised: %w", len(res.Finalised), steps, ctx.Err())
		case <-tick.C:
		}
		snap := trk.Snapshot()
		res.Opened, res.Closed, res.Finalised = res.Opened[:0], res.Closed[:0], res.Finalised[:0]
		res.Merges = 0
		for _, ev := range snap.Events {
			if ev.Kind == string(wire.EventMerge) {
				res.Merges++
			}
		}
		for _, s := range snap.Steps {
			if s.Finalised.IsZero() {
				break
			}
			res.Opened = append(res.Opened, s.Opened.Sub(start))
			res.Closed = append(res.Closed, s.Closed.Sub(start))
			res.Finalised = append(res.Finalised, s.Finalised.Sub(start))
		}
	}
	return res, nil
}

// withNewTracker returns a new tracker identity and a copy of spec that
// names it.
func withNewTracker(s *round.Spec) (crypto.PrivKey, round.Spec, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, round.Spec{}, err
	}
	tid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, round.Spec{}, err
	}
	spec := *s
	spec.Trackers = []string{tid.String()}
	return key, spec, spec.Validate()
}

// connect links the hosts of a mocknet: every worker to the tracker
// (its bootstrap peer, hosts[0]) and to Degree others at random.
func connect(mn mocknet.Mocknet, hosts []*p2p.Host, cfg Config) error {
	if err := mn.LinkAll(); err != nil {
		return err
	}
	r := mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x7265616c))
	ids := make([]peer.ID, len(hosts))
	for i, h := range hosts {
		ids[i] = h.ID()
	}
	for i := 1; i < len(ids); i++ {
		if _, err := mn.ConnectPeers(ids[i], ids[0]); err != nil {
			return err
		}
		for range cfg.Degree / 2 {
			j := 1 + r.IntN(len(ids)-1)
			if j == i || mn.Net(ids[i]).Connectedness(ids[j]) == network.Connected {
				continue
			}
			if _, err := mn.ConnectPeers(ids[i], ids[j]); err != nil {
				return err
			}
		}
	}
	return nil
}
