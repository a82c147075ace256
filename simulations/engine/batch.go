package engine

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// What the cluster shares between its nodes so that a message that every
// node receives costs its form check and its work assignment once, and
// how Batch delivers a step's updates.

// formCheck is the verdict of wire.WellFormed on one decoded message.
type formCheck struct {
	step uint64
	err  error
}

// validate is wire.Validate with the form check of the large messages
// (an Open lists every member, a Close every included update, an Update
// carries its payload, which the check hashes, a Final its providers)
// done once per decoded message rather than once per receiver. Validate checks the form first
// and rejects on failure; after that it reads only the kind, round, step
// and sender (and a Verdict's Checked), so a copy of the message with one
// member, one included update, no payload or no providers decides the
// same. Validate is a function of the message, its sender and the
// View's answers (and, for an Update, the Dealer's): the verdict on each
// of the tracker's messages, which every node receives, and again at
// each republication, is kept by those answers and given again to every
// node that answers alike.
func (c *Cluster) validate(v wire.View, from string, m wire.Msg) (wire.Result, error) {
	switch m.(type) {
	case *wire.Open, *wire.Close, *wire.Final:
		step, head := v.Head()
		k := verdictKey{from: from, round: v.Round(), tracker: v.TrackerID(), step: step, head: head, excluded: v.Excluded(from)}
		vs := c.verdicts[m]
		for _, x := range vs {
			if x.same(&k) {
				return x.res, x.err
			}
		}
		res, err := c.validateOnce(v, from, m)
		c.verdicts[m] = append(vs, verdict{verdictKey: k, res: res, err: err})
		return res, err
	}
	return c.validateOnce(v, from, m)
}

// verdictKey is a message's sender and every answer of the View that
// wire.Validate reads.
type verdictKey struct {
	from     string
	round    cid.Cid
	tracker  string
	step     uint64
	head     cid.Cid
	excluded bool
}

// same is ==, the fields that differ most often between nodes (their
// step and head) first, the strings every node holds alike (in copies of
// its own, compared byte by byte) last.
func (k *verdictKey) same(o *verdictKey) bool {
	return k.step == o.step && k.excluded == o.excluded && k.head == o.head &&
		k.from == o.from && k.tracker == o.tracker && k.round == o.round
}

// verdict is what Validate said of a message for a sender and View.
type verdict struct {
	verdictKey
	res wire.Result
	err error
}

// validateOnce is validate without the memory of verdicts.
func (c *Cluster) validateOnce(v wire.View, from string, m wire.Msg) (wire.Result, error) {
	var stub wire.Msg
	switch m := m.(type) {
	case *wire.Open:
		if len(m.Members) > 1 {
			s := *m
			s.Members = m.Members[:1]
			stub = &s
		}
	case *wire.Close:
		if len(m.Included) > 1 {
			s := *m
			s.Included = m.Included[:1]
			stub = &s
		}
	case *wire.Update:
		// The form check hashes the payload carried along.
		if len(m.Data) > 0 {
			s := *m
			s.Data = nil
			stub = &s
		}
	case *wire.Final:
		if len(m.Providers) > 0 {
			s := *m
			s.Providers = nil
			stub = &s
		}
	}
	if stub == nil {
		return wire.Validate(v, from, m)
	}
	fc, ok := c.forms[m]
	if !ok {
		fc = formCheck{step: m.StepNum(), err: wire.WellFormed(m)}
		c.forms[m] = fc
	}
	if fc.err != nil {
		return wire.Reject, fc.err
	}
	return wire.Validate(v, from, stub)
}

// dealing is the assignment of one Open's units.
type dealing struct {
	open   *wire.Open
	all    []round.Assignment
	byCopy map[[2]uint32]string // (unit, replica) → peer
}

// assignments is round.Assign for an Open, computed once per decoded
// Open.
func (c *Cluster) assignments(o *wire.Open) []round.Assignment {
	return c.dealingOf(o).all
}

func (c *Cluster) dealingOf(o *wire.Open) *dealing {
	if d, ok := c.dealings[o]; ok {
		return d
	}
	all := round.Assign(c.cfg.Spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), c.cfg.Spec.VerificationRate)
	d := &dealing{open: o, all: all, byCopy: make(map[[2]uint32]string, len(all))}
	for _, a := range all {
		d.byCopy[[2]uint32{uint32(a.Unit), uint32(a.Replica)}] = a.Peer
	}
	c.dealings[o] = d
	c.dealt[wire.AssignStep(o.Step, o.Attempt)] = d
	return d
}

