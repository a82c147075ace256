package engine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Config is what a Cluster is made with: the round, the seed, and the
// models of the network and of compute. A cluster keeps it unchanged.
type Config struct {
	Spec *round.Spec
	Seed uint64
	// Genesis is C_0, the checkpoint every node must start from.
	Genesis cid.Cid
	// Storage holds the tracker's state (nil: memory).
	Storage tracker.Storage
	// MinMembers and Spares are the tracker's (tracker.Config): it waits
	// for MinMembers live workers before it opens any step.
	MinMembers int
	Spares     float64
	Newcomers  float64 // tracker.Config.Newcomers
	// Anchors are the tracker's (tracker.Config): the round's own
	// observers.
	Anchors []string

	// Network model without Net.
	Latency   func(from, to string, r *rand.Rand) time.Duration // nil: 20 ms ± 10 ms
	Bandwidth float64                                           // bytes/s of a fetch (0: 100 MB/s)
	// DropRate is the probability a message to one recipient is lost.
	DropRate float64
	// Net, if set, models every machine's link; SetLink sets one.
	Net *Network
	// Batch delivers a step's updates to nodes in bulk: each node gets,
	// as messages, the tracker's (Open, Close, Final), the updates of its
	// replica partners, and the updates of units disputed later; every
	// other update of the step counts as received when the node's
	// downlink, a queue fed by the step's updates as they are published,
	// has taken in all those published before the Close. The Close waits
	// behind them, so a node never asks for an update the step's stream
	// still carries. Peers' Hellos, Commits and Verdicts reach only the
	// tracker: a node uses them for nothing but hints of who holds a
	// checkpoint, and a fetch here finds any holder. Batch needs Net (a
	// zero one is used if none is set). The per-peer download volume and
	// the step's timing stay what a v1 network would see; the cost per
	// step and node is O(1) in the number of peers, but for the O(units)
	// work of the node core itself.
	Batch bool
	// UpdateBytes, ResidualBytes and CheckpointBytes, when positive, are
	// the sizes the network carries for an update's payload, a residual
	// and a checkpoint, whatever their size in memory (the cost model's
	// stand-ins are a few bytes).
	UpdateBytes, ResidualBytes, CheckpointBytes int64

	// Compute model: virtual duration of a job (nil: 1 s to train, 100 ms
	// to apply, 1 s to verify).
	JobTime func(id string, j node.Job) time.Duration
	// Tick is the virtual time between ticks of every node (0: 250 ms);
	// TrackerTick the tracker's (0: Tick).
	Tick, TrackerTick time.Duration
	// LazyTicks ticks a node only when its clock has something to do:
	// its heartbeat is due, its head changed (it announces the new one
	// at its next tick, within Tick), or a fetch failed (it retries a
	// heartbeat later). A node then acts as with ticks every Tick, but
	// idle ticks cost nothing: in a large network most ticks are idle.
	LazyTicks bool
	// Trace, if set, receives one line per delivered message and decision.
	Trace func(line string)
	// Check, if set, runs after every event; a non-nil error stops Run.
	Check func(c *Cluster) error
}

