package simulations

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	nodeengine "github.com/shoal-network/shoal/node/engine"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/wire"
)

// RunOptions tune a run of a scenario; the zero value is a plain run with
// the invariants checked.
type RunOptions struct {
	// Progress, if set, is called after every finalised step.
	Progress func(Progress)
	// NoCheck turns the invariant checks off.
	NoCheck bool
	// Trace, if set, receives the cluster's trace lines.
	Trace func(string)
	// Context, if set, stops the run when it is done.
	Context context.Context
}

// Progress is how far a run has got.
type Progress struct {
	Run     string // the scenario's name (its twin's, while the twin runs)
	Steps   int    // finalised
	Of      int
	Virtual time.Duration
	Live    int
	Events  int64
	// TrackerWall is the wall time spent in the tracker's state machine
	// so far (not part of the report: it depends on the machine).
	TrackerWall time.Duration
}

// Run simulates a scenario (and its honest twin, if it asks for one) and
// returns the report. The same scenario gives the same report, byte for
// byte.
func Run(s *Scenario, opt RunOptions) (*Report, error) {
	main, err := runOne(s, opt)
	if err != nil {
		return nil, err
	}
	var twin *runResult
	if s.Twin {
		if twin, err = runOne(s.TwinOf(), opt); err != nil {
			return nil, fmt.Errorf("honest twin: %w", err)
		}
	}
	return buildReport(s, main, twin), nil
}

// runResult is what one run of a scenario gave.
type runResult struct {
	s         *Scenario
	steps     []engine.StepStats
	finals    []cid.Cid
	loss      []float64 // held-out loss of C_{k+1} (real training)
	loss0     float64   // of C_0
	totals    []engine.PeerTotals
	ledger    map[string]tracker.Entry
	dishonest map[string]Behaviour
	events    []engine.TimedEvent
	stopped   string
	virtual   time.Duration
	processed int64
	delivered int
	dropped   int
	trackerIn int64
	trkOut    int64
	updates   int     // updates published
	updBytes  float64 // their bytes on the wire
	meanUp    float64 // the network's mean uplink
	rates     []float64
	joined    int // peers that joined after the start
	departed  int
	checked   bool
	computed  int // pseudo-gradients computed (real training)
	shared    int // and handed out again

	// For the expectations: the cheaters there at the start (peers and
	// Sybils), every step the tracker opened (finalised or not), how the
	// honest heads stood at the end, and the error that stopped a run
	// whose scenario has expectations (its invariants broken).
	cheaters  map[string]Behaviour
	allSteps  []engine.StepStats
	heads     headCount
	broken    string
	sybilMsgs int
	group     *engine.GroupReport // the tracker group's (nil: one tracker)
}

// volatileStorage keeps no tracker state: for runs in which the tracker
// never crashes, it spares encoding the whole state at every decision.
type volatileStorage struct{}

func (volatileStorage) Load() (*tracker.State, error) { return nil, nil }
func (volatileStorage) Save(*tracker.State) error     { return nil }

var (
	builtinOnce  sync.Once
	builtinTrain []byte
	builtinEval  []byte
)

// builtinCorpus returns the built-in task's text (made once per process:
// it is deterministic).
func builtinCorpus() (train, eval []byte) {
	builtinOnce.Do(func() { builtinTrain, builtinEval = data.Builtin().Corpus(1<<20, 32<<10) })
	return builtinTrain, builtinEval
}

func simPeerName(i, n int) string {
	if n <= 100_000 {
		return fmt.Sprintf("peer-%05d", i)
	}
	return fmt.Sprintf("peer-%07d", i)
}

// run is one run of a scenario being set up and run: the cluster, and
// what the steps of runOne share.
type run struct {
	s    *Scenario
	opt  RunOptions
	real bool // real training, rather than its cost

	train, eval  []byte // the built-in task's text
	units        *UnitCache
	costShared   *CostShared
	genesisStore *engine.Store
	genesis      cid.Cid

	c           *engine.Cluster
	rng         *rand.Rand
	mix         engine.LinkMix
	res         *runResult
	speeds      map[string]float64 // per peer: how fast its machine computes
	behaviourOf []Behaviour        // of the peers there at the start
	total       int                // peers and observers at the start
	counter     int                // peers named so far
	evaluate    func(cid.Cid) float64
}

