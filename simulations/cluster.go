package simulations

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Cluster runs a round's tracker and nodes over a deterministic in-process
// network in virtual time: every message, job and fetch is an event in one
// queue ordered by (time, sequence), and every random choice comes from
// one generator seeded with Seed. The same seed and the same calls give the
// same run, event for event.
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
// downlink would have taken them all in; see Batch.
type Cluster struct {
	Spec *round.Spec
	Seed uint64

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
	// work of the node core itself. Set it before adding nodes.
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
	// Set it before adding nodes.
	LazyTicks bool
	// Trace, if set, receives one line per delivered message and decision.
	Trace func(line string)
	// Check, if set, runs after every event; a non-nil error stops Run.
	Check func(c *Cluster) error

	start   time.Time
	now     time.Time
	atNS    int64 // now, in virtual ns since start
	rng     *rand.Rand
	queue   eventQueue
	seq     uint64
	trk     *trackerHost
	hosts   map[string]*host
	order   []string // host IDs in creation order
	group   map[string]int
	genesis cid.Cid
	pool    *Pool
	err     error
	net     netState

	forms    map[wire.Msg]formCheck
	dealings map[*wire.Open]*dealing
	dealt    map[uint64]*dealing // by AssignStep of the Open last dealt
	streams  map[uint64]*stream
	present  map[cid.Cid]presenceRef

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

	minMembers       int
	spares           float64
	updatesPublished int
	updateBytes      float64
	snap             map[string]peerSnapshot // per peer at the last Final
	changed          []*host                 // nodes whose head changed since the last Check
}

// port is a machine's end of the network: its link and its queues.
type port struct {
	link             Link
	class            string
	upFree, downFree float64 // virtual ns when the uplink and downlink queues empty
	bytesIn          int64
	bytesOut         int64
}

type trackerHost struct {
	port
	id      string
	t       *tracker.Tracker
	storage tracker.Storage
	alive   bool
	epoch   int
}

type host struct {
	port
	id      string
	role    wire.Role
	engine  node.Engine
	store   *Store
	n       *node.Node
	alive   bool
	epoch   int // bumped on kill, so events for an old incarnation are dropped
	busy    time.Time
	head    cid.Cid // persisted head, as the daemon would pin it
	headAt  uint64
	history map[uint64]cid.Cid // C_step the node held

	batchDone map[uint64]float64 // step → virtual ns when its batch of updates is in
	busyTime  time.Duration      // virtual time spent on jobs
	upSince   time.Time
	upTime    time.Duration // virtual time alive, but for the current session
	changed   bool          // the head changed since the last check

	wake      time.Time // the next lazy tick (zero: none)
	tickGen   int       // bumped when the next lazy tick moves
	lastHello time.Time
	sent      map[cid.Cid]struct{} // payloads of its recent updates, to tell a re-send
}

type peerSnapshot struct {
	in, out int64
	busy    time.Duration
	up      time.Duration
}

// NewCluster returns a cluster with the round's tracker (its state in
// storage; nil for memory) and no nodes. genesis is C_0.
func NewCluster(spec *round.Spec, seed uint64, genesis cid.Cid, storage tracker.Storage) (*Cluster, error) {
	if storage == nil {
		storage = &tracker.MemStorage{}
	}
	c := &Cluster{Spec: spec, Seed: seed, start: time.Unix(1_700_000_000, 0).UTC(), rng: rand.New(rand.NewPCG(seed, seed^0x5348_4f41_4c)),
		hosts: map[string]*host{}, group: map[string]int{}, genesis: genesis, Opens: map[uint64]*wire.Open{}, pool: NewPool(),
		forms: map[wire.Msg]formCheck{}, dealings: map[*wire.Open]*dealing{}, dealt: map[uint64]*dealing{},
		streams: map[uint64]*stream{}, present: map[cid.Cid]presenceRef{}, snap: map[string]peerSnapshot{}}
	c.now = c.start
	c.trk = &trackerHost{id: spec.Trackers[0], storage: storage}
	if err := c.startTracker(); err != nil {
		return nil, err
	}
	return c, nil
}

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

// Tracker returns the tracker (nil while it is down).
func (c *Cluster) Tracker() *tracker.Tracker {
	if !c.trk.alive {
		return nil
	}
	return c.trk.t
}