// stream is the updates of one step, in the order they were published.
type stream struct {
	step   uint64
	ups    []streamUpdate
	closed int // updates published before the step's first Close; -1 until then
	env    *envelope
	total  float64                 // bytes of those updates
	whole  map[*wire.Included]bool // Close's included list → all in the batch
}

type streamUpdate struct {
	from   string
	msg    *wire.Update // decoded, Data included
	ready  float64      // virtual ns at which it reaches any receiver's edge
	size   float64
	repeat bool // a copy of an update sent before
}

type presenceRef struct {
	step uint64
	idx  int
}

// publishBatched routes a message under Batch.
func (c *Cluster) publishBatched(from string, src *port, m wire.Msg, size, depart float64) {
	if from == c.trk.id {
		var cl *wire.Close
		if x, ok := m.(*wire.Close); ok {
			cl = x
			c.closeStream(x.Step)
		}
		audits := auditChecks(m)
		ready := c.relayed(src, size, depart)
		for _, h := range c.byOrder {
			to := h.id
			if !h.alive || !c.reachable(from, to) {
				continue
			}
			if c.cfg.DropRate > 0 && c.rng.Float64() < c.cfg.DropRate {
				c.Dropped++
				continue
			}
			at := ready + float64(h.link.Latency) + size*c.gossipRate(&h.port)
			c.takeIn(&h.port, size)
			if cl != nil {
				at = max(at, c.finishBatch(h, cl.Step))
			}
			for _, ck := range audits[to] {
				c.deliverAudited(c.timeAt(at), h, ck)
			}
			c.sendTo(c.timeAt(at), from, h, m)
		}
		return
	}
	// A peer's message: the tracker gets it.
	if c.trk.alive && c.reachable(from, c.trk.id) {
		if c.cfg.DropRate > 0 && c.rng.Float64() < c.cfg.DropRate {
			c.Dropped++
		} else {
			at := c.arrive(src, &c.trk.port, size, depart)
			c.send(at, from, c.trk.id, c.trk.epoch, m) // one tracker: New refuses a group with Batch
		}
	}
	u, ok := m.(*wire.Update)
	if !ok {
		return
	}
	if h := c.hosts[from]; h != nil && h.withholds {
		return // a withholder's payload reaches no one
	}
	ready := c.relayed(src, size, depart)
	c.addToStream(from, u, ready, size)
	// Its replica partner gets it as a message, to check it.
	if d := c.dealt[wire.AssignStep(u.Step, u.Attempt)]; d != nil {
		p := d.byCopy[[2]uint32{u.Unit, uint32(1 - u.Replica)}]
		if h, ok := c.hosts[p]; ok && p != from && h.alive && c.reachable(from, p) {
			at := ready + float64(h.link.Latency) + size*c.gossipRate(&h.port)
			c.sendTo(c.timeAt(at), from, h, m)
		}
	}
}

func (c *Cluster) addToStream(from string, u *wire.Update, ready, size float64) {
	// An update travels with the updates of the first step, from its own
	// on, not closed yet: one sent again (the node saw its step's Open
	// republished, and gossip carries it again in a new envelope) or a
	// late one (first sent after its step's Close: see
	// round.Spec.LateWeight, whose next Close may include it) queues
	// ahead of the next step's updates.
	st := c.openStream(u.Step)
	if _, dup := c.present[u.Payload]; dup {
		st.ups = append(st.ups, streamUpdate{from: from, msg: u, ready: ready, size: size, repeat: true})
		return
	}
	if len(u.Data) > 0 {
		c.pool.mu.Lock()
		c.pool.refBlob(u.Payload, u.Data)
		c.pool.mu.Unlock()
	}
	c.present[u.Payload] = presenceRef{step: st.step, idx: len(st.ups)}
	st.ups = append(st.ups, streamUpdate{from: from, msg: u, ready: ready, size: size})
}

// openStream returns the stream of the first step from step on whose
// Close has not fixed its batch, made if need be.
func (c *Cluster) openStream(step uint64) *stream {
	for {
		st := c.streams[step]
		if st == nil {
			st = &stream{step: step, closed: -1}
			c.streams[step] = st
		}
		if st.closed < 0 {
			return st
		}
		step++
	}
}

