package simulations

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
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
type Cluster struct {
	Spec *tracker.Spec
	Seed uint64

	// Network model.
	Latency   func(from, to string, r *rand.Rand) time.Duration // nil: 20 ms ± 10 ms
	DropRate  float64                                           // probability a message to one recipient is lost
	Bandwidth float64                                           // bytes/s of a fetch (0: 100 MB/s)
	// Compute model: virtual duration of a job (nil: 1 s to train, 100 ms
	// to apply, 1 s to verify).
	JobTime func(id string, j node.Job) time.Duration
	// Tick is the virtual time between ticks of every machine (0: 250 ms).
	Tick time.Duration
	// Trace, if set, receives one line per delivered message and decision.
	Trace func(line string)
	// Check, if set, runs after every event; a non-nil error stops Run.
	Check func(c *Cluster) error

	start   time.Time
	now     time.Time
	rng     *rand.Rand
	queue   eventQueue
	seq     uint64
	trk     *trackerHost
	hosts   map[string]*host
	order   []string // host IDs in creation order
	group   map[string]int
	genesis cid.Cid
	err     error

	// Events holds what the tracker decided, with when.
	Events []TimedEvent
	// Opens holds the last Open the tracker published for each step.
	Opens map[uint64]*tracker.Open

	// Stats.
	Delivered, Dropped int
	BytesPublished     int64
}

type trackerHost struct {
	id      string
	t       *tracker.Tracker
	storage tracker.Storage
	alive   bool
	epoch   int
}

type host struct {
	id      string
	role    tracker.Role
	engine  node.Engine
	store   *node.MemStore
	n       *node.Node
	alive   bool
	epoch   int // bumped on kill, so events for an old incarnation are dropped
	busy    time.Time
	head    cid.Cid // persisted head, as the daemon would pin it
	headAt  uint64
	history map[uint64]cid.Cid // C_step the node held
}