// TrackerID returns the tracker's peer ID.
func (c *Cluster) TrackerID() string { return c.trk.id }

// SetMinMembers makes the tracker wait for n live workers before it opens
// any step (tracker.Config.MinMembers). Call it before running.
func (c *Cluster) SetMinMembers(n int) error { return c.SetTracker(n, c.spares) }

// SetTracker sets the tracker's MinMembers and Spares (tracker.Config).
// Call it before running.
func (c *Cluster) SetTracker(minMembers int, spares float64) error {
	if c.Processed > 0 {
		return errors.New("simulations: SetTracker after the cluster has run")
	}
	c.minMembers, c.spares = minMembers, spares
	c.trk.alive = false
	return c.startTracker()
}

// DelayTracker moves the tracker's next tick to d from now, so that the
// first step opens once the peers started with the cluster have said
// hello, as a tracker started before its volunteers would see them.
func (c *Cluster) DelayTracker(d time.Duration) {
	c.trk.epoch++ // drops the tick already scheduled
	c.scheduleTick(c.trk.id, c.trk.epoch, d)
}

func (c *Cluster) startTracker() error {
	var st *tracker.State
	if c.trk.storage != nil {
		var err error
		if st, err = c.trk.storage.Load(); err != nil {
			return fmt.Errorf("tracker: loading state: %w", err)
		}
	}
	t, err := tracker.New(tracker.Config{Spec: c.Spec, Genesis: c.genesis, MinMembers: c.minMembers, Spares: c.spares}, st, c.now)
	if err != nil {
		return err
	}
	c.trk.t, c.trk.alive = t, true
	c.flushTracker() // persists the state of the new epoch
	c.trk.epoch++
	c.scheduleTick(c.trk.id, c.trk.epoch, c.trackerTick())
	return nil
}

// KillTracker stops the tracker as a crash would: whatever it had not
// saved is lost.
func (c *Cluster) KillTracker() {
	c.trk.alive = false
	c.trk.epoch++
	c.trace("%s tracker killed", c.stamp())
}

// RestartTracker starts the tracker again from its storage.
func (c *Cluster) RestartTracker() error {
	c.trace("%s tracker restarted", c.stamp())
	return c.startTracker()
}

// RestartTrackerFrom starts the tracker again from another handle on its
// storage (a database reopened after the crash).
func (c *Cluster) RestartTrackerFrom(s tracker.Storage) error {
	c.trk.storage = s
	return c.RestartTracker()
}

func (c *Cluster) tick() time.Duration {
	if c.Tick > 0 {
		return c.Tick
	}
	return 250 * time.Millisecond
}

func (c *Cluster) trackerTick() time.Duration {
	if c.TrackerTick > 0 {
		return c.TrackerTick
	}
	return c.tick()
}

// SetLink gives a machine (a node or the tracker) its link and the name
// of its class, for reports. It applies with Net.
func (c *Cluster) SetLink(id string, l Link, class string) {
	p := c.port(id)
	if p == nil {
		return
	}
	p.link, p.class = l, class
	c.net.add(l)
}

// LinkOf returns a machine's link and class.
func (c *Cluster) LinkOf(id string) (Link, string) {
	if p := c.port(id); p != nil {
		return p.link, p.class
	}
	return Link{}, ""
}

func (c *Cluster) port(id string) *port {
	if id == c.trk.id {
		return &c.trk.port
	}
	if h, ok := c.hosts[id]; ok {
		return &h.port
	}
	return nil
}

// AddNode adds and starts a node with its own store and engine (made by
// mk from the store).
func (c *Cluster) AddNode(id string, role wire.Role, mk func(store *Store) (node.Engine, error)) error {
	if _, ok := c.hosts[id]; ok || id == c.trk.id {
		return fmt.Errorf("simulations: peer %s already exists", id)
	}
	store := NewStore(c.pool)
	eng, err := mk(store)
	if err != nil {
		return err
	}
	g, err := eng.Genesis()
	if err != nil {
		return err
	}
	if !g.Equals(c.genesis) {
		return fmt.Errorf("simulations: node %s made genesis %s, the cluster's is %s", id, g, c.genesis)
	}
	h := &host{id: id, role: role, engine: eng, store: store, history: map[uint64]cid.Cid{0: g}, batchDone: map[uint64]float64{},
		sent: map[cid.Cid]struct{}{}}
	if c.Net != nil {
		h.link = c.Net.Default
	}
	if c.Batch {
		store.present = func(id cid.Cid) bool { return c.presentAt(h, id) }
	}
	c.hosts[id] = h
	c.order = append(c.order, id)
	return c.startNode(h)
}

