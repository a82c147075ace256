package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/tokenizer"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Invite is what a volunteer needs to join a round: its ID and where to
// find peers. Its text form is one line to paste in a chat:
//
//	shoal:<round CID>@<multiaddr>[,<multiaddr>...]
//
// where each multiaddr ends in /p2p/<peer ID>.
type Invite struct {
	Round cid.Cid
	Peers []peer.AddrInfo
}

func (inv Invite) String() string {
	var addrs []string
	for _, ai := range inv.Peers {
		full, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range full {
			addrs = append(addrs, a.String())
		}
	}
	return "shoal:" + inv.Round.String() + "@" + strings.Join(addrs, ",")
}

// ParseInvite reads an invite's text form.
func ParseInvite(s string) (Invite, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "shoal:")
	if !ok {
		return Invite{}, errors.New(`invite: must start with "shoal:"`)
	}
	id, addrs, ok := strings.Cut(rest, "@")
	if !ok || addrs == "" {
		return Invite{}, errors.New("invite: no peer addresses after the round ID (want shoal:<round>@<multiaddr>,...)")
	}
	round, err := cid.Decode(id)
	if err != nil {
		return Invite{}, fmt.Errorf("invite: round ID %q: %v", id, err)
	}
	var mas []ma.Multiaddr
	for _, a := range strings.Split(addrs, ",") {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return Invite{}, fmt.Errorf("invite: address %q: %v", a, err)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return Invite{}, fmt.Errorf("invite: %v (every address must end in /p2p/<peer ID>)", err)
	}
	return Invite{Round: round, Peers: infos}, nil
}

// BuiltinData returns the built-in task's training and held-out text and
// its entropy floor.
func BuiltinData() (train, eval []byte, floor float64) {
	t := data.Builtin()
	train, eval = t.Corpus(data.BuiltinTrainBytes, data.BuiltinEvalBytes)
	return train, eval, t.EntropyRate()
}

// Evaluator returns a function that measures the held-out loss of a
// checkpoint in store, on up to batches batches of eval.
func Evaluator(spec *round.Spec, store engine.Store, eval []byte, batches int) (func(cid.Cid) (float64, error), error) {
	ev, err := newHeadEval(spec, store, eval, batches, nil, nil)
	if err != nil {
		return nil, err
	}
	return func(id cid.Cid) (float64, error) {
		if err := ev.load(id); err != nil {
			return 0, err
		}
		return ev.loss(), nil
	}, nil
}

// headEval is what an observer does with each new head: it loads the
// head's parameters into a model of its own, measures the held-out loss
// and, for a gpt of bytes, writes a short sample of text.
type headEval struct {
	store engine.Store
	m     gradient.Model
	set   [][]int32
}

// newHeadEval returns the evaluation of a round's heads, in model if it
// is not nil (the node's engine's model, which jobs and evaluations take
// in turn on one goroutine: a second copy of a large model would double
// the observer's memory), else in a model of its own.
func newHeadEval(spec *round.Spec, store engine.Store, eval []byte, batches int, tok *tokenizer.BPE, model gradient.Model) (*headEval, error) {
	cfg := engine.ModelConfig(spec)
	m := model
	if m == nil {
		var err error
		if m, err = engine.NewModel(spec, store); err != nil {
			return nil, err
		}
	}
	batches = min(batches, evalBatchesFor(gradient.NumParams(m), cfg.Ctx))
	var set [][]int32
	if tok != nil {
		ids := tok.Encode(eval)
		if err := data.CheckSize(ids, cfg.Ctx); err != nil {
			return nil, fmt.Errorf("held-out text: %w", err)
		}
		set = data.EvalBatches(ids, 8, cfg.Ctx, batches)
	} else {
		if err := data.CheckSize(eval, cfg.Ctx); err != nil {
			return nil, fmt.Errorf("held-out text: %w", err)
		}
		set = data.EvalBatches(eval, 8, cfg.Ctx, batches)
	}
	if len(set) == 0 {
		return nil, errors.New("held-out text is too short to evaluate on")
	}
	return &headEval{store: store, m: m, set: set}, nil
}

// load reads the parameters of checkpoint id into the model, a chunk at
// a time when the store can.
func (e *headEval) load(id cid.Cid) error {
	ps := e.m.Params()
	byName := make(map[string]gradient.Param, len(ps))
	for _, p := range ps {
		byName[p.Name] = p
	}
	into := func(name string, shape []int) ([]float32, error) {
		p, ok := byName[name]
		if !ok {
			return nil, nil
		}
		delete(byName, name)
		if int64(len(p.Data)) != checkpoint.NumValues(shape) {
			return nil, fmt.Errorf("shape %v, the model's %v", shape, p.Shape())
		}
		return p.Data, nil
	}
	if ss, ok := e.store.(engine.StreamStore); ok {
		if err := ss.LoadCheckpoint(id, into); err != nil {
			return err
		}
	} else {
		c, err := e.store.Checkpoint(id)
		if err != nil {
			return err
		}
		for _, t := range c.Tensors {
			dst, err := into(t.Name, t.Shape)
			if err != nil {
				return fmt.Errorf("checkpoint %s: %s: %w", id, t.Name, err)
			}
			copy(dst, t.Data)
		}
	}
	for name := range byName {
		return fmt.Errorf("checkpoint %s lacks parameter %s", id, name)
	}
	return nil
}