// runOne runs a scenario once: it makes the cluster, adds the peers,
// plans the scenario's events and runs the steps.
func runOne(s *Scenario, opt RunOptions) (*runResult, error) {
	r := &run{s: s, opt: opt, real: s.Training == "real", units: NewUnitCache(), costShared: NewCostShared(),
		res: &runResult{s: s, dishonest: map[string]Behaviour{}, loss0: math.NaN()}, speeds: map[string]float64{}}
	r.train, r.eval = builtinCorpus()
	if err := r.makeGenesis(); err != nil {
		return nil, err
	}
	if err := r.makeCluster(); err != nil {
		return nil, err
	}
	r.dealAdversaries()
	if err := r.addPeers(); err != nil {
		return nil, err
	}
	if err := r.addSybils(); err != nil {
		return nil, err
	}
	// The peers tick first within a tick of the start and say hello;
	// open the first step when all have been heard.
	r.c.DelayTracker(r.c.NodeTick() + 5*time.Second)
	if err := r.scheduleChurn(); err != nil {
		return nil, err
	}
	r.schedulePartitions()
	r.scheduleTrackerCrashes()
	if err := r.prepareEvaluation(); err != nil {
		return nil, err
	}
	if err := r.runSteps(); err != nil {
		return nil, err
	}
	r.settle()
	return r.collect(), nil
}

// makeGenesis stores C_0 in a store of its own.
func (r *run) makeGenesis() error {
	r.genesisStore = engine.NewStore(engine.NewPool())
	var err error
	if r.real {
		e, err := nodeengine.NewModelEngine(r.s.Spec, r.train, r.genesisStore)
		if err != nil {
			return err
		}
		r.genesis, err = e.Genesis()
		return err
	}
	r.genesis, err = (&CostEngine{Store: r.genesisStore, Spec: r.s.Spec}).Genesis()
	return err
}

// makeCluster makes the cluster the scenario describes, with the
// tracker's link.
func (r *run) makeCluster() error {
	s := r.s
	var storage tracker.Storage = volatileStorage{}
	if len(s.Network.TrackerCrashes) > 0 {
		storage = &tracker.MemStorage{}
	}
	cfg := engine.Config{Spec: s.Spec, Seed: s.Seed, Genesis: r.genesis, Storage: storage, MinMembers: s.MinMembers, Spares: s.Spares, Newcomers: s.Newcomers,
		Net:      &engine.Network{Hops: s.Network.Hops, Fanout: s.Network.Fanout, Duplicates: s.Network.Duplicates},
		Batch:    s.Batched(),
		DropRate: s.Network.Loss,
		JobTime:  r.jobTime,
		Tick:     time.Duration(s.Network.Tick), TrackerTick: time.Duration(s.Network.TrackerTick),
		LazyTicks: s.Lazy(),
		Trace:     r.opt.Trace,
	}
	// The scenario's observers are the round's own: the tracker's anchors.
	for i := range s.Observers {
		cfg.Anchors = append(cfg.Anchors, simPeerName(s.Peers+i, s.Peers+s.Observers))
	}
	if !r.real {
		cfg.UpdateBytes = int64(s.Compute.UpdateBytes)
		cfg.ResidualBytes = int64(s.Compute.ResidualBytes)
		cfg.CheckpointBytes = int64(s.Compute.CheckpointBytes)
	}
	if !r.opt.NoCheck {
		cfg.Check = r.invariants()
	}
	c, err := engine.New(cfg)
	if err != nil {
		return err
	}
	if (s.MinMembers > 0 || s.Spares > 0) && len(s.Network.TrackerCrashes) > 0 {
		// A run that sets the tracker's MinMembers or Spares and keeps
		// its state starts it as a restarted tracker (quiet for a while,
		// then announcing its step), as runs always have: reports of
		// such scenarios stay what they were.
		c.KillTracker()
		if err := c.RestartTracker(); err != nil {
			return err
		}
	}
	r.c, r.rng = c, c.Rand()
	r.mix, _ = engine.ParseLinkMix(s.Network.Links)
	tl := engine.LinkClasses[s.Network.Tracker]
	for _, id := range c.TrackerIDs() {
		c.SetLink(id, tl.Draw(r.rng), tl.Name)
	}
	return nil
}