func (c *Cluster) startNode(h *host) error {
	cfg := node.Config{ID: h.id, Role: h.role, Spec: c.Spec, Genesis: c.genesis, HeadStep: h.headAt, Head: h.head,
		Validate: c.validate, Assignments: c.assignments}
	if c.Batch {
		cfg.Present = func(id cid.Cid) bool { return c.presentAt(h, id) }
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	h.n, h.alive = n, true
	h.epoch++
	h.busy = c.now
	h.upSince = c.now
	// Stagger first ticks so machines do not act in lockstep.
	first := time.Duration(c.rng.Int64N(int64(c.tick())))
	if c.LazyTicks {
		h.wake = time.Time{}
		c.wakeAt(h, c.now.Add(first))
		return nil
	}
	c.scheduleTick(h.id, h.epoch, first)
	return nil
}

// wakeAt makes sure a node under LazyTicks ticks at t or before.
func (c *Cluster) wakeAt(h *host, t time.Time) {
	if !c.LazyTicks || (!h.wake.IsZero() && !h.wake.After(t)) {
		return
	}
	if t.Before(c.now) {
		t = c.now
	}
	h.wake = t
	h.tickGen++
	gen := h.tickGen
	c.scheduleFor(t, h, func() {
		if gen != h.tickGen {
			return // moved earlier since
		}
		h.wake = time.Time{}
		h.n.Tick(c.now)
		c.flushNode(h)
		c.wakeAt(h, h.lastHello.Add(round.HeartbeatInterval(c.Spec)))
	})
}

// Node returns a node's state machine.
func (c *Cluster) Node(id string) *node.Node { return c.hosts[id].n }

// Store returns a node's store.
func (c *Cluster) Store(id string) *Store { return c.hosts[id].store }

// Engine returns a node's engine.
func (c *Cluster) Engine(id string) node.Engine { return c.hosts[id].engine }

// Nodes returns the IDs of the nodes, in the order they were added.
func (c *Cluster) Nodes() []string { return slices.Clone(c.order) }

// Alive reports whether a node is running.
func (c *Cluster) Alive(id string) bool { return c.hosts[id].alive }

// Has reports whether a node exists.
func (c *Cluster) Has(id string) bool { _, ok := c.hosts[id]; return ok }

// HeadOf returns the checkpoint a node held as C_step, if it did.
func (c *Cluster) HeadOf(id string, step uint64) (cid.Cid, bool) {
	v, ok := c.hosts[id].history[step]
	return v, ok
}

// Kill stops a node as a crash would. Its store and last head survive.
func (c *Cluster) Kill(id string) {
	h := c.hosts[id]
	if !h.alive {
		return
	}
	h.alive = false
	h.epoch++
	h.upTime += c.now.Sub(h.upSince)
	clear(h.batchDone)
	c.trace("%s %s killed", c.stamp(), id)
}

// Restart starts a killed node again from its store and head.
func (c *Cluster) Restart(id string) error {
	h := c.hosts[id]
	if h.alive {
		return fmt.Errorf("simulations: %s is running", id)
	}
	c.trace("%s %s restarted at C_%d", c.stamp(), id, h.headAt)
	return c.startNode(h)
}

// Partition splits the network: peers in different groups cannot reach
// each other. Peers not named are in group 0, with the tracker.
func (c *Cluster) Partition(groups map[string]int) {
	c.group = groups
	c.trace("%s partition %v", c.stamp(), groups)
}

// Heal joins the network again.
func (c *Cluster) Heal() {
	c.group = map[string]int{}
	c.trace("%s healed", c.stamp())
}

func (c *Cluster) reachable(a, b string) bool { return c.group[a] == c.group[b] }

func (c *Cluster) stamp() string { return fmt.Sprintf("%9.3fs", c.Elapsed().Seconds()) }

func (c *Cluster) trace(format string, args ...any) {
	if c.Trace != nil {
		c.Trace(fmt.Sprintf(format, args...))
	}
}

func (c *Cluster) schedule(at time.Time, to string, epoch int, do func()) {
	c.seq++
	c.queue.push(&event{at: int64(at.Sub(c.start)), seq: c.seq, to: to, epoch: epoch, do: do})
}

// scheduleFor is schedule for an event of a node's current incarnation.
func (c *Cluster) scheduleFor(at time.Time, h *host, do func()) {
	c.seq++
	c.queue.push(&event{at: int64(at.Sub(c.start)), seq: c.seq, to: h.id, host: h, epoch: h.epoch, do: do})
}

// At runs do at virtual time at (not before now), whatever happens to the
// machines: for scenario events such as churn and partitions.
func (c *Cluster) At(at time.Time, do func()) {
	if at.Before(c.now) {
		at = c.now
	}
	c.schedule(at, "", 0, do)
}

func (c *Cluster) scheduleTick(id string, epoch int, after time.Duration) {
	c.schedule(c.now.Add(after), id, epoch, func() {
		if id == c.trk.id {
			t0 := time.Now()
			err := c.trk.t.Tick(c.now)
			c.TrackerWall += time.Since(t0)
			if err != nil {
				c.err = err
				return
			}
			c.flushTracker()
			c.scheduleTick(id, epoch, c.trackerTick())
		} else {
			h := c.hosts[id]
			h.n.Tick(c.now)
			c.flushNode(h)
			c.scheduleTick(id, epoch, c.tick())
		}
	})
}

// epochOf returns the current incarnation of a machine and whether it is up.
func (c *Cluster) epochOf(id string) (int, bool) {
	if id == "" {
		return 0, true // a scenario event
	}
	if id == c.trk.id {
		return c.trk.epoch, c.trk.alive
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
		e := c.queue.peek()
		if e.at > end {
			break
		}
		c.queue.pop()
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
		e.do()
		if c.err != nil {
			return c.err
		}
		if c.Check != nil {
			if err := c.Check(c); err != nil {
				return fmt.Errorf("at %s (seed %d): %w", c.stamp(), c.Seed, err)
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

// TimedEvent is a tracker decision and its virtual time.
type TimedEvent struct {
	At time.Duration
	tracker.Event
}

// flushTracker is the tracker's driver: it persists the state of a
// Ready before it publishes anything.
func (c *Cluster) flushTracker() {
	rd := c.trk.t.Ready()
	if rd.State != nil && c.trk.storage != nil {
		if err := c.trk.storage.Save(rd.State); err != nil {
			c.err = fmt.Errorf("tracker: saving state: %w", err)
			return
		}
	}
	for _, ev := range rd.Events {
		c.Events = append(c.Events, TimedEvent{At: c.Elapsed(), Event: ev})
		c.trace("%s tracker %s step %d %s %s", c.stamp(), ev.Kind, ev.Step, ev.Peer, ev.Detail)
		c.noteEvent(ev)
	}
	for _, m := range rd.Publish {
		switch m := m.(type) {
		case *wire.Open:
			c.Opens[m.Step] = m
			c.noteOpen(m)
		case *wire.Close:
			c.noteClose(m)
		case *wire.Final:
			c.noteFinal(m)
		}
		c.publish(c.trk.id, m)
	}
}

func (c *Cluster) flushNode(h *host) {
	r := h.n.Ready()
	for _, ev := range r.Events {
		c.trace("%s %s %s step %d %s", c.stamp(), h.id, ev.Kind, ev.Step, ev.Detail)
	}
	c.noteNode(h, &r)
	if r.HeadChanged {
		c.wakeAt(h, c.now.Add(c.tick()))
		h.head, h.headAt = r.Head, r.HeadStep
		h.history[r.HeadStep] = r.Head
		if !h.changed && c.Check != nil {
			h.changed = true
			c.changed = append(c.changed, h)
		}
		// Keep memory bounded: the recent heads and the updates of the
		// last few steps are all a node still needs.
		var pinned []cid.Cid
		for s := r.HeadStep; s+keepSteps > r.HeadStep; s-- {
			if id, ok := h.history[s]; ok {
				pinned = append(pinned, id)
			}
			if s == 0 {
				break
			}
		}
		for s := range h.history {
			if s+historyKept < r.HeadStep {
				delete(h.history, s)
			}
		}
		h.store.Sweep(keepSteps, pinned...)
	}
	for _, m := range r.Publish {
		if _, ok := m.(*wire.Hello); ok {
			h.lastHello = c.now
		}
		c.publish(h.id, m)
	}
	for _, j := range r.Jobs {
		c.runJob(h, j)
	}
	for _, f := range r.Fetches {
		c.fetch(h, f)
	}
}

// historyKept bounds the checkpoints per step a node's record keeps, for
// the invariants (which check every new entry when it appears).
const historyKept = 64

func (c *Cluster) latency(from, to string) time.Duration {
	if c.Latency != nil {
		return c.Latency(from, to, c.rng)
	}
	return 10*time.Millisecond + time.Duration(c.rng.Int64N(int64(20*time.Millisecond)))
}

// wireSize is the bytes the network carries for a message whose encoding
// is n bytes.
func (c *Cluster) wireSize(m wire.Msg, n int) float64 {
	if u, ok := m.(*wire.Update); ok && c.UpdateBytes > 0 {
		return float64(n - len(u.Data) + int(c.UpdateBytes))
	}
	return float64(n)
}

// publish sends a message to every other machine, through the wire
// encoding, with latency and loss.
func (c *Cluster) publish(from string, m wire.Msg) {
	b, err := wire.Marshal(m)
	if err != nil {
		c.err = fmt.Errorf("simulations: %s published a malformed %s: %w", from, m.Kind(), err)
		return
	}
	c.BytesPublished += int64(len(b))
	// Decode once: every receiver gets the same message, as a gossip
	// router would hand each one the same bytes. Receivers treat it as
	// read-only.
	dec, err := wire.Unmarshal(b)
	if err != nil {
		c.err = fmt.Errorf("simulations: a %s message from %s does not decode: %w", m.Kind(), from, err)
		return
	}
	if c.Net == nil && c.Batch {
		c.Net = &Network{}
	}
	if c.Net == nil {
		c.fanOut(from, dec, func(to string) time.Time { return c.now.Add(c.latency(from, to)) })
		return
	}
	size := c.wireSize(dec, len(b))
	if _, ok := dec.(*wire.Update); ok {
		c.updatesPublished++
		c.updateBytes += size
	}
	src := c.port(from)
	depart := c.upload(src, size)
	if c.Batch {
		c.publishBatched(from, src, dec, size, depart)
		return
	}
	c.fanOut(from, dec, func(to string) time.Time { return c.arrive(src, c.port(to), size, depart) })
}

// fanOut sends a message to the tracker and every node but its sender
// that is up and reachable, less those the loss rate drops, each at the
// time arrival gives.
func (c *Cluster) fanOut(from string, dec wire.Msg, arrival func(to string) time.Time) {
	send := func(to string) {
		if to == from || !c.reachable(from, to) {
			return
		}
		ep, up := c.epochOf(to)
		if !up {
			return
		}
		if c.DropRate > 0 && c.rng.Float64() < c.DropRate {
			c.Dropped++
			return
		}
		c.send(arrival(to), from, to, ep, dec)
	}
	send(c.trk.id)
	for _, to := range c.order {
		send(to)
	}
}

// sendTo delivers a message to a node at a time, unless the network is
// cut between them by then.
func (c *Cluster) sendTo(at time.Time, from string, h *host, m wire.Msg) {
	c.scheduleFor(at, h, func() {
		if !c.reachable(from, h.id) {
			c.Dropped++
			return
		}
		c.deliver(from, h.id, m)
	})
}

func (c *Cluster) send(at time.Time, from, to string, ep int, m wire.Msg) {
	c.schedule(at, to, ep, func() {
		if !c.reachable(from, to) {
			c.Dropped++
			return
		}
		c.deliver(from, to, m)
	})
}

// upload queues size bytes (times the fan-out) on a machine's uplink and
// returns when they have left, in virtual ns.
func (c *Cluster) upload(p *port, size float64) float64 {
	f := c.Net.fanout()
	start := max(c.nowNS(), p.upFree)
	p.upFree = start + size*f*secondsPerByte(p.link.Up)*1e9
	p.bytesOut += int64(size * f)
	return p.upFree
}

// relayed returns the time a message that left its sender at depart has
// crossed the network to the edge of any receiver, in virtual ns: the
// sender's latency and the hops beyond the first.
func (c *Cluster) relayed(src *port, size, depart float64) float64 {
	extra := c.Net.hops(c.net.n) - 1
	t := depart + float64(src.link.Latency)
	if extra > 0 {
		t += float64(extra) * (2*float64(c.net.meanLatency()) + size*secondsPerByte(c.net.meanUp())*1e9)
	}
	return t
}

// intakeRate is the bytes per second at which a machine takes in gossip:
// its downlink, bounded by the mean uplink of the peers that relay it (0:
// unlimited).
func (c *Cluster) intakeRate(p *port) float64 {
	down, up := p.link.Down, c.net.meanUp()
	r := down
	if r <= 0 || (up > 0 && up < r) {
		r = up
	}
	return r
}

// gossipRate is the ns per byte of the messages it needs at which a
// machine takes in gossip (duplicates included).
func (c *Cluster) gossipRate(p *port) float64 {
	return secondsPerByte(c.intakeRate(p)) * 1e9 * c.Net.duplicates()
}

// takeIn counts the bytes a machine takes in for a gossip message of
// size bytes, duplicates included.
func (c *Cluster) takeIn(p *port, size float64) {
	p.bytesIn += int64(size * c.Net.duplicates())
}

// bulkBytes is the size from which a message queues behind the bulk on a
// downlink. Smaller ones (control messages) share the link with it, as
// the streams of a multiplexed connection do, and pass at once.
const bulkBytes = 64 << 10

// arrive queues a message on the receiver's downlink and returns when it
// is delivered.
func (c *Cluster) arrive(src, dst *port, size, depart float64) time.Time {
	t := c.relayed(src, size, depart) + float64(dst.link.Latency)
	c.takeIn(dst, size)
	if size < bulkBytes {
		return c.timeAt(t + size*c.gossipRate(dst))
	}
	start := max(t, dst.downFree)
	dst.downFree = start + size*c.gossipRate(dst)
	return c.timeAt(dst.downFree)
}

func (c *Cluster) deliver(from, to string, m wire.Msg) {
	c.Delivered++
	if to == c.trk.id {
		t0 := time.Now()
		err := c.trk.t.Receive(c.now, from, m)
		c.TrackerWall += time.Since(t0)
		if err != nil {
			c.trace("%s tracker refused %s from %s: %v", c.stamp(), m.Kind(), from, err)
		}
		c.flushTracker()
		return
	}
	h := c.hosts[to]
	if u, ok := m.(*wire.Update); ok && len(u.Data) > 0 && !h.store.HasBlob(u.Payload) {
		// A well-formed Update's Data hashes to its payload CID: the
		// store need not hash it again.
		if !c.wellFormed(u) || h.store.putVerified(u.Payload, u.Data) != nil {
			if _, err := h.store.PutBlob(u.Data); err != nil {
				c.err = err
				return
			}
		}
	}
	if err := h.n.Receive(c.now, from, m); err != nil {
		c.trace("%s %s refused %s from %s: %v", c.stamp(), to, m.Kind(), from, err)
	}
	c.flushNode(h)
}

func (c *Cluster) jobTime(id string, j node.Job) time.Duration {
	if c.JobTime != nil {
		return c.JobTime(id, j)
	}
	switch j.(type) {
	case node.TrainJob:
		return time.Second
	case node.ApplyJob:
		return 100 * time.Millisecond
	}
	return time.Second
}

// runJob computes a job now and delivers its result when the machine,
// doing one job at a time, would have finished it.
func (c *Cluster) runJob(h *host, j node.Job) {
	if a, ok := j.(node.ApplyJob); ok {
		c.checkApply(h, a)
	}
	res := h.engine.Run(j)
	start := h.busy
	if start.Before(c.now) {
		start = c.now
	}
	d := c.jobTime(h.id, j)
	h.busy = start.Add(d)
	h.busyTime += d
	c.scheduleFor(h.busy, h, func() {
		h.n.Done(c.now, res)
		c.flushNode(h)
	})
}

// keepSteps is how many steps of content a simulated node keeps.
const keepSteps = 4

func holds(s *Store, kind node.FetchKind, id cid.Cid) bool {
	if kind == node.FetchBlob {
		return s.HasBlob(id)
	}
	return s.HasCheckpoint(id)
}

// fetch copies content from the first provider (then any machine) that
// is up, reachable and holds it, verified on arrival; or reports failure.
// Content the node holds already is there at once.
func (c *Cluster) fetch(h *host, f node.Fetch) {
	if holds(h.store, f.Kind, f.CID) {
		ep := h.epoch
		c.schedule(c.now, h.id, ep, func() {
			h.n.Fetched(c.now, f.CID, true)
			c.flushNode(h)
		})
		return
	}
	var src *host
	try := func(p string) bool {
		s, ok := c.hosts[p]
		if !ok || p == h.id || !s.alive || !c.reachable(h.id, p) || !holds(s.store, f.Kind, f.CID) {
			return false
		}
		src = s
		return true
	}
	found := false
	for _, p := range f.Providers {
		if found = try(p); found {
			break
		}
	}
	if !found {
		for _, p := range c.order {
			if found = try(p); found {
				break
			}
		}
	}
	id, ep := h.id, h.epoch
	if src == nil {
		c.schedule(c.now.Add(time.Second), id, ep, func() {
			h.n.Fetched(c.now, f.CID, false)
			c.flushNode(h)
			c.wakeAt(h, c.now.Add(round.HeartbeatInterval(c.Spec)))
		})
		return
	}
	var size int64
	var put func() error
	switch f.Kind {
	case node.FetchBlob:
		b, _ := src.store.Blob(f.CID)
		size = int64(len(b))
		if c.ResidualBytes > 0 || c.UpdateBytes > 0 {
			size = c.blobBytes(f.CID, size)
		}
		put = func() error {
			if err := h.store.putPooled(f.CID); err == nil {
				return nil
			}
			got, err := h.store.PutBlob(b)
			if err == nil && !got.Equals(f.CID) {
				err = fmt.Errorf("blob %s arrived as %s", f.CID, got)
			}
			return err
		}
	case node.FetchCheckpoint:
		ch, _ := src.store.Chunked(f.CID)
		size = int64(len(ch.Data))
		if c.CheckpointBytes > 0 {
			size = c.CheckpointBytes
		}
		put = func() error { return h.store.PutChunked(f.CID, ch) }
	}
	var d time.Duration
	if c.Net == nil {
		bw := c.Bandwidth
		if bw <= 0 {
			bw = 100e6
		}
		d = c.latency(src.id, h.id) + time.Duration(float64(size)/bw*float64(time.Second))
	} else {
		rate := h.link.Down
		if rate <= 0 || (src.link.Up > 0 && src.link.Up < rate) {
			rate = src.link.Up
		}
		d = src.link.Latency + h.link.Latency + time.Duration(float64(size)*secondsPerByte(rate)*1e9)
		src.bytesOut += size
		h.bytesIn += size
	}
	c.schedule(c.now.Add(d), id, ep, func() {
		ok := c.reachable(h.id, src.id)
		if ok {
			if err := put(); err != nil {
				c.err = fmt.Errorf("simulations: %s: fetching %s: %w", id, f.CID, err)
				return
			}
		}
		h.n.Fetched(c.now, f.CID, ok)
		c.flushNode(h)
		if !ok {
			c.wakeAt(h, c.now.Add(round.HeartbeatInterval(c.Spec)))
		}
	})
}

// blobBytes is the modelled size of a fetched blob: an update's payload
// (UpdateBytes) or, otherwise, a residual (ResidualBytes).
func (c *Cluster) blobBytes(id cid.Cid, actual int64) int64 {
	if _, ok := c.present[id]; ok && c.UpdateBytes > 0 {
		return c.UpdateBytes
	}
	if c.ResidualBytes > 0 {
		return c.ResidualBytes
	}
	return actual
}