// Cluster runs a round's tracker and nodes over a deterministic in-process
// network in virtual time: every message, job and fetch is an event in one
// queue ordered by (time, sequence), and every random choice comes from
// one generator seeded with the Config's Seed. The same seed and the same
// calls give the same run, event for event.
//
// The network can delay, drop, partition and kill; jobs run on each
// machine's engine at once (their results arrive after a modelled
// duration), one at a time per machine.
//
// Without Net, a message takes Latency and nothing queues. With Net,
// every machine has a Link whose uplink and downlink are queues (see
// Network). With Batch, the updates of a step are not handed to every
// node: each node receives what it acts on (the tracker's messages, its
// replica partner's updates, the updates of a disputed unit), and the
// rest of the step's updates become present in its store when its
// downlink would have taken them all in; see Config.Batch.
type Cluster struct {
	cfg Config

	start   time.Time
	now     time.Time
	atNS    int64 // now, in virtual ns since start
	rng     *rand.Rand
	queue   eventQueue
	seq     uint64
	trk     *trackerHost   // the round's tracker, or its group's first member
	trks    []*trackerHost // every tracker machine: trk alone, or the group
	grp     *groupState    // the tracker group (nil: one tracker)
	hosts   map[string]*host
	order   []string // host IDs in creation order
	byOrder []*host  // the hosts in the same order
	group   map[string]int
	genesis cid.Cid
	pool    *Pool
	err     error
	net     netState

	forms    map[wire.Msg]formCheck
	verdicts map[wire.Msg][]verdict // on the tracker's messages (see validate)
	dealings map[*wire.Open]*dealing
	dealt    map[uint64]*dealing // by AssignStep of the Open last dealt
	streams  map[uint64]*stream
	present  map[cid.Cid]presenceRef
	sybils   *swarm // nil: none

	// Events holds what the tracker decided, with when.
	Events []TimedEvent
	// Opens holds the last Open the tracker published for each step.
	Opens map[uint64]*wire.Open
	// Steps holds what happened in each step the tracker finalised or is
	// running, in order.
	Steps []*StepStats

	// Stats.
	Delivered, Dropped int
	BytesPublished     int64
	Processed          int64 // events run
	// TrackerWall is the wall time spent in the tracker's Receive and
	// Tick: the cost of the tracker itself at this size.
	TrackerWall time.Duration
	// Unverified counts applies a node started while an included update
	// was not in its store; the invariants require none.
	Unverified []string

	updatesPublished int
	updateBytes      float64
	snap             map[string]peerSnapshot // per peer at the last Final
	changed          []*host                 // nodes whose head changed since the last Check
}

// New returns a cluster with the round's tracker and no nodes.
func New(cfg Config) (*Cluster, error) {
	if cfg.Batch && cfg.Net == nil {
		cfg.Net = &Network{}
	}
	seed := cfg.Seed
	c := &Cluster{cfg: cfg, start: time.Unix(1_700_000_000, 0).UTC(), rng: rand.New(rand.NewPCG(seed, seed^0x5348_4f41_4c)),
		hosts: map[string]*host{}, group: map[string]int{}, genesis: cfg.Genesis, Opens: map[uint64]*wire.Open{}, pool: NewPool(),
		forms: map[wire.Msg]formCheck{}, verdicts: map[wire.Msg][]verdict{}, dealings: map[*wire.Open]*dealing{}, dealt: map[uint64]*dealing{},
		streams: map[uint64]*stream{}, present: map[cid.Cid]presenceRef{}, snap: map[string]peerSnapshot{}}
	c.now = c.start
	c.trks = newTrackerHosts(cfg)
	c.trk = c.trks[0]
	if len(c.trks) > 1 {
		if cfg.Batch {
			return nil, errors.New("simulations: a tracker group is not simulated with Batch (the group's members each take every peer's message)")
		}
		c.grp = newGroupState()
	}
	if err := c.startTracker(); err != nil {
		return nil, err
	}
	return c, nil
}

// Spec returns the round's spec.
func (c *Cluster) Spec() *round.Spec { return c.cfg.Spec }

// Seed returns the seed of every random choice.
func (c *Cluster) Seed() uint64 { return c.cfg.Seed }

// Fail stops the run: RunUntil returns err after the event that called
// it. Scenario events (At) report their failures so.
func (c *Cluster) Fail(err error) { c.err = err }

// Rand returns the cluster's random generator, for models that draw from
// it (links, churn) so that one seed fixes the whole run.
func (c *Cluster) Rand() *rand.Rand { return c.rng }

// Pool returns the content pool of the simulated peers.
func (c *Cluster) Pool() *Pool { return c.pool }

// Now returns the virtual time.
func (c *Cluster) Now() time.Time { return c.now }

// Elapsed returns the virtual time since the start.
func (c *Cluster) Elapsed() time.Duration { return time.Duration(c.atNS) }

func (c *Cluster) nowNS() float64 { return float64(c.atNS) }