// jobTime is the compute model: a job's duration on a peer's machine.
func (r *run) jobTime(id string, j node.Job) time.Duration {
	sp := r.speeds[id]
	cm := r.s.Compute
	switch j := j.(type) {
	case node.TrainJob:
		if r.res.dishonest[id].Idle() {
			return time.Duration(float64(cm.Apply) / sp)
		}
		return time.Duration(float64(cm.Train) / sp)
	case node.ApplyJob:
		return time.Duration(float64(cm.Apply) / sp)
	case node.VerifyJob:
		if j.Checked {
			return time.Duration(float64(cm.Train+cm.Verify) / sp)
		}
		return time.Duration(float64(cm.Verify) / sp)
	}
	return time.Duration(float64(cm.Apply) / sp)
}

// invariants is the check run after every event: the engine's
// invariants, the adversaries (newcomers among them too) exempt.
func (r *run) invariants() func(*engine.Cluster) error {
	bad := map[string]bool{}
	inv := engine.Invariants(bad)
	return func(c *engine.Cluster) error {
		if len(bad) != len(r.res.dishonest) {
			for id := range r.res.dishonest {
				bad[id] = true
			}
		}
		return inv(c)
	}
}

// dealAdversaries makes a fixed share of the first peers adversaries,
// chosen by the seed.
func (r *run) dealAdversaries() {
	n := r.s.Peers
	r.behaviourOf = make([]Behaviour, n)
	perm := r.rng.Perm(n)
	next := 0
	for _, a := range r.s.AdvSpecs {
		k := int(math.Round(a.Fraction * float64(n)))
		for ; k > 0 && next < n; k-- {
			r.behaviourOf[perm[next]] = Behaviour(a.Behaviour)
			next++
		}
	}
}

// drawBehaviour draws a newcomer's behaviour: an adversary's with the
// scenario's shares as probabilities.
func (r *run) drawBehaviour() Behaviour {
	x := r.rng.Float64()
	for _, a := range r.s.AdvSpecs {
		if x < a.Fraction {
			return Behaviour(a.Behaviour)
		}
		x -= a.Fraction
	}
	return ""
}

// addPeers adds the peers and observers there at the start.
func (r *run) addPeers() error {
	n := r.s.Peers
	r.total = n + r.s.Observers
	for i := range n {
		if err := r.addPeer(simPeerName(i, r.total), wire.RoleWorker, r.behaviourOf[i]); err != nil {
			return err
		}
	}
	for i := range r.s.Observers {
		if err := r.addPeer(simPeerName(n+i, r.total), wire.RoleObserver, ""); err != nil {
			return err
		}
	}
	r.counter = r.total
	r.res.cheaters = make(map[string]Behaviour, len(r.res.dishonest))
	for id, b := range r.res.dishonest {
		r.res.cheaters[id] = b
	}
	return nil
}

// addSybils adds the scenario's Sybil identities.
func (r *run) addSybils() error {
	y := r.s.Sybils
	if y.Count == 0 {
		return nil
	}
	ids := y.deal()
	for _, s := range ids {
		r.res.cheaters[s.ID] = sybilBehaviour(s.Kind)
	}
	return r.c.AddSybils(ids, int(y.JunkSize))
}

// addPeer adds a peer with a link drawn from the mix, a machine's speed
// and a behaviour.
func (r *run) addPeer(id string, role wire.Role, b Behaviour) error {
	l, class := r.mix.Draw(r.rng)
	r.speeds[id] = r.s.Compute.Speed.Median * math.Exp(r.s.Compute.Speed.Sigma*r.rng.NormFloat64())
	if b != "" {
		r.res.dishonest[id] = b
	}
	if err := r.c.AddNode(id, role, r.engineFor(id, b)); err != nil {
		return err
	}
	if b == Withholder {
		r.c.Withhold(id)
	}
	r.c.SetLink(id, l, class)
	return nil
}