// evalBudget bounds the arithmetic of measuring one head, in multiplies
// and adds (about 2 per parameter per token): a few seconds of a core,
// so that an observer of a large model keeps up with the round.
const evalBudget = 2e12

// evalBatchesFor returns how many batches of 8 sequences of ctx tokens
// fit in evalBudget for a model of params parameters (at least one).
func evalBatchesFor(params, ctx int) int {
	return max(1, int(evalBudget/(2*float64(params)*8*float64(ctx))))
}

func (e *headEval) loss() float64 { return gradient.Evaluate(e.m, e.set, 8) }

// sampleTokens is how many bytes a head's sample has.
const sampleTokens = 160

// sample continues a newline with the loaded model, from a fixed seed so
// that the same head always says the same thing; "" for a model that is
// not a gpt of bytes.
func (e *headEval) sample() string {
	if e.m.Config().Arch != "gpt" || e.m.Config().Vocab != 256 {
		return ""
	}
	g, err := gradient.NewGenerator(e.m)
	if err != nil {
		return ""
	}
	s, _ := gradient.NewSampler(0.8, 40, 0.95, 1)
	tok := int32('\n')
	var out []byte
	for range min(sampleTokens, e.m.Config().Ctx-1) {
		logits, err := g.Next(tok)
		if err != nil {
			break
		}
		tok = s.Sample(logits)
		out = append(out, byte(tok))
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// LocalConfig configures a LocalRound.
type LocalConfig struct {
	Spec    *round.Spec // Trackers is filled in with the local tracker's ID
	Workers int
	Dir     string // data directories go under it
	Train   []byte
	Eval    []byte
	Floor   float64
	Logger  *slog.Logger
	// Dataset, if set, is the text the round trains on instead of the
	// built-in task (Train and Eval are then ignored): the tracker serves
	// its shards and each worker fetches the ones its units need.
	Dataset *data.Dataset
}

// LocalRound is a whole round in one process: a tracker, an observer and
// workers, each a real libp2p host on 127.0.0.1, talking TCP and QUIC.
// It is `shoal demo`, and a test bed for the daemons.
type LocalRound struct {
	Spec     *round.Spec
	Tracker  *Tracker
	Observer *Node
	Workers  []*Node
	Invite   Invite
	hosts    []*p2p.Host
	newNode  func(name string, role wire.Role, token bool) (*Node, error)
	evalMu   sync.Mutex
	evals    map[uint64]float64
	samples  map[uint64]string
}

// StartLocal creates the hosts and daemons of a local round (Run starts
// them).
func StartLocal(ctx context.Context, cfg LocalConfig) (_ *LocalRound, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	tid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	spec := *cfg.Spec
	spec.Trackers = []string{tid.String()}
	if cfg.Dataset != nil {
		spec.Dataset = round.Dataset{Manifest: cfg.Dataset.Manifest.ID()}
		cfg.Eval = cfg.Dataset.Eval
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	l := &LocalRound{Spec: &spec, evals: map[uint64]float64{}, samples: map[uint64]string{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	newHost := func(name string, id crypto.PrivKey, boot []peer.AddrInfo) (*p2p.Host, *Store, string, error) {
		dir := filepath.Join(cfg.Dir, name)
		opts := p2p.LoopbackOptions()
		opts.Logger = log.With("host", name)
		opts.Bootstrap = boot
		opts.Identity = id
		h, st, err := NewHost(ctx, HostConfig{Dir: dir, Options: opts})
		if err != nil {
			return nil, nil, "", err
		}
		l.hosts = append(l.hosts, h)
		if err := h.Discovery().Join(spec.ID().String()); err != nil {
			return nil, nil, "", err
		}
		return h, st, dir, nil
	}
	th, tstore, tdir, err := newHost("tracker", key, nil)
	if err != nil {
		return nil, err
	}
	l.Invite = Invite{Round: spec.ID(), Peers: []peer.AddrInfo{th.AddrInfo()}}
	if ds := cfg.Dataset; ds != nil {
		if err := ServeDataset(tstore, ds); err != nil {
			return nil, err
		}
	}
	boot := []peer.AddrInfo{th.AddrInfo()}

	newNode := func(name string, role wire.Role, token bool) (*Node, error) {
		h, st, dir, err := newHost(name, nil, boot)
		if err != nil {
			return nil, err
		}
		var tok []byte
		if token && spec.Admission == round.AdmissionClosed {
			if tok, err = localToken(key, spec.ID(), h.ID()); err != nil {
				return nil, err
			}
		}
		pc := PeerConfig{Spec: &spec, Role: role, Dir: dir, Host: h, Store: st, Logger: log.With("node", name), Token: tok,
			Train: cfg.Train, Eval: cfg.Eval, OnEval: l.setEval, OnSample: l.setSample}
		if ds := cfg.Dataset; ds != nil {
			pc.Dataset, pc.DataPeers = ds.Manifest, []peer.ID{tid}
		}
		return NewPeer(pc)
	}
	l.newNode = newNode
	if l.Observer, err = newNode("observer", wire.RoleObserver, true); err != nil {
		return nil, err
	}
	for i := range cfg.Workers {
		w, err := newNode(fmt.Sprintf("worker-%d", i+1), wire.RoleWorker, true)
		if err != nil {
			return nil, err
		}
		l.Workers = append(l.Workers, w)
	}
	genesis := l.Observer.core
	_, g := genesis.Head()
	db, err := boltstore.OpenBolt(filepath.Join(tdir, "tracker.db"))
	if err != nil {
		return nil, err
	}
	l.Tracker, err = NewTracker(TrackerConfig{Spec: &spec, Host: th, Store: tstore, Storage: db, Genesis: g,
		MinMembers: cfg.Workers, Logger: log.With("role", "tracker"), Invite: l.Invite.String(), Floor: cfg.Floor,
		EvalLoss: l.EvalLoss, EvalSample: l.EvalSample, Anchors: []string{l.Observer.Core().ID()}})
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// localToken issues a day's access token for a peer of a local round.
func localToken(key crypto.PrivKey, round cid.Cid, p peer.ID) ([]byte, error) {
	text, err := IssueToken(key, round, p, time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	return ParseToken(text)
}

// setEval records the held-out loss the observer measured for C_step.
func (l *LocalRound) setEval(step uint64, loss float64) {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	l.evals[step] = loss
}

// setSample records the observer's sample of text from C_step.
func (l *LocalRound) setSample(step uint64, text string) {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	l.samples[step] = text
}

// EvalSample returns the observer's sample of text from C_step.
func (l *LocalRound) EvalSample(step uint64) (string, bool) {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	s, ok := l.samples[step]
	return s, ok
}

// NewWorker makes one more worker, with an access token to a closed
// round or without one; run it with its Run.
func (l *LocalRound) NewWorker(name string, token bool) (*Node, error) {
	return l.newNode(name, wire.RoleWorker, token)
}

// ServeDataset puts a dataset's manifest, shards and held-out text in a
// store, for its host to serve.
func ServeDataset(st *Store, ds *data.Dataset) error {
	m := ds.Manifest
	if err := st.Put(m.ID(), m.Encode()); err != nil {
		return err
	}
	if err := st.Put(m.Eval.CID, ds.Eval); err != nil {
		return err
	}
	for i, s := range ds.Shards {
		if err := st.Put(m.Shards[i].CID, s); err != nil {
			return err
		}
	}
	return nil
}

// EvalLoss returns the held-out loss the observer measured for C_step.
func (l *LocalRound) EvalLoss(step uint64) (float64, bool) {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	v, ok := l.evals[step]
	return v, ok
}

// Run runs every daemon until ctx ends or one fails.
func (l *LocalRound) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2+len(l.Workers))
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("tracker", l.Tracker.Run)
	run("observer", l.Observer.Run)
	for i, w := range l.Workers {
		run(fmt.Sprintf("worker %d", i+1), w.Run)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Close closes the hosts.
func (l *LocalRound) Close() {
	for i := len(l.hosts) - 1; i >= 0; i-- {
		l.hosts[i].Close()
	}
}

// WaitFor polls cond every interval until it holds or ctx ends.
func WaitFor(ctx context.Context, interval time.Duration, cond func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// DemoSpec is the round `shoal demo` runs: gpt-tiny on the built-in task,
// units of 50 inner steps × 16 sequences, one unit per worker per step
// (workers of them), int8 updates, a quarter of the units replicated.
func DemoSpec(workers int) *round.Spec {
	s := round.Defaults()
	s.Name = "shoal demo: gpt-tiny on the built-in task"
	s.Model = round.Model{Arch: "gpt", Vocab: 256, Ctx: 64, Dim: 128, Layers: 2, Heads: 4, Seed: 1}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps = 50
	s.Batch = 16
	s.Inner.LR = 0.006
	s.Inner.Warmup = 50
	s.Outer = round.Nesterov{LR: 0.7, Momentum: 0.5}
	s.Codec = "int8"
	s.Aggregation = "mean"
	s.TargetSamples = workers * s.InnerSteps * s.Batch
	s.Deadline = 2 * time.Minute
	s.VerificationRate = 0.25
	s.Seed = 1
	s.Trackers = []string{"12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"} // replaced by StartLocal
	return s
}