func (c *Cluster) timeAt(ns float64) time.Time { return c.start.Add(time.Duration(math.Ceil(ns))) }

// Partition splits the network: peers in different groups cannot reach
// each other. Peers not named are in group 0, with the tracker.
func (c *Cluster) Partition(groups map[string]int) {
	c.group = groups
	c.trace("partition %v", groups)
}

// Heal joins the network again.
func (c *Cluster) Heal() {
	c.group = map[string]int{}
	c.trace("healed")
}

func (c *Cluster) reachable(a, b string) bool { return c.group[a] == c.group[b] }

func (c *Cluster) stamp() string { return fmt.Sprintf("%9.3fs", c.Elapsed().Seconds()) }

// trace sends a line to the Config's Trace, stamped with the virtual
// time; without a Trace it formats nothing.
func (c *Cluster) trace(format string, args ...any) {
	if c.cfg.Trace != nil {
		c.cfg.Trace(c.stamp() + " " + fmt.Sprintf(format, args...))
	}
}

func (c *Cluster) schedule(at time.Time, to string, epoch int, do func()) {
	c.seq++
	c.queue.push(event{at: int64(at.Sub(c.start)), seq: c.seq, to: to, epoch: epoch, do: do})
}

// scheduleFor is schedule for an event of a node's current incarnation.
func (c *Cluster) scheduleFor(at time.Time, h *host, do func()) {
	c.seq++
	c.queue.push(event{at: int64(at.Sub(c.start)), seq: c.seq, to: h.id, host: h, epoch: h.epoch, do: do})
}

// At runs do at virtual time at (not before now), whatever happens to the
// machines: for scenario events such as churn and partitions.
func (c *Cluster) At(at time.Time, do func()) {
	if at.Before(c.now) {
		at = c.now
	}
	c.schedule(at, "", 0, do)
}

// epochOf returns the current incarnation of a machine and whether it is up.
func (c *Cluster) epochOf(id string) (int, bool) {
	if id == "" {
		return 0, true // a scenario event
	}
	if t := c.trackerOf(id); t != nil {
		return t.epoch, t.alive
	}
	h, ok := c.hosts[id]
	if !ok {
		return 0, false
	}
	return h.epoch, h.alive
}

// RunFor runs events until the virtual time has advanced by d.
func (c *Cluster) RunFor(d time.Duration) error {
	return c.RunUntil(func() bool { return false }, d)
}

// RunUntil runs events until done returns true (checked after every
// event) or the virtual time advances by limit; it returns an error if the
// limit is reached first or a machine fails.
func (c *Cluster) RunUntil(done func() bool, limit time.Duration) error {
	end := int64(c.now.Add(limit).Sub(c.start))
	for c.queue.Len() > 0 {
		if done() {
			return nil
		}
		if c.queue.peekAt() > end {
			break
		}
		e := c.queue.pop()
		if h := e.host; h != nil {
			if !h.alive || h.epoch != e.epoch {
				continue
			}
		} else if ep, up := c.epochOf(e.to); !up || ep != e.epoch {
			continue // for a machine that died since
		}
		c.atNS = e.at
		c.now = c.start.Add(time.Duration(e.at))
		c.Processed++
		switch e.kind {
		case eventToNode:
			c.arriveAtNode(e.from, e.host, e.msg)
		case eventSend:
			c.arriveAt(e.from, e.to, e.msg)
		case eventWake:
			c.wake(e.host, e.gen)
		default:
			e.do()
		}
		if c.err != nil {
			return c.err
		}
		if c.cfg.Check != nil {
			if err := c.cfg.Check(c); err != nil {
				return fmt.Errorf("at %s (seed %d): %w", c.stamp(), c.cfg.Seed, err)
			}
		}
	}
	if done() {
		return nil
	}
	c.atNS = end
	c.now = c.start.Add(time.Duration(end))
	return errTimeout
}

var errTimeout = errors.New("simulations: time limit reached")

// IsTimeout reports whether RunUntil stopped at its limit.
func IsTimeout(err error) bool { return errors.Is(err, errTimeout) }