// engineFor makes a peer's compute: the cost model, or real training
// shared through the UnitCache, as an adversary if b says so.
func (r *run) engineFor(id string, b Behaviour) func(st *engine.Store) (node.Engine, error) {
	spec := r.s.Spec
	return func(st *engine.Store) (node.Engine, error) {
		if !r.real {
			return &CostEngine{Store: st, Spec: spec, Peer: id, Behaviour: b, Shared: r.costShared, Replicated: r.c.Replicated}, nil
		}
		e, err := nodeengine.NewModelEngine(spec, r.train, st)
		if err != nil {
			return nil, err
		}
		if b != "" {
			return &Adversary{Inner: e, Behaviour: b, Units: r.units, Store: st, Peer: id, Replicated: r.c.Replicated}, nil
		}
		return &SharedEngine{Inner: e, Store: st, Units: r.units}, nil
	}
}

// scheduleTrackerCrashes kills the tracker when the scenario says, and
// restarts it from its storage a minute later.
func (r *run) scheduleTrackerCrashes() {
	c := r.c
	for _, at := range r.s.Network.TrackerCrashes {
		at := time.Duration(at)
		c.At(c.Now().Add(at), func() { c.KillTracker() })
		c.At(c.Now().Add(at+time.Minute), func() {
			if err := c.RestartTracker(); err != nil {
				c.Fail(err)
			}
		})
	}
	for _, at := range r.s.Network.LeaderKills {
		c.At(c.Now().Add(time.Duration(at)), func() { c.KillLeader() })
	}
}

// prepareEvaluation, under real training, measures the held-out loss of
// C_0 and prepares to measure every checkpoint's.
func (r *run) prepareEvaluation() error {
	if !r.real {
		return nil
	}
	spec := r.s.Spec
	m, err := gradient.New(nodeengine.ModelConfig(spec))
	if err != nil {
		return err
	}
	batches := data.EvalBatches(r.eval, 8, spec.Model.Ctx, 16)
	r.evaluate = func(id cid.Cid) float64 {
		st := holderOf(r.c, r.genesisStore, id)
		if st == nil {
			return math.NaN()
		}
		dec, err := st.Checkpoint(id)
		if err != nil {
			return math.NaN()
		}
		for _, p := range m.Params() {
			t, ok := dec.Tensor(p.Name)
			if !ok || len(t.Data) != p.Size() {
				return math.NaN()
			}
			copy(p.Data, t.Data)
		}
		return gradient.Evaluate(m, batches, 8)
	}
	r.res.loss0 = r.evaluate(r.genesis)
	return nil
}

// runSteps runs until the scenario's steps are finalised or its virtual
// time is up, noting every Final (and its loss) and reporting progress.
func (r *run) runSteps() error {
	s, c, res := r.s, r.c, r.res
	limit := time.Duration(s.Limit)
	ctx := r.opt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	polls := 0
	for k := 1; k <= s.Steps; k++ {
		err := c.RunUntil(func() bool {
			if polls++; polls%4096 == 0 && ctx.Err() != nil {
				return true
			}
			return finalised(c) >= k
		}, limit-c.Elapsed())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if engine.IsTimeout(err) {
			res.stopped = fmt.Sprintf("stopped at the virtual time limit of %v with %d steps finalised", limit, finalised(c))
			break
		}
		if err != nil && s.Expect != nil {
			// A run with expectations reports how it broke, and fails
			// them, rather than failing itself.
			r.noteFinals()
			res.broken = err.Error()
			res.stopped = fmt.Sprintf("stopped at %v of virtual time with %d steps finalised: %v", c.Elapsed().Round(time.Second), len(res.finals), err)
			break
		}
		if err != nil {
			return fmt.Errorf("scenario %s, seed %d: %w", s.Name, s.Seed, err)
		}
		r.noteFinals()
		if r.opt.Progress != nil {
			r.opt.Progress(Progress{Run: s.Name, Steps: len(res.finals), Of: s.Steps, Virtual: c.Elapsed(), Live: c.Live(), Events: c.Processed,
				TrackerWall: c.TrackerWall})
		}
	}
	return nil
}

