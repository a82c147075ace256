package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/tokenizer"
	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/dashboard"
	"github.com/shoal-network/shoal/tracker/group"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// roundInitOptions are the flags of `shoal round init`.
type roundInitOptions struct {
	DataDir string
	Out     string
}

func newCmdRoundInit(f *factory, runF func(*roundInitOptions) error) *cobra.Command {
	o := &roundInitOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a round spec template naming this data directory's tracker",
		Long: `Write a round spec template to start from.

The tracker's peer ID is part of the spec (and so of the round ID), so it
must exist before the spec does: init creates the tracker's identity in
--data-dir if there is none and writes a template spec, naming it as the
tracker, to --out (or standard output). Edit the spec, check it with
'shoal round validate', and start the round with 'shoal round start' and
the same --data-dir.`,
		Example: `  shoal round init --data-dir ./tracker --out round.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runRoundInit(f, o)
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "shoal-tracker", "the tracker's data directory")
	cmd.Flags().StringVar(&o.Out, "out", "", "file to write (default: standard output)")
	return cmd
}

func runRoundInit(f *factory, o *roundInitOptions) error {
	if err := ensureDir(o.DataDir); err != nil {
		return err
	}
	key, err := p2p.LoadOrCreateIdentity(filepath.Join(o.DataDir, "tracker.key"))
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	text := regexp.MustCompile(`(?m)^  - 12D3Koo\w+`).ReplaceAllString(round.Template, "  - "+id.String())
	if o.Out == "" || o.Out == "-" {
		_, err = io.WriteString(f.Out, text)
		return err
	}
	if _, err := os.Stat(o.Out); err == nil {
		return fmt.Errorf("--out %s exists; not overwriting it", o.Out)
	}
	if err := os.WriteFile(o.Out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(f.Err, "wrote %s naming tracker %s\n", o.Out, id)
	return nil
}

// roundStartOptions are the arguments and flags of `shoal round start`.
type roundStartOptions struct {
	File          string
	DataDir       string
	DashboardAddr string
	Observer      bool
	MinMembers    int
	Spares        float64
	Newcomers     float64
	Data          string
	Vocab, Merges string // the files of the spec's tokenizer
	net           netOptions
	tokenizer     *tokenizer.BPE
	// A tracker group's raft timing and shared audit secret (see
	// daemon.GroupConfig).
	RaftTick       time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	GroupSecret    string
	Join           string // the raft ID to join a running group with (hex)
	SnapshotEvery  uint64
}

func newCmdRoundStart(f *factory, runF func(context.Context, *roundStartOptions) error) *cobra.Command {
	o := &roundStartOptions{}
	cmd := &cobra.Command{
		Use:   "start FILE",
		Short: "Run a round's tracker (and an observer), print the invite and serve the dashboard",
		Long: `Run the tracker of the round FILE describes.

The tracker opens outer steps, deals work units to the volunteers that
join, closes each step when enough work is in or its deadline passes, and
finalises the checkpoint a majority of peers agree on (in an open round,
weighed by the work replicas verified, not by peer IDs). Its state is kept
in --data-dir (tracker.db), so a restart resumes the round without losing
a finalised step. Unless --observer=false, an observer runs beside it: a
peer that applies and commits every step without training, measures the
held-out loss of each checkpoint and keeps a copy of every checkpoint. The
tracker vouches for it: in an open round its commit weighs a step's worth
of verified work, so that fresh peer IDs cannot outvote it.

The invite (one line for volunteers to pass to 'shoal node join') is
printed on standard output; the dashboard is served on --dashboard-addr.
The tracker's identity is --data-dir/tracker.key; its peer ID must be the
first of the spec's trackers ('shoal round init' writes such a spec).`,
		Example: `  shoal round init --data-dir ./tracker --out round.yaml
  shoal round start --data-dir ./tracker round.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runRoundStart(cmd.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.DataDir, "data-dir", "shoal-tracker", "the tracker's data directory")
	fl.StringVar(&o.DashboardAddr, "dashboard-addr", "127.0.0.1:8080", "address to serve the dashboard on")
	fl.BoolVar(&o.Observer, "observer", true, "run an observer that verifies and evaluates every step")
	fl.IntVar(&o.MinMembers, "min-members", 1, "workers it takes to open a step")
	fl.Float64Var(&o.Newcomers, "newcomers", 1, "in an open round, how many workers without verified work a step admits, as a fraction of those with it (at least 8)")
	fl.Float64Var(&o.Spares, "spares", 0, "with workers to spare, deal this fraction of a step's units again as spares, so the step closes without waiting for the slowest (0 to 1)")
	fl.StringVar(&o.Data, "data", "", "the text of the spec's dataset (a file or directory; 'shoal dataset cid' names it)")
	fl.StringVar(&o.Vocab, "vocab", "", "the encoder.json of the spec's tokenizer (GPT-2 BPE; 'shoal tokenize' names it)")
	fl.StringVar(&o.Merges, "merges", "", "the vocab.bpe of the spec's tokenizer")
	fl.DurationVar(&o.RaftTick, "raft-tick", daemon.DefaultRaftTick, "with a tracker group: raft's tick")
	fl.IntVar(&o.ElectionTicks, "election-ticks", daemon.DefaultElectionTicks, "with a tracker group: ticks without a heartbeat before a member stands for election (randomised up to twice as many)")
	fl.IntVar(&o.HeartbeatTicks, "heartbeat-ticks", daemon.DefaultHeartbeatTicks, "with a tracker group: ticks between the leader's heartbeats")
	fl.StringVar(&o.Join, "join", "", "with a tracker group: join the running group with this raft ID, as 'shoal round group add' printed it (the data directory's raft log must be empty)")
	fl.Uint64Var(&o.SnapshotEvery, "snapshot-entries", 0, "with a tracker group: log entries between snapshots (0: the default, 4096)")
	fl.StringVar(&o.GroupSecret, "group-secret", "", "with a tracker group: a file holding the audit secret the group's members share (at least 16 bytes; without it, the group audits without a secret)")
	o.net.addFlags(fl)
	return cmd
}

func runRoundStart(ctx context.Context, f *factory, o *roundStartOptions) error {
	if !(o.Newcomers >= 0 && o.Newcomers <= 100) {
		return fmt.Errorf("--newcomers %v: need a fraction of the established workers from 0 (the default, 1) to 100", o.Newcomers)
	}
	if !(o.Spares >= 0 && o.Spares <= 1) {
		return fmt.Errorf("--spares %v: need a fraction from 0 to 1", o.Spares)
	}
	b, err := readRoundFile(o.File)
	if err != nil {
		return err
	}
	spec, err := round.Parse(b, o.File)
	if err != nil {
		return roundSpecError(o.File, err)
	}
	if err := roundDeepChecks(spec, int64(o.net.MaxMemory)); err != nil {
		return roundSpecError(o.File, err)
	}
	train, eval, floor, ds, err := roundData(o, spec)
	if err != nil {
		return err
	}
	if err := ensureDir(o.DataDir); err != nil {
		return err
	}
	log := slogFor(f)
	key, err := specTracker(o.DataDir, o.File, spec)
	if err != nil {
		return err
	}
	hopts, err := o.net.hostOptions(log.With("host", "tracker"), nil, filepath.Join(o.DataDir, "tracker.key"), nil)
	if err != nil {
		return err
	}
	th, store, err := daemon.NewHost(ctx, daemon.HostConfig{Dir: filepath.Join(o.DataDir, "tracker"), Options: hopts})
	if err != nil {
		return err
	}
	defer th.Close()
	roundID := spec.ID()
	if err := th.Discovery().Join(roundID.String()); err != nil {
		return err
	}
	if ds != nil {
		if err := daemon.ServeDataset(store, ds); err != nil {
			return err
		}
		fmt.Fprintf(f.Err, "serving dataset %s: %d shards, %s\n", spec.Dataset, len(ds.Shards), bytesize.Format(float64(ds.Manifest.Bytes)))
	}
	if o.tokenizer, err = serveTokenizer(store, spec, o.Vocab, o.Merges); err != nil {
		return err
	}
	if err := checkBase(store.Checkpoints(), spec, filepath.Join(o.DataDir, "tracker", "checkpoints")); err != nil {
		return err
	}
	genesisEngine, err := engine.NewModelEngine(spec, train, store)
	if err != nil {
		return err
	}
	genesis, err := genesisEngine.Genesis()
	if err != nil {
		return err
	}
	db, err := boltstore.OpenBolt(filepath.Join(o.DataDir, "tracker.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	inv := daemon.Invite{Round: roundID, Peers: []peer.AddrInfo{th.AddrInfo()}}
	var gcfg daemon.GroupConfig
	var groupSecret []byte
	if spec.Group() {
		if gcfg, groupSecret, err = groupConfig(o); err != nil {
			return err
		}
		defer gcfg.Log.Close()
		// Volunteers find every member of the group in the invite.
		others, err := groupPeers(spec, th.ID())
		if err != nil {
			return err
		}
		inv.Peers = append(inv.Peers, others...)
	}
	evals := newEvalLog()
	// The round's own observer is the tracker's anchor: in an open round
	// its commit outweighs any number of fresh peer IDs.
	oh, od, err := roundObserver(ctx, o, log, spec, key, th, train, eval, evals)
	if err != nil {
		return err
	}
	var anchors []string
	if oh != nil {
		defer oh.Close()
		if !spec.Group() {
			// A group's members must decide alike: each one's own
			// observer is a member like any other, not an anchor.
			anchors = []string{oh.ID().String()}
		}
	}
	td, err := daemon.NewTracker(daemon.TrackerConfig{Spec: spec, Host: th, Store: store, Storage: db, Genesis: genesis,
		MinMembers: o.MinMembers, Spares: o.Spares, Newcomers: o.Newcomers, Anchors: anchors, Logger: log.With("role", "tracker"), Invite: inv.String(), Floor: floor, EvalLoss: evals.get, EvalSample: evals.getSample,
		History: filepath.Join(o.DataDir, "dashboard.json"), Group: gcfg, AuditSecret: groupSecret})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	running := 0
	start := func(name string, run func(context.Context) error) {
		running++
		go func() {
			err := run(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errs <- err
		}()
	}
	start("tracker", td.Run)

	if o.Observer {
		inv.Peers = append(inv.Peers, oh.AddrInfo())
		start("observer", od.Run)
	}

	ln, err := net.Listen("tcp", o.DashboardAddr)
	if err != nil {
		return fmt.Errorf("--dashboard-addr: %w", err)
	}
	var handler http.Handler = dashboard.New(td.Snapshot, dashboard.Options{})
	if spec.Group() {
		mux := http.NewServeMux()
		mux.Handle("/api/group/", groupHandler(td))
		mux.Handle("/", handler)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(f.Err, "round %s (%s)\n", roundID, spec.Name)
	fmt.Fprintf(f.Err, "dashboard: http://%s/\n", ln.Addr())
	fmt.Fprintf(f.Err, "volunteers join with:\n  shoal node join '%s'\n", inv)
	fmt.Fprintln(f.Out, inv.String())

	var first error
	for range running {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// roundData returns what a round trains and evaluates on: the built-in
// task (and its entropy floor), or the dataset --data makes, which must be
// the one the spec names.
func roundData(o *roundStartOptions, spec *round.Spec) (train, eval []byte, floor float64, ds *data.Dataset, err error) {
	train, eval, floor = daemon.BuiltinData()
	if spec.Dataset.Builtin {
		return train, eval, floor, nil, nil
	}
	if o.Data == "" {
		return nil, nil, 0, nil, fmt.Errorf("%s names dataset %s: give its text with --data PATH", o.File, spec.Dataset)
	}
	corpus, err := data.LoadText(o.Data)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("--data: %w", err)
	}
	if ds, err = data.BuildDataset(corpus.Bytes); err != nil {
		return nil, nil, 0, nil, fmt.Errorf("--data %s: %w", o.Data, err)
	}
	if id := ds.Manifest.ID(); !id.Equals(spec.Dataset.Manifest) {
		return nil, nil, 0, nil, fmt.Errorf("--data %s makes dataset %s, but %s names %s", o.Data, id, o.File, spec.Dataset)
	}
	return nil, ds.Eval, 0, ds, nil
}

// roundObserver starts the round's own observer unless --observer=false
// (then it returns nils).
func roundObserver(ctx context.Context, o *roundStartOptions, log *slog.Logger, spec *round.Spec, key crypto.PrivKey,
	th *p2p.Host, train, eval []byte, evals *evalLog) (*p2p.Host, *daemon.Node, error) {
	if !o.Observer {
		return nil, nil, nil
	}
	return startObserver(ctx, o, log, spec, key, th, train, eval, evals)
}

// startObserver makes the round's own observer: a peer beside the
// tracker that applies and checks every step and measures each head on
// the held-out text.
func startObserver(ctx context.Context, o *roundStartOptions, log *slog.Logger, spec *round.Spec, key crypto.PrivKey,
	th *p2p.Host, train, eval []byte, evals *evalLog) (*p2p.Host, *daemon.Node, error) {
	odir := filepath.Join(o.DataDir, "observer")
	oopts, err := o.net.hostOptions(log.With("host", "observer"), nil, filepath.Join(odir, "identity.key"), []peer.AddrInfo{th.AddrInfo()})
	if err != nil {
		return nil, nil, err
	}
	if len(o.net.Listen) > 0 || !o.net.Loopback {
		// The tracker has the configured ports; the observer takes
		// free ones on the same interfaces.
		oopts.ListenAddrs = freePorts(oopts.ListenAddrs)
	}
	oh, ostore, err := daemon.NewHost(ctx, daemon.HostConfig{Dir: odir, Options: oopts})
	if err != nil {
		return nil, nil, err
	}
	if err := fetchInputs(ctx, io.Discard, oh, ostore, spec, []peer.ID{th.ID()}); err != nil {
		oh.Close()
		return nil, nil, err
	}
	od, err := newObserver(oh, ostore, odir, log, spec, key, train, eval, evals, o.tokenizer)
	if err != nil {
		oh.Close()
		return nil, nil, err
	}
	return oh, od, nil
}

func newObserver(oh *p2p.Host, ostore *daemon.Store, odir string, log *slog.Logger, spec *round.Spec, key crypto.PrivKey,
	train, eval []byte, evals *evalLog, tok *tokenizer.BPE) (*daemon.Node, error) {
	roundID := spec.ID()
	if err := oh.Discovery().Join(roundID.String()); err != nil {
		return nil, err
	}
	var token []byte
	if spec.Admission == round.AdmissionClosed {
		// The round's own observer needs a token like anyone else.
		text, err := daemon.IssueToken(key, roundID, oh.ID(), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			return nil, err
		}
		if token, err = daemon.ParseToken(text); err != nil {
			return nil, err
		}
	}
	return daemon.NewPeer(daemon.PeerConfig{Spec: spec, Role: wire.RoleObserver, Dir: odir, Host: oh, Store: ostore,
		Token: token, Logger: log.With("role", "observer"), Train: train, Eval: eval, OnEval: evals.set, OnSample: evals.setSample,
		Tokenizer: tok})
}

// groupConfig opens a tracker group member's raft log (raft.db in
// --data-dir) and reads its timing and shared secret from the flags.
func groupConfig(o *roundStartOptions) (daemon.GroupConfig, []byte, error) {
	if o.RaftTick <= 0 || o.ElectionTicks < 2 || o.HeartbeatTicks < 1 || o.HeartbeatTicks >= o.ElectionTicks {
		return daemon.GroupConfig{}, nil, fmt.Errorf("--raft-tick %v, --election-ticks %d, --heartbeat-ticks %d: need a positive tick and fewer heartbeat ticks than election ticks",
			o.RaftTick, o.ElectionTicks, o.HeartbeatTicks)
	}
	var secret []byte
	if o.GroupSecret != "" {
		b, err := os.ReadFile(o.GroupSecret)
		if err != nil {
			return daemon.GroupConfig{}, nil, fmt.Errorf("--group-secret: %w", err)
		}
		if secret = []byte(strings.TrimSpace(string(b))); len(secret) < 16 {
			return daemon.GroupConfig{}, nil, fmt.Errorf("--group-secret %s: %d bytes, need at least 16", o.GroupSecret, len(secret))
		}
	}
	log, err := group.OpenLogStore(filepath.Join(o.DataDir, "raft.db"))
	if err != nil {
		return daemon.GroupConfig{}, nil, err
	}
	g := daemon.GroupConfig{Log: log, Tick: o.RaftTick, ElectionTicks: o.ElectionTicks, HeartbeatTicks: o.HeartbeatTicks, SnapshotEntries: o.SnapshotEvery}
	if o.Join != "" {
		if g.Join, err = strconv.ParseUint(o.Join, 16, 64); err != nil || g.Join == 0 {
			log.Close()
			return daemon.GroupConfig{}, nil, fmt.Errorf("--join %q: want the raft ID 'shoal round group add' printed", o.Join)
		}
		if !log.Empty() {
			log.Close()
			return daemon.GroupConfig{}, nil, fmt.Errorf("--join: %s holds a raft log already: a tracker joins with an empty one", filepath.Join(o.DataDir, "raft.db"))
		}
	}
	return g, secret, nil
}

// groupPeers returns the other members of the spec's tracker group at
// the addresses it gives.
func groupPeers(spec *round.Spec, self peer.ID) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for i, p := range spec.TrackerIDs() {
		id, err := peer.Decode(p)
		if err != nil {
			return nil, fmt.Errorf("trackers[%d]: %w", i, err)
		}
		if id == self || i >= len(spec.TrackerAddrs) {
			continue
		}
		a, err := ma.NewMultiaddr(spec.TrackerAddrs[i])
		if err != nil {
			return nil, fmt.Errorf("tracker_addrs[%d]: %w", i, err)
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}})
	}
	return out, nil
}

// specTracker loads the tracker identity in dataDir (creating it if there
// is none) and checks that it is the first tracker the spec in file names,
// or, for a tracker group, one of them.
func specTracker(dataDir, file string, spec *round.Spec) (crypto.PrivKey, error) {
	key, err := p2p.LoadOrCreateIdentity(filepath.Join(dataDir, "tracker.key"))
	if err != nil {
		return nil, err
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if spec.Group() {
		if !spec.IsTracker(self.String()) {
			return nil, fmt.Errorf("%s names the tracker group %v, but the identity in %s is %s: add it to trackers: (or use the --data-dir of one of them)",
				file, spec.TrackerIDs(), dataDir, self)
		}
		return key, nil
	}
	if want, _ := round.CanonicalPeerID(spec.Trackers[0]); want != self.String() {
		return nil, fmt.Errorf("%s names tracker %s, but the identity in %s is %s: put %s first under trackers: (or use the --data-dir that holds %s's key)",
			file, spec.Trackers[0], dataDir, self, self, spec.Trackers[0])
	}
	return key, nil
}

// freePorts replaces the port of every TCP or UDP listen address by 0.
func freePorts(addrs []ma.Multiaddr) []ma.Multiaddr {
	re := regexp.MustCompile(`/(tcp|udp)/\d+`)
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(re.ReplaceAllString(a.String(), "/$1/0"))
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}

// evalLog keeps the held-out losses the observer measured, by step.
type evalLog struct {
	mu      sync.Mutex
	m       map[uint64]float64
	samples map[uint64]string
}

func newEvalLog() *evalLog { return &evalLog{m: map[uint64]float64{}, samples: map[uint64]string{}} }

func (e *evalLog) setSample(step uint64, text string) {
	e.mu.Lock()
	e.samples[step] = text
	e.mu.Unlock()
}

func (e *evalLog) getSample(step uint64) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.samples[step]
	return v, ok
}

func (e *evalLog) set(step uint64, loss float64) {
	e.mu.Lock()
	e.m[step] = loss
	e.mu.Unlock()
}

func (e *evalLog) get(step uint64) (float64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[step]
	return v, ok
}

// roundInviteOptions are the arguments and flags of `shoal round invite`.
type roundInviteOptions struct {
	File    string
	DataDir string
	Peer    string
	Expires time.Duration
}

func newCmdRoundInvite(f *factory, runF func(*roundInviteOptions) error) *cobra.Command {
	o := &roundInviteOptions{}
	cmd := &cobra.Command{
		Use:   "invite FILE --peer ID",
		Short: "Sign an access token that lets one peer into a closed round",
		Long: `Sign an access token for a closed round (admission: closed in FILE).

In a closed round the tracker admits only peers that present a token it
signed for their peer ID; the messages of any other peer are ignored
before any work is spent on them, and the refusal shows in the tracker's
log and on its dashboard. The token is printed on standard output; the
volunteer passes it to 'shoal node join --token'. The volunteer's peer ID
is printed by 'shoal node join' when it starts (it is kept in its
--data-dir). The tracker's identity is read from --data-dir.`,
		Example: `  shoal round invite round.yaml --data-dir ./tracker --peer 12D3KooW... --expires 720h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			if runF != nil {
				return runF(o)
			}
			return runRoundInvite(f, o)
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "shoal-tracker", "the tracker's data directory")
	cmd.Flags().StringVar(&o.Peer, "peer", "", "the peer ID to admit (required)")
	cmd.Flags().DurationVar(&o.Expires, "expires", 30*24*time.Hour, "how long the token is valid")
	_ = cmd.MarkFlagRequired("peer")
	return cmd
}

func runRoundInvite(f *factory, o *roundInviteOptions) error {
	b, err := readRoundFile(o.File)
	if err != nil {
		return err
	}
	spec, err := round.Parse(b, o.File)
	if err != nil {
		return roundSpecError(o.File, err)
	}
	if spec.Admission != round.AdmissionClosed {
		return fmt.Errorf("%s: admission is %s: an open round needs no tokens (set admission: closed)", o.File, spec.Admission)
	}
	p, err := peer.Decode(o.Peer)
	if err != nil {
		return fmt.Errorf("--peer %q: %v", o.Peer, err)
	}
	if o.Expires <= 0 {
		return fmt.Errorf("--expires must be positive, got %v", o.Expires)
	}
	keyPath := filepath.Join(o.DataDir, "tracker.key")
	if _, err := os.Stat(keyPath); err != nil {
		return fmt.Errorf("no tracker identity at %s: use the --data-dir of 'shoal round init' and 'shoal round start'", keyPath)
	}
	key, err := specTracker(o.DataDir, o.File, spec)
	if err != nil {
		return err
	}
	exp := time.Now().Add(o.Expires)
	tok, err := daemon.IssueToken(key, spec.ID(), p, exp)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.Err, "token for %s in round %s, valid until %s\n", p, spec.ID(), exp.UTC().Format(time.RFC3339))
	fmt.Fprintln(f.Out, tok)
	return nil
}

// roundStatusOptions are the arguments and flags of `shoal round status`.
type roundStatusOptions struct {
	Target  string
	JSON    bool
	Timeout time.Duration
}

func newCmdRoundStatus(f *factory, runF func(context.Context, *roundStatusOptions) error) *cobra.Command {
	o := &roundStatusOptions{}
	cmd := &cobra.Command{
		Use:   "status URL",
		Short: "Print a round's state from its tracker's dashboard",
		Long: `Print what a round's dashboard shows: the step, the loss, the peers and
their contribution ledger. URL is the dashboard's address as 'shoal round
start' printed it (http://HOST:PORT/ or HOST:PORT). With --json the
output is the dashboard's snapshot as JSON.`,
		Example: `  shoal round status http://127.0.0.1:8080/
  shoal round status --json 127.0.0.1:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Target = args[0]
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runRoundStatus(cmd.Context(), f, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the snapshot as JSON")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func runRoundStatus(ctx context.Context, f *factory, o *roundStatusOptions) error {
	if strings.HasPrefix(o.Target, "shoal:") {
		return errors.New("round status reads the tracker's dashboard: give its URL (shown by 'shoal round start'), not the invite")
	}
	u := o.Target
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	u = strings.TrimSuffix(u, "/") + "/api/status"
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %v", o.Target, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the dashboard: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	var snap dashboard.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return fmt.Errorf("%s did not answer with a round snapshot: %v", u, err)
	}
	if o.JSON {
		e := json.NewEncoder(f.Out)
		e.SetIndent("", "  ")
		return e.Encode(snap)
	}
	w := f.Out
	fmt.Fprintf(w, "round    %s  %s\n", snap.Round, snap.Name)
	fmt.Fprintf(w, "step     %d (%s), head %s\n", snap.Step, snap.Phase, snap.Head)
	if n := len(snap.Loss); n > 0 {
		p := snap.Loss[n-1]
		line := fmt.Sprintf("loss     step %d: train %.4f", p.Step, p.Train)
		if p.Eval > 0 {
			line += fmt.Sprintf(", held-out %.4f", p.Eval)
		}
		if snap.Floor > 0 && p.Eval > 0 {
			line += fmt.Sprintf(" (%.1f%% above the floor %.4f)", 100*(p.Eval/snap.Floor-1), snap.Floor)
		}
		fmt.Fprintln(w, line)
	}
	for i := len(snap.Loss) - 1; i >= 0; i-- {
		if p := snap.Loss[i]; p.Sample != "" {
			fmt.Fprintf(w, "sample   after step %d: %q\n", p.Step, p.Sample)
			break
		}
	}
	if snap.StartEval > 0 {
		fmt.Fprintf(w, "start    held-out %.4f (the checkpoint the round started from)\n", snap.StartEval)
	}
	t := snap.Throughput
	fmt.Fprintf(w, "pace     %.0f samples/s, %s/s in, %s/s out, %.1f s per step\n", t.SamplesPerSec,
		bytesize.Format(t.BytesInPerSec), bytesize.Format(t.BytesOutPerSec), t.StepSeconds)
	if g := snap.Group; g != nil {
		leader := g.Leader
		if leader == "" {
			leader = "none known"
		}
		fmt.Fprintf(w, "group    %d trackers, term %d, leader %s; this one %s applied %d of %d (snapshot at %d, %d entries of log)\n",
			len(g.Members), g.Term, leader, g.Self, g.Applied, g.Commit, g.Snapshot, g.LogLen)
		for _, m := range g.Members {
			line := "         " + m
			if m == g.Leader {
				line += "  leader"
			}
			if lag, ok := g.Lag[m]; ok {
				line += fmt.Sprintf("  %d entries behind", lag)
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// A leaderboard: the most verified samples (a volunteer's credit) first.
	peers := slices.Clone(snap.Peers)
	slices.SortStableFunc(peers, func(a, b dashboard.PeerInfo) int {
		return cmp.Or(cmp.Compare(b.Verified, a.Verified), strings.Compare(a.ID, b.ID))
	})
	fmt.Fprintln(tw, "#\tPEER\tROLE\tSTATE\tSTEP\tUNITS\tSAMPLES\tVERIFIED\tCHECKS\tMISMATCHES\tREASON")
	for i, p := range peers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", i+1, p.ID, p.Role, p.State, p.HeadStep, p.Units, p.Samples,
			p.Verified, p.Checks, p.Mismatches, p.Reason)
	}
	return tw.Flush()
}

// checkBase checks that the tracker holds the checkpoints a round starts
// from or reads (which it serves to the volunteers) and that each holds
// the parameters of its model: a round whose base is missing or of
// another model would stall at its first step.
func checkBase(s *checkpoint.Store, spec *round.Spec, dir string) error {
	if spec.InitCheckpoint.Defined() {
		if err := checkHolds(s, spec.InitCheckpoint, engine.ModelConfig(spec), "init_checkpoint", dir); err != nil {
			return err
		}
	}
	if a := spec.Adapter; a != nil {
		if err := checkHolds(s, a.Base, engine.ModelConfig(spec).BaseConfig(), "adapter.base", dir); err != nil {
			return err
		}
	}
	if t := spec.Teacher; t != nil {
		if _, err := s.Header(t.Checkpoint); err != nil {
			return fmt.Errorf("teacher.checkpoint %s: %w; import the teacher into the tracker's store first: shoal checkpoint import FILE --store %s", t.Checkpoint, err, dir)
		}
	}
	return nil
}

// checkHolds checks that the store holds checkpoint id (the spec's field)
// and that it holds the parameters of the model cfg describes, no more.
func checkHolds(s *checkpoint.Store, id cid.Cid, cfg gradient.ModelConfig, field, dir string) error {
	h, err := s.Header(id)
	if err != nil {
		return fmt.Errorf("%s %s: %w; import the checkpoint into the tracker's store first: shoal checkpoint import FILE --store %s", field, id, err, dir)
	}
	want, _ := modelTensors(cfg)
	have := map[string]string{}
	for _, t := range h.Tensors {
		if !checkpoint.IsState(t.Name) {
			have[t.Name] = fmt.Sprint(t.Shape)
		}
	}
	for _, t := range want {
		if got, ok := have[t.Name]; !ok || got != fmt.Sprint(t.Shape) {
			return fmt.Errorf("%s %s does not hold the round's model: tensor %s of shape %v is %s", field, id, t.Name, t.Shape, cmp.Or(got, "missing"))
		}
		delete(have, t.Name)
	}
	for name := range have {
		return fmt.Errorf("%s %s does not hold the round's model: it has a tensor %s the model lacks", field, id, name)
	}
	return nil
}

// serveTokenizer loads the tokenizer a spec names from its files, checks
// that it is the one the spec names, and serves its canonical encoding
// under that CID, for volunteers to fetch. A byte-level spec needs none.
func serveTokenizer(store *daemon.Store, spec *round.Spec, vocab, merges string) (*tokenizer.BPE, error) {
	if !spec.Tokenizer.Defined() {
		if vocab != "" || merges != "" {
			return nil, errors.New("--vocab and --merges: the spec names no tokenizer (add tokenizer: CID, which shoal tokenize prints)")
		}
		return nil, nil
	}
	if vocab == "" || merges == "" {
		return nil, fmt.Errorf("the spec's tokenizer %s: give its files with --vocab encoder.json --merges vocab.bpe", spec.Tokenizer)
	}
	tok, err := loadTokenizer(vocab, merges)
	if err != nil {
		return nil, err
	}
	if !tok.ID().Equals(spec.Tokenizer) {
		return nil, fmt.Errorf("--vocab %s --merges %s make tokenizer %s, the spec names %s", vocab, merges, tok.ID(), spec.Tokenizer)
	}
	if n := tok.VocabSize(); n > spec.Model.Vocab {
		return nil, fmt.Errorf("the tokenizer has %d tokens, more than the model's vocabulary of %d", n, spec.Model.Vocab)
	}
	if err := store.Put(spec.Tokenizer, tok.Marshal()); err != nil {
		return nil, err
	}
	return tok, nil
}

// loadTokenizer reads GPT-2's vocabulary files.
func loadTokenizer(vocab, merges string) (*tokenizer.BPE, error) {
	ef, err := os.Open(vocab)
	if err != nil {
		return nil, fmt.Errorf("--vocab: %w", err)
	}
	defer ef.Close()
	mf, err := os.Open(merges)
	if err != nil {
		return nil, fmt.Errorf("--merges: %w", err)
	}
	defer mf.Close()
	return tokenizer.Load(ef, mf)
}