type event struct {
	at    time.Time
	seq   uint64
	to    string
	epoch int
	do    func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// NewCluster returns a cluster with the round's tracker (its state in
// storage; nil for memory) and no nodes. genesis is C_0.
func NewCluster(spec *tracker.Spec, seed uint64, genesis cid.Cid, storage tracker.Storage) (*Cluster, error) {
	if storage == nil {
		storage = &tracker.MemStorage{}
	}
	c := &Cluster{Spec: spec, Seed: seed, start: time.Unix(1_700_000_000, 0).UTC(), rng: rand.New(rand.NewPCG(seed, seed^0x5348_4f41_4c)),
		hosts: map[string]*host{}, group: map[string]int{}, genesis: genesis, Opens: map[uint64]*tracker.Open{}}
	c.now = c.start
	c.trk = &trackerHost{id: spec.Trackers[0], storage: storage}
	if err := c.startTracker(); err != nil {
		return nil, err
	}
	return c, nil
}

// Now returns the virtual time.
func (c *Cluster) Now() time.Time { return c.now }

// Elapsed returns the virtual time since the start.
func (c *Cluster) Elapsed() time.Duration { return c.now.Sub(c.start) }

// Tracker returns the tracker (nil while it is down).
func (c *Cluster) Tracker() *tracker.Tracker {
	if !c.trk.alive {
		return nil
	}
	return c.trk.t
}

// TrackerID returns the tracker's peer ID.
func (c *Cluster) TrackerID() string { return c.trk.id }

func (c *Cluster) startTracker() error {
	t, err := tracker.New(tracker.Config{Spec: c.Spec, Genesis: c.genesis, Storage: c.trk.storage}, c.now)
	if err != nil {
		return err
	}
	c.trk.t, c.trk.alive = t, true
	c.trk.epoch++
	c.scheduleTick(c.trk.id, c.trk.epoch, c.tick())
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

// AddNode adds and starts a node with its own store and engine (made by
// mk from the store).
func (c *Cluster) AddNode(id string, role tracker.Role, mk func(store *node.MemStore) (node.Engine, error)) error {
	if _, ok := c.hosts[id]; ok || id == c.trk.id {
		return fmt.Errorf("simulations: peer %s already exists", id)
	}
	store := node.NewMemStore()
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
	h := &host{id: id, role: role, engine: eng, store: store, history: map[uint64]cid.Cid{0: g}}
	c.hosts[id] = h
	c.order = append(c.order, id)
	return c.startNode(h)
}

func (c *Cluster) startNode(h *host) error {
	n, err := node.New(node.Config{ID: h.id, Role: h.role, Spec: c.Spec, Genesis: c.genesis, HeadStep: h.headAt, Head: h.head})
	if err != nil {
		return err
	}
	h.n, h.alive = n, true
	h.epoch++
	h.busy = c.now
	// Stagger first ticks so machines do not act in lockstep.
	c.scheduleTick(h.id, h.epoch, time.Duration(c.rng.Int64N(int64(c.tick()))))
	return nil
}

// Node returns a node's state machine.
func (c *Cluster) Node(id string) *node.Node { return c.hosts[id].n }

// Store returns a node's store.
func (c *Cluster) Store(id string) *node.MemStore { return c.hosts[id].store }

// Engine returns a node's engine.
func (c *Cluster) Engine(id string) node.Engine { return c.hosts[id].engine }

// Nodes returns the IDs of the nodes, in the order they were added.
func (c *Cluster) Nodes() []string { return slices.Clone(c.order) }

// Alive reports whether a node is running.
func (c *Cluster) Alive(id string) bool { return c.hosts[id].alive }

// HeadOf returns the checkpoint a node held as C_step, if it did.
func (c *Cluster) HeadOf(id string, step uint64) (cid.Cid, bool) {
	v, ok := c.hosts[id].history[step]
	return v, ok
}

// Kill stops a node as a crash would. Its store and last head survive.
func (c *Cluster) Kill(id string) {
	h := c.hosts[id]
	h.alive = false
	h.epoch++
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
	heap.Push(&c.queue, &event{at: at, seq: c.seq, to: to, epoch: epoch, do: do})
}

func (c *Cluster) scheduleTick(id string, epoch int, after time.Duration) {
	c.schedule(c.now.Add(after), id, epoch, func() {
		if id == c.trk.id {
			if err := c.trk.t.Tick(c.now); err != nil {
				c.err = err
				return
			}
			c.flushTracker()
		} else {
			h := c.hosts[id]
			h.n.Tick(c.now)
			c.flushNode(h)
		}
		c.scheduleTick(id, epoch, c.tick())
	})
}

// epochOf returns the current incarnation of a machine and whether it is up.
func (c *Cluster) epochOf(id string) (int, bool) {
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
	end := c.now.Add(limit)
	for c.queue.Len() > 0 {
		if done() {
			return nil
		}
		e := c.queue[0]
		if e.at.After(end) {
			break
		}
		heap.Pop(&c.queue)
		if ep, up := c.epochOf(e.to); !up || ep != e.epoch {
			continue // for a machine that died since
		}
		c.now = e.at
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
	c.now = end
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

func (c *Cluster) flushTracker() {
	for _, ev := range c.trk.t.Events() {
		c.Events = append(c.Events, TimedEvent{At: c.Elapsed(), Event: ev})
		c.trace("%s tracker %s step %d %s %s", c.stamp(), ev.Kind, ev.Step, ev.Peer, ev.Detail)
	}
	for _, m := range c.trk.t.Ready() {
		if o, ok := m.(*tracker.Open); ok {
			c.Opens[o.Step] = o
		}
		c.publish(c.trk.id, m)
	}
}

func (c *Cluster) flushNode(h *host) {
	r := h.n.Ready()
	for _, ev := range r.Events {
		c.trace("%s %s %s step %d %s", c.stamp(), h.id, ev.Kind, ev.Step, ev.Detail)
	}
	if r.HeadChanged {
		h.head, h.headAt = r.Head, r.HeadStep
		h.history[r.HeadStep] = r.Head
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
		h.store.Sweep(keepSteps, pinned...)
	}
	for _, m := range r.Publish {
		c.publish(h.id, m)
	}
	for _, j := range r.Jobs {
		c.runJob(h, j)
	}
	for _, f := range r.Fetches {
		c.fetch(h, f)
	}
}

func (c *Cluster) latency(from, to string) time.Duration {
	if c.Latency != nil {
		return c.Latency(from, to, c.rng)
	}
	return 10*time.Millisecond + time.Duration(c.rng.Int64N(int64(20*time.Millisecond)))
}

// publish sends a message to every other machine, through the wire
// encoding, with latency and loss.
func (c *Cluster) publish(from string, m tracker.Msg) {
	b, err := tracker.Marshal(m)
	if err != nil {
		c.err = fmt.Errorf("simulations: %s published a malformed %s: %w", from, m.Kind(), err)
		return
	}
	c.BytesPublished += int64(len(b))
	// Decode once: every receiver gets the same message, as a gossip
	// router would hand each one the same bytes. Receivers treat it as
	// read-only.
	dec, err := tracker.Unmarshal(b)
	if err != nil {
		c.err = fmt.Errorf("simulations: a %s message from %s does not decode: %w", m.Kind(), from, err)
		return
	}
	targets := append([]string{c.trk.id}, c.order...)
	for _, to := range targets {
		if to == from || !c.reachable(from, to) {
			continue
		}
		ep, up := c.epochOf(to)
		if !up {
			continue
		}
		if c.DropRate > 0 && c.rng.Float64() < c.DropRate {
			c.Dropped++
			continue
		}
		c.schedule(c.now.Add(c.latency(from, to)), to, ep, func() {
			if !c.reachable(from, to) {
				c.Dropped++
				return
			}
			c.deliver(from, to, dec)
		})
	}
}

func (c *Cluster) deliver(from, to string, m tracker.Msg) {
	c.Delivered++
	if to == c.trk.id {
		if err := c.trk.t.Receive(c.now, from, m); err != nil {
			c.trace("%s tracker refused %s from %s: %v", c.stamp(), m.Kind(), from, err)
		}
		c.flushTracker()
		return
	}
	h := c.hosts[to]
	if u, ok := m.(*tracker.Update); ok && len(u.Data) > 0 && !h.store.HasBlob(u.Payload) {
		if _, err := h.store.PutBlob(u.Data); err != nil {
			c.err = err
			return
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
	res := h.engine.Run(j)
	start := h.busy
	if start.Before(c.now) {
		start = c.now
	}
	h.busy = start.Add(c.jobTime(h.id, j))
	c.schedule(h.busy, h.id, h.epoch, func() {
		h.n.Done(c.now, res)
		c.flushNode(h)
	})
}

// keepSteps is how many steps of content a simulated node keeps.
const keepSteps = 4

func holds(s *node.MemStore, kind node.FetchKind, id cid.Cid) bool {
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
	candidates := append(slices.Clone(f.Providers), c.order...)
	for _, p := range candidates {
		s, ok := c.hosts[p]
		if !ok || p == h.id || !s.alive || !c.reachable(h.id, p) {
			continue
		}
		if holds(s.store, f.Kind, f.CID) {
			src = s
			break
		}
	}
	id, ep := h.id, h.epoch
	if src == nil {
		c.schedule(c.now.Add(time.Second), id, ep, func() {
			h.n.Fetched(c.now, f.CID, false)
			c.flushNode(h)
		})
		return
	}
	var size int
	var put func() error
	switch f.Kind {
	case node.FetchBlob:
		b, _ := src.store.Blob(f.CID)
		size = len(b)
		put = func() error {
			got, err := h.store.PutBlob(b)
			if err == nil && !got.Equals(f.CID) {
				err = fmt.Errorf("blob %s arrived as %s", f.CID, got)
			}
			return err
		}
	case node.FetchCheckpoint:
		ch, _ := src.store.Chunked(f.CID)
		size = len(ch.Data)
		put = func() error { return h.store.PutChunked(f.CID, ch) }
	}
	bw := c.Bandwidth
	if bw <= 0 {
		bw = 100e6
	}
	d := c.latency(src.id, h.id) + time.Duration(float64(size)/bw*float64(time.Second))
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
	})
}