// settle, for a scenario that expects the honest peers to hold the last
// Final, gives them until it is on every live one or for a deadline at
// most (the run stops at the Final, which a quorum has, not all). Steps
// finalised meanwhile are not counted.
func (r *run) settle() {
	s, c, res := r.s, r.c, r.res
	if s.Expect == nil || !s.Expect.HonestHoldHead || res.broken != "" || res.stopped != "" || len(res.finals) == 0 {
		return
	}
	k := uint64(len(res.finals))
	want := res.finals[k-1]
	settled := func() bool {
		for _, id := range c.Nodes() {
			if _, bad := res.dishonest[id]; bad || !c.Alive(id) {
				continue
			}
			if got, ok := c.HeadOf(id, k); !ok || !got.Equals(want) {
				return false
			}
		}
		return true
	}
	err := c.RunUntil(settled, min(s.Spec.Deadline, time.Duration(s.Limit)-c.Elapsed()))
	if err != nil && !engine.IsTimeout(err) {
		res.broken = err.Error()
		res.stopped = fmt.Sprintf("stopped at %v of virtual time, after the last step: %v", c.Elapsed().Round(time.Second), err)
	}
}

// noteFinals records the Finals the tracker made since the last call.
func (r *run) noteFinals() {
	tr := r.c.Tracker()
	if tr == nil {
		return
	}
	for _, f := range tr.Finals()[len(r.res.finals):] {
		r.res.finals = append(r.res.finals, f.Checkpoint)
		if r.evaluate != nil {
			r.res.loss = append(r.res.loss, r.evaluate(f.Checkpoint))
		}
	}
}

// collect completes the result with the cluster's accounts.
func (r *run) collect() *runResult {
	c, res := r.c, r.res
	for _, st := range c.Steps {
		if st.Finalised > 0 && st.Step < uint64(len(res.finals)) {
			res.steps = append(res.steps, *st)
		}
		res.allSteps = append(res.allSteps, *st)
	}
	res.heads = r.countHeads()
	res.sybilMsgs = c.SybilMessages()
	res.group = c.Group()
	res.totals = c.Totals()
	if tr := c.Tracker(); tr != nil {
		res.ledger = tr.Ledger()
	}
	res.events = c.Events
	res.virtual = c.Elapsed()
	res.processed, res.delivered, res.dropped = c.Processed, c.Delivered, c.Dropped
	res.trackerIn, res.trkOut = c.TrackerBytes()
	res.updates, res.updBytes = c.UpdatesPublished()
	res.meanUp = c.MeanUplink()
	for _, id := range c.Nodes() {
		rate := c.IntakeRate(id)
		if rate <= 0 {
			rate = 1e18 // unlimited
		}
		res.rates = append(res.rates, rate)
	}
	res.computed, res.shared = r.units.Computed, r.units.Shared
	res.checked = !r.opt.NoCheck
	return res
}

// countHeads counts the live honest peers that hold the last finalised
// checkpoint, and those that hold another one for its step.
func (r *run) countHeads() headCount {
	c, res := r.c, r.res
	k := len(res.finals)
	h := headCount{step: uint64(k)}
	if k == 0 {
		return h
	}
	want := res.finals[k-1]
	for _, id := range c.Nodes() {
		if _, bad := res.dishonest[id]; bad || !c.Alive(id) {
			continue
		}
		h.live++
		if got, ok := c.HeadOf(id, uint64(k)); ok {
			if got.Equals(want) {
				h.same++
			} else {
				h.other++
			}
		}
	}
	return h
}

// holderOf returns a store that holds a checkpoint: a live node's, or the
// genesis store.
func holderOf(c *engine.Cluster, genesis *engine.Store, id cid.Cid) *engine.Store {
	if genesis.HasCheckpoint(id) {
		return genesis
	}
	for _, h := range c.Nodes() {
		if st := c.Store(h); st.HasCheckpoint(id) {
			return st
		}
	}
	return nil
}

// finalised returns how many steps the tracker has finalised (-1 while it
// is down).
func finalised(c *engine.Cluster) int {
	if tr := c.Tracker(); tr != nil {
		return len(tr.Finals())
	}
	return -1
}

func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