// closeStream fixes the batch of a step's updates that its Close waits
// for, and forgets the streams of steps long past.
func (c *Cluster) closeStream(step uint64) {
	st := c.streams[step]
	if st == nil {
		st = &stream{step: step, closed: -1}
		c.streams[step] = st
	}
	if st.closed < 0 {
		st.closed = len(st.ups)
		arrive := make([]float64, st.closed)
		size := make([]float64, st.closed)
		for i, u := range st.ups[:st.closed] {
			arrive[i], size[i] = u.ready, u.size
			st.total += u.size
		}
		st.env = newEnvelope(arrive, size)
	}
	for s, old := range c.streams {
		if s+KeepSteps < step {
			c.pool.mu.Lock()
			for _, u := range old.ups {
				if u.repeat {
					continue
				}
				delete(c.present, u.msg.Payload)
				if len(u.msg.Data) > 0 {
					c.pool.unrefBlob(u.msg.Payload)
				}
			}
			c.pool.mu.Unlock()
			delete(c.streams, s)
		}
	}
	for m, fc := range c.forms {
		if fc.step+KeepSteps < step {
			delete(c.forms, m)
		}
	}
	for m := range c.verdicts {
		if m.StepNum()+KeepSteps < step {
			delete(c.verdicts, m)
		}
	}
	for o := range c.dealings {
		if o.Step+KeepSteps < step {
			delete(c.dealings, o)
			delete(c.dealt, wire.AssignStep(o.Step, o.Attempt))
		}
	}
}

// finishBatch returns when a node's downlink has taken in the updates of
// a step published before its Close, and counts their bytes, once.
func (c *Cluster) finishBatch(h *host, step uint64) float64 {
	if t, ok := h.batchDone[step]; ok {
		return t
	}
	st := c.streams[step]
	if st == nil || st.closed <= 0 {
		h.batchDone[step] = 0
		return 0
	}
	x := c.gossipRate(&h.port)
	f := float64(h.link.Latency) + st.env.max(x)
	if carry := h.downFree + st.total*x; carry > f {
		f = carry
	}
	h.downFree = f
	c.takeIn(&h.port, st.total)
	for s := range h.batchDone {
		if s+KeepSteps < step {
			delete(h.batchDone, s)
		}
	}
	h.batchDone[step] = f
	return f
}

// presentAt reports whether an update of a step's batch has reached a
// node.
func (c *Cluster) presentAt(h *host, id cid.Cid) bool {
	ref, ok := c.present[id]
	if !ok {
		return false
	}
	st := c.streams[ref.step]
	if st == nil || st.closed < 0 || ref.idx >= st.closed {
		return false
	}
	t, ok := h.batchDone[ref.step]
	return ok && c.nowNS() >= t
}

// presentAllAt reports whether every update of included (a Close's
// list) reached a node in its step's batch: presentAt of each, answered
// at once when the list is all in one step's batch (see wholeBatch).
func (c *Cluster) presentAllAt(h *host, included []wire.Included) bool {
	if len(included) == 0 {
		return false
	}
	ref, ok := c.present[included[0].Payload]
	if !ok || !c.wholeBatch(ref.step, included) {
		return false
	}
	t, ok := h.batchDone[ref.step]
	return ok && c.nowNS() >= t
}

// wholeBatch reports whether every update of included (a Close's list)
// is in the batch of a step's updates published before its Close; it is
// worked out once per list and step.
func (c *Cluster) wholeBatch(step uint64, included []wire.Included) bool {
	st := c.streams[step]
	if st == nil || st.closed < 0 || len(included) == 0 {
		return false
	}
	if st.whole == nil {
		st.whole = map[*wire.Included]bool{}
	}
	key := &included[0]
	whole, seen := st.whole[key]
	if !seen {
		whole = true
		for _, in := range included {
			if ref, ok := c.present[in.Payload]; !ok || ref.step != step || ref.idx >= st.closed {
				whole = false
				break
			}
		}
		st.whole[key] = whole
	}
	return whole
}

