package simulations

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
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
	steps     []StepStats
	finals    []cid.Cid
	loss      []float64 // held-out loss of C_{k+1} (real training)
	loss0     float64   // of C_0
	totals    []PeerTotals
	ledger    map[string]tracker.Entry
	dishonest map[string]Behaviour
	events    []TimedEvent
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

func runOne(s *Scenario, opt RunOptions) (*runResult, error) {
	spec := s.Spec
	real := s.Training == "real"
	train, eval := builtinCorpus()
	units := NewUnitCache()
	costShared := NewCostShared()

	genesisStore := NewStore(NewPool())
	var genesis cid.Cid
	var err error
	if real {
		e, err := engine.NewModelEngine(spec, train, genesisStore)
		if err != nil {
			return nil, err
		}
		genesis, err = e.Genesis()
		if err != nil {
			return nil, err
		}
	} else if genesis, err = (&CostEngine{Store: genesisStore, Spec: spec}).Genesis(); err != nil {
		return nil, err
	}
	var storage tracker.Storage = volatileStorage{}
	if len(s.Network.TrackerCrashes) > 0 {
		storage = &tracker.MemStorage{}
	}
	c, err := NewCluster(spec, s.Seed, genesis, storage)
	if err != nil {
		return nil, err
	}
	c.Net = &Network{Hops: s.Network.Hops, Fanout: s.Network.Fanout, Duplicates: s.Network.Duplicates}
	c.Batch = s.Batched()
	c.LazyTicks = s.Lazy()
	c.DropRate = s.Network.Loss
	c.Tick, c.TrackerTick = time.Duration(s.Network.Tick), time.Duration(s.Network.TrackerTick)
	if !real {
		c.UpdateBytes = int64(s.Compute.UpdateBytes)
		c.ResidualBytes = int64(s.Compute.ResidualBytes)
		c.CheckpointBytes = int64(s.Compute.CheckpointBytes)
	}
	c.Trace = opt.Trace
	rng := c.Rand()
	mix, _ := ParseLinkMix(s.Network.Links)
	tl := LinkClasses[s.Network.Tracker]
	c.SetLink(c.TrackerID(), tl.Draw(rng), tl.Name)

	res := &runResult{s: s, dishonest: map[string]Behaviour{}, loss0: math.NaN()}
	speeds := map[string]float64{}
	cm := s.Compute
	c.JobTime = func(id string, j node.Job) time.Duration {
		sp := speeds[id]
		switch j := j.(type) {
		case node.TrainJob:
			if res.dishonest[id].Idle() {
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

	// Adversaries: a fixed share of the first peers, chosen by the seed;
	// newcomers are adversaries with the same probability.
	n := s.Peers
	behaviourOf := make([]Behaviour, n)
	perm := rng.Perm(n)
	next := 0
	for _, a := range s.AdvSpecs {
		k := int(math.Round(a.Fraction * float64(n)))
		for ; k > 0 && next < n; k-- {
			behaviourOf[perm[next]] = Behaviour(a.Behaviour)
			next++
		}
	}
	drawBehaviour := func() Behaviour {
		x := rng.Float64()
		for _, a := range s.AdvSpecs {
			if x < a.Fraction {
				return Behaviour(a.Behaviour)
			}
			x -= a.Fraction
		}
		return ""
	}

	addPeer := func(id string, role wire.Role, b Behaviour) error {
		l, class := mix.Draw(rng)
		speeds[id] = s.Compute.Speed.Median * math.Exp(s.Compute.Speed.Sigma*rng.NormFloat64())
		if b != "" {
			res.dishonest[id] = b
		}
		err := c.AddNode(id, role, func(st *Store) (node.Engine, error) {
			if !real {
				return &CostEngine{Store: st, Spec: spec, Peer: id, Behaviour: b, Shared: costShared}, nil
			}
			e, err := engine.NewModelEngine(spec, train, st)
			if err != nil {
				return nil, err
			}
			if b != "" {
				return &Adversary{Inner: e, Behaviour: b, Units: units, Store: st, Peer: id}, nil
			}
			return &SharedEngine{Inner: e, Store: st, Units: units}, nil
		})
		if err != nil {
			return err
		}
		c.SetLink(id, l, class)
		return nil
	}
	total := n + s.Observers
	for i := range n {
		if err := addPeer(simPeerName(i, total), wire.RoleWorker, behaviourOf[i]); err != nil {
			return nil, err
		}
	}
	for i := range s.Observers {
		if err := addPeer(simPeerName(n+i, total), wire.RoleObserver, ""); err != nil {
			return nil, err
		}
	}
	if s.MinMembers > 0 || s.Spares > 0 {
		if err := c.SetTracker(s.MinMembers, s.Spares); err != nil {
			return nil, err
		}
	}
	// The peers tick first within a tick of the start and say hello;
	// open the first step when all have been heard.
	c.DelayTracker(c.tick() + 5*time.Second)
	if !opt.NoCheck {
		bad := map[string]bool{}
		for id := range res.dishonest {
			bad[id] = true
		}
		inv := Invariants(bad)
		c.Check = func(c *Cluster) error {
			// Newcomers may be adversaries too.
			if len(bad) != len(res.dishonest) {
				for id := range res.dishonest {
					bad[id] = true
				}
			}
			return inv(c)
		}
	}
	counter := total
	if err := scheduleChurn(c, s, &counter, total, res, drawBehaviour, addPeer); err != nil {
		return nil, err
	}
	schedulePartitions(c, s)
	for _, at := range s.Network.TrackerCrashes {
		at := time.Duration(at)
		c.At(c.Now().Add(at), func() { c.KillTracker() })
		c.At(c.Now().Add(at+time.Minute), func() {
			if err := c.RestartTracker(); err != nil {
				c.err = err
			}
		})
	}

	// Real training: measure the held-out loss of every checkpoint.
	var evaluate func(cid.Cid) float64
	if real {
		m, err := gradient.New(engine.ModelConfig(spec))
		if err != nil {
			return nil, err
		}
		batches := data.EvalBatches(eval, 8, spec.Model.Ctx, 16)
		evaluate = func(id cid.Cid) float64 {
			st := holderOf(c, genesisStore, id)
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
		res.loss0 = evaluate(genesis)
	}

	limit := time.Duration(s.Limit)
	ctx := opt.Context
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
			return nil, ctx.Err()
		}
		if IsTimeout(err) {
			res.stopped = fmt.Sprintf("stopped at the virtual time limit of %v with %d steps finalised", limit, finalised(c))
			break
		}
		if err != nil {
			return nil, fmt.Errorf("scenario %s, seed %d: %w", s.Name, s.Seed, err)
		}
		if tr := c.Tracker(); tr != nil {
			for _, f := range tr.Finals()[len(res.finals):] {
				res.finals = append(res.finals, f.Checkpoint)
				if evaluate != nil {
					res.loss = append(res.loss, evaluate(f.Checkpoint))
				}
			}
		}
		if opt.Progress != nil {
			live := 0
			for _, id := range c.order {
				if c.hosts[id].alive {
					live++
				}
			}
			opt.Progress(Progress{Run: s.Name, Steps: len(res.finals), Of: s.Steps, Virtual: c.Elapsed(), Live: live, Events: c.Processed,
				TrackerWall: c.TrackerWall})
		}
	}
	for _, st := range c.Steps {
		if st.Finalised > 0 {
			res.steps = append(res.steps, *st)
		}
	}
	res.totals = c.Totals()
	if tr := c.Tracker(); tr != nil {
		res.ledger = tr.Ledger()
	}
	res.events = c.Events
	res.virtual = c.Elapsed()
	res.processed, res.delivered, res.dropped = c.Processed, c.Delivered, c.Dropped
	res.trackerIn, res.trkOut = c.TrackerBytes()
	res.updates, res.updBytes = c.updatesPublished, c.updateBytes
	res.meanUp = c.net.meanUp()
	for _, id := range c.order {
		h := c.hosts[id]
		r := c.intakeRate(&h.port)
		if r <= 0 {
			r = 1e18 // unlimited
		}
		res.rates = append(res.rates, r)
	}
	res.computed, res.shared = units.Computed, units.Shared
	res.checked = !opt.NoCheck
	return res, nil
}

// holderOf returns a store that holds a checkpoint: a live node's, or the
// genesis store.
func holderOf(c *Cluster, genesis *Store, id cid.Cid) *Store {
	if genesis.HasCheckpoint(id) {
		return genesis
	}
	for _, h := range c.order {
		if st := c.hosts[h].store; st.HasCheckpoint(id) {
			return st
		}
	}
	return nil
}

// finalised returns how many steps the tracker has finalised (-1 while it
// is down).
func finalised(c *Cluster) int {
	if tr := c.Tracker(); tr != nil {
		return len(tr.Finals())
	}
	return -1
}

// scheduleChurn plans departures, returns and arrivals, or replays a
// trace.
func scheduleChurn(c *Cluster, s *Scenario, counter *int, total int, res *runResult, drawBehaviour func() Behaviour, addPeer func(string, wire.Role, Behaviour) error) error {
	ch := s.Churn
	r := c.Rand()
	if ch.Trace != "" {
		events, err := readTrace(s.Dir, ch.Trace)
		if err != nil {
			return err
		}
		for _, ev := range events {
			c.At(c.Now().Add(ev.At), func() {
				switch {
				case ev.Join && !c.Has(ev.Peer):
					res.joined++
					if err := addPeer(ev.Peer, wire.RoleWorker, drawBehaviour()); err != nil {
						c.err = err
					}
				case ev.Join && !c.Alive(ev.Peer):
					if err := c.Restart(ev.Peer); err != nil {
						c.err = err
					}
				case !ev.Join && c.Has(ev.Peer) && c.Alive(ev.Peer):
					res.departed++
					c.Kill(ev.Peer)
				}
			})
		}
		return nil
	}
	// A session ends at the churn rate; the peer comes back after a
	// while away, for a new session.
	var session func(id string)
	session = func(id string) {
		if ch.Rate <= 0 {
			return
		}
		mean := time.Duration(float64(time.Hour) / float64(ch.Rate))
		c.At(c.Now().Add(sessionLength(r, ch.Session, mean)), func() {
			if !c.Alive(id) {
				return
			}
			res.departed++
			c.Kill(id)
			if ch.Offline <= 0 {
				return
			}
			away := time.Duration(float64(ch.Offline) * r.ExpFloat64())
			c.At(c.Now().Add(away), func() {
				if c.Alive(id) {
					return
				}
				if err := c.Restart(id); err != nil {
					c.err = err
					return
				}
				session(id)
			})
		})
	}
	for _, id := range c.Nodes() {
		session(id)
	}
	if ch.Arrivals > 0 {
		gap := func() time.Duration { return time.Duration(float64(time.Hour) / float64(ch.Arrivals) * r.ExpFloat64()) }
		var arrive func()
		arrive = func() {
			c.At(c.Now().Add(gap()), func() {
				id := simPeerName(*counter, total)
				*counter++
				res.joined++
				if err := addPeer(id, wire.RoleWorker, drawBehaviour()); err != nil {
					c.err = err
					return
				}
				session(id)
				arrive()
			})
		}
		arrive()
	}
	return nil
}

// schedulePartitions cuts shares of the peers off as the scenario says.
func schedulePartitions(c *Cluster, s *Scenario) {
	for _, p := range s.Network.Partitions {
		p := p
		c.At(c.Now().Add(time.Duration(p.At)), func() {
			groups := map[string]int{}
			ids := c.Nodes()
			k := int(math.Round(p.Fraction * float64(len(ids))))
			for _, i := range c.Rand().Perm(len(ids))[:k] {
				groups[ids[i]] = 1
			}
			c.Partition(groups)
		})
		c.At(c.Now().Add(time.Duration(p.At+p.For)), func() { c.Heal() })
	}
}

func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
