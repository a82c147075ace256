package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// The nodes' side of the cluster: their machines, their lifecycle (add,
// kill, restart), their ticks, and what the cluster does with what a node
// core asks for (publications, jobs, fetches).

// host is a node's machine.
type host struct {
	port
	id      string
	role    wire.Role
	engine  node.Engine
	store   *Store
	n       *node.Node
	loop    *node.Loop // drives n; its effects are nodeEffects
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
	withholds bool                 // serves no blob, and sends its updates without their data
}

// AddNode adds and starts a node with its own store and engine (made by
// mk from the store).
func (c *Cluster) AddNode(id string, role wire.Role, mk func(store *Store) (node.Engine, error)) error {
	if _, ok := c.hosts[id]; ok || c.trackerOf(id) != nil {
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
	if c.cfg.Net != nil {
		h.link = c.cfg.Net.Default
	}
	if c.cfg.Batch {
		store.present = func(id cid.Cid) bool { return c.presentAt(h, id) }
	}
	c.hosts[id] = h
	c.order = append(c.order, id)
	c.byOrder = append(c.byOrder, h)
	return c.startNode(h)
}

func (c *Cluster) startNode(h *host) error {
	cfg := node.Config{ID: h.id, Role: h.role, Spec: c.cfg.Spec, Genesis: c.genesis, HeadStep: h.headAt, Head: h.head,
		Validate: c.validate, Assignments: c.assignments}
	if c.cfg.Batch {
		cfg.Present = func(id cid.Cid) bool { return c.presentAt(h, id) }
		cfg.PresentAll = func(included []wire.Included) bool { return c.presentAllAt(h, included) }
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	h.n, h.alive = n, true
	h.loop = node.NewLoop(n, nodeHolder{c, h}, nodeEffects{c, h})
	h.epoch++
	h.busy = c.now
	h.upSince = c.now
	// Stagger first ticks so machines do not act in lockstep.
	first := time.Duration(c.rng.Int64N(int64(c.tick())))
	if c.cfg.LazyTicks {
		h.wake = time.Time{}
		c.wakeAt(h, c.now.Add(first))
		return nil
	}
	c.scheduleNodeTick(h.id, h.epoch, first)
	return nil
}

func (c *Cluster) tick() time.Duration {
	if c.cfg.Tick > 0 {
		return c.cfg.Tick
	}
	return 250 * time.Millisecond
}

func (c *Cluster) scheduleNodeTick(id string, epoch int, after time.Duration) {
	c.schedule(c.now.Add(after), id, epoch, func() {
		h := c.hosts[id]
		c.drive(h.loop.Tick(c.now))
		c.scheduleNodeTick(id, epoch, c.tick())
	})
}

// wakeAt makes sure a node under LazyTicks ticks at t or before.
func (c *Cluster) wakeAt(h *host, t time.Time) {
	if !c.cfg.LazyTicks || (!h.wake.IsZero() && !h.wake.After(t)) {
		return
	}
	if t.Before(c.now) {
		t = c.now
	}
	h.wake = t
	h.tickGen++
	c.seq++
	c.queue.push(event{at: int64(t.Sub(c.start)), seq: c.seq, to: h.id, host: h, epoch: h.epoch, kind: eventWake, gen: h.tickGen})
}

// wake is the event of wakeAt: a lazy tick of h, unless one was scheduled
// earlier since (gen is the tickGen it was scheduled with).
func (c *Cluster) wake(h *host, gen int) {
	if gen != h.tickGen {
		return // moved earlier since
	}
	h.wake = time.Time{}
	c.drive(h.loop.Tick(c.now))
	c.wakeAt(h, h.lastHello.Add(round.HeartbeatInterval(c.cfg.Spec)))
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
	c.trace("%s killed", id)
}

// Restart starts a killed node again from its store and head.
func (c *Cluster) Restart(id string) error {
	h := c.hosts[id]
	if h.alive {
		return fmt.Errorf("simulations: %s is running", id)
	}
	c.trace("%s restarted at C_%d", id, h.headAt)
	return c.startNode(h)
}

// drive records the error of a node's effect, which stops the run.
func (c *Cluster) drive(err error) {
	if err != nil && c.err == nil {
		c.err = err
	}
}

// nodeEffects carries out a node's effects in virtual time.
type nodeEffects struct {
	c *Cluster
	h *host
}

func (e nodeEffects) Event(ev node.Event) {
	e.c.trace("%s %s step %d %s", e.h.id, ev.Kind, ev.Step, ev.Detail)
	e.c.noteNodeEvent(ev)
}

// Head keeps the node's head, as the daemon would pin it, and keeps
// memory bounded: the recent heads and the updates of the last few steps
// are all a node still needs.
func (e nodeEffects) Head(step uint64, id cid.Cid) error {
	c, h := e.c, e.h
	c.wakeAt(h, c.now.Add(c.tick()))
	h.head, h.headAt = id, step
	h.history[step] = id
	if !h.changed && c.cfg.Check != nil {
		h.changed = true
		c.changed = append(c.changed, h)
	}
	var pinned []cid.Cid
	for s := step; s+KeepSteps > step; s-- {
		if id, ok := h.history[s]; ok {
			pinned = append(pinned, id)
		}
		if s == 0 {
			break
		}
	}
	for s := range h.history {
		if s+historyKept < step {
			delete(h.history, s)
		}
	}
	h.store.Sweep(KeepSteps, pinned...)
	return nil
}

func (e nodeEffects) Publish(m wire.Msg) {
	if u, ok := m.(*wire.Update); ok && e.h.withholds && len(u.Data) > 0 {
		bare := *u
		bare.Data = nil
		m = &bare
	}
	switch m := m.(type) {
	case *wire.Hello:
		e.h.lastHello = e.c.now
	case *wire.Update:
		e.c.noteNodeUpdate(e.h, m)
	}
	e.c.publishFrom(e.h.id, &e.h.port, m)
}

func (e nodeEffects) Run(j node.Job)     { e.c.runJob(e.h, j) }
func (e nodeEffects) Fetch(f node.Fetch) { e.c.fetch(e.h, f) }

// nodeHolder is a node's store as its loop sees it: an Update's inline
// payload whose form the cluster has checked is kept without hashing it
// again.
type nodeHolder struct {
	c *Cluster
	h *host
}

func (s nodeHolder) HasBlob(id cid.Cid) bool           { return s.h.store.HasBlob(id) }
func (s nodeHolder) PutBlob(b []byte) (cid.Cid, error) { return s.h.store.PutBlob(b) }
func (s nodeHolder) HasCheckpoint(id cid.Cid) bool     { return s.h.store.HasCheckpoint(id) }
func (s nodeHolder) PutPayload(u *wire.Update) error {
	if s.c.wellFormed(u) && s.h.store.putVerified(u.Payload, u.Data) == nil {
		return nil
	}
	_, err := s.h.store.PutBlob(u.Data)
	return err
}

// historyKept bounds the checkpoints per step a node's record keeps, for
// the invariants (which check every new entry when it appears).
const historyKept = 64

func (c *Cluster) jobTime(id string, j node.Job) time.Duration {
	if c.cfg.JobTime != nil {
		return c.cfg.JobTime(id, j)
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
	c.scheduleFor(h.busy, h, func() { c.drive(h.loop.Done(c.now, res)) })
}

// NodeTick returns the virtual time between a node's ticks.
func (c *Cluster) NodeTick() time.Duration { return c.tick() }

// Live returns how many nodes are running.
func (c *Cluster) Live() int {
	live := 0
	for _, id := range c.order {
		if c.hosts[id].alive {
			live++
		}
	}
	return live
}

// KeepSteps is how many steps of content a simulated node keeps (the
// nodes' Retention); the compute models shared between nodes forget what
// is older too.
const KeepSteps = node.Retention