// updatesOf returns the updates of a step in the streams: its own, and
// the late ones that travel with the next step's (see addToStream).
func (c *Cluster) updatesOf(step uint64) []streamUpdate {
	var out []streamUpdate
	for _, s := range []uint64{step, step + 1} {
		if st := c.streams[s]; st != nil {
			for _, u := range st.ups {
				if u.msg.Step == step {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// deliverDisputed hands every node the updates of a disputed unit: any of
// them may be asked to settle the dispute, from the updates it saw.
func (c *Cluster) deliverDisputed(step uint64, unit uint32) {
	for _, u := range c.updatesOf(step) {
		if u.msg.Unit != unit || u.repeat {
			continue
		}
		for _, h := range c.byOrder {
			to := h.id
			if to == u.from || !h.alive || !c.reachable(u.from, to) {
				continue
			}
			at := max(u.ready, c.nowNS()) + float64(h.link.Latency)
			c.sendTo(c.timeAt(at), u.from, h, u.msg)
		}
	}
}

// auditChecks returns an Open's audits (Checks of one author's update)
// by checker.
func auditChecks(m wire.Msg) map[string][]wire.Check {
	o, ok := m.(*wire.Open)
	if !ok {
		return nil
	}
	var out map[string][]wire.Check
	for _, ck := range o.Checks {
		if len(ck.Peers) == 1 {
			if out == nil {
				out = map[string][]wire.Check{}
			}
			out[ck.Checker] = append(out[ck.Checker], ck)
		}
	}
	return out
}

// deliverAudited hands an audit's checker the audited update's message,
// just before the Open that asks it (the same time, scheduled first).
// Its bytes reached every node in its step's batch already; the
// message, which the checker judges, went only to the author's
// partners. Every other node needs nothing of it, so under Batch an
// audit costs one delivery, not one per node; a republished Open hands
// it again, which the node takes as a repeat.
func (c *Cluster) deliverAudited(at time.Time, h *host, ck wire.Check) {
	for _, u := range c.updatesOf(ck.Step) {
		if u.repeat || u.from != ck.Peers[0] || u.msg.Unit != ck.Unit || u.msg.Attempt != ck.Attempt || u.from == h.id {
			continue
		}
		m := u.msg
		if len(m.Data) > 0 {
			meta := *m
			meta.Data = nil
			m = &meta
		}
		c.sendTo(at, u.from, h, m)
	}
}

// noteEvent reacts to the tracker's decisions: under Batch, a dispute
// sends the disputed unit's updates to everyone (an audit's update goes
// to its checker with the Open that asks it: see deliverAudited).
func (c *Cluster) noteEvent(ev tracker.Event) {
	if s := c.current(); s != nil {
		switch ev.Kind {
		case wire.EventDispute, wire.EventAudit:
			s.Disputes++
		case wire.EventExclude:
			s.Excluded++
		case wire.EventReopen:
			s.Reopens++
		case wire.EventMerge:
			var n int
			if _, err := fmt.Sscanf(ev.Detail, "%d late updates", &n); err == nil {
				s.Late = n
			}
		}
	}
	if !c.cfg.Batch || ev.Kind != wire.EventDispute {
		return
	}
	var unit uint32
	if _, err := fmt.Sscanf(ev.Detail, "unit %d:", &unit); err == nil {
		c.deliverDisputed(ev.Step, unit)
	}
}

// checkApply records an apply started while an included update was not
// in the node's store (content enters a store verified against its CID,
// so what is there is verified). Under Batch, a step's updates that were
// all in its stream before the Close are checked once per Close, and a
// node then only needs its batch to be in.
func (c *Cluster) checkApply(h *host, a node.ApplyJob) {
	if c.cfg.Batch && c.wholeBatch(a.Step, a.Included) {
		if t, ok := h.batchDone[a.Step]; ok && c.nowNS() >= t {
			return
		}
	}
	for _, in := range a.Included {
		if !h.store.HasBlob(in.Payload) {
			c.Unverified = append(c.Unverified, fmt.Sprintf("%s applied step %d without update %s of %s", h.id, a.Step, in.Payload, in.Peer))
			return
		}
	}
}

// wellFormed reports whether a decoded message passed its form check
// (run once, by validate).
func (c *Cluster) wellFormed(m wire.Msg) bool {
	fc, ok := c.forms[m]
	if !ok {
		fc = formCheck{step: m.StepNum(), err: wire.WellFormed(m)}
		c.forms[m] = fc
	}
	return fc.err == nil
}
