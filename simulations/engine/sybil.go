package engine

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Sybil identities: peer IDs that cost their owner nothing. A Sybil has
// no machine, no store and no node core; the cluster's swarm sends its
// messages, as one attacker holding many keys would from one connection.
// The swarm watches the tracker's publications (as any peer can) and
// answers them: the work per tracker message is one pass over the
// identities that act on it, and a heartbeat is one event for all.

// SybilKind is how a Sybil identity misbehaves.
type SybilKind uint8

const (
	// SybilSilent says Hello, as a worker or an observer, and nothing
	// else: a member that never trains nor commits.
	SybilSilent SybilKind = iota + 1
	// SybilVoter says Hello as an observer and commits, for every step
	// the tracker closes, a checkpoint the attacker chose.
	SybilVoter
	// SybilJunk says Hello as a worker and, for every step the tracker
	// opens, sends one Update: for a unit it was not dealt with inline
	// junk data, or (every other identity) one naming a random payload
	// CID that no one serves, for a unit dealt to it if it has one.
	SybilJunk
)

func (k SybilKind) String() string {
	switch k {
	case SybilSilent:
		return "silent"
	case SybilVoter:
		return "voter"
	case SybilJunk:
		return "junk"
	}
	return fmt.Sprintf("sybil(%d)", uint8(k))
}

// Sybil is one fake identity.
type Sybil struct {
	ID   string
	Kind SybilKind
	Role wire.Role // what its Hellos claim
}

// swarm is the cluster's Sybils and what they have seen.
type swarm struct {
	ids       []Sybil
	index     map[string]int // ID → position in ids
	round     cid.Cid        // the round's ID, hashed once
	junkBytes int
	step      uint64          // of the latest Final's checkpoint
	head      cid.Cid         // the latest Final's checkpoint
	opened    map[uint64]bool // AssignStep of the Opens answered
	closed    map[uint64]bool // steps whose Close was answered
	sent      int
}

// AddSybils adds Sybil identities; they say Hello at once and then every
// heartbeat interval. Junk Updates carry junkBytes of inline data (0: 1
// KiB, at least 16 bytes). Their messages reach the tracker and, without Batch, every node.
func (c *Cluster) AddSybils(ids []Sybil, junkBytes int) error {
	if c.sybils == nil {
		if junkBytes <= 0 {
			junkBytes = 1 << 10
		}
		junkBytes = max(junkBytes, 16)
		c.sybils = &swarm{index: map[string]int{}, round: c.cfg.Spec.ID(), junkBytes: junkBytes, head: c.genesis,
			opened: map[uint64]bool{}, closed: map[uint64]bool{}}
		c.scheduleSybilHellos(c.tick())
	}
	sw := c.sybils
	for _, s := range ids {
		if _, dup := sw.index[s.ID]; dup || c.hosts[s.ID] != nil || c.trackerOf(s.ID) != nil {
			return fmt.Errorf("simulations: peer %s already exists", s.ID)
		}
		sw.index[s.ID] = len(sw.ids)
		sw.ids = append(sw.ids, s)
	}
	return nil
}

// SybilMessages returns how many messages the Sybils sent.
func (c *Cluster) SybilMessages() int {
	if c.sybils == nil {
		return 0
	}
	return c.sybils.sent
}

// scheduleSybilHellos says every Sybil's Hello after d, and again every
// heartbeat interval.
func (c *Cluster) scheduleSybilHellos(d time.Duration) {
	c.schedule(c.now.Add(d), "", 0, func() {
		sw := c.sybils
		for _, s := range sw.ids {
			c.sybilSend(s, &wire.Hello{Round: sw.round, Role: s.Role, Step: sw.step, Head: sw.head}, false)
		}
		c.scheduleSybilHellos(round.HeartbeatInterval(c.cfg.Spec))
	})
}

// sybilSend delivers a Sybil's message to the tracker, if it is up, and
// to every node too if toNodes and the cluster does not batch. It is
// handed over at once: one event per message would cost the simulation
// more than the attack costs its attacker.
func (c *Cluster) sybilSend(s Sybil, m wire.Msg, toNodes bool) {
	c.sybils.sent++
	for _, t := range c.trks {
		if t.alive {
			c.Delivered++
			c.deliverToTracker(t, s.ID, m)
		}
	}
	if !toNodes || c.cfg.Batch {
		return
	}
	size := 0
	if u, ok := m.(*wire.Update); ok {
		size = len(u.Data) + 256
	}
	for _, h := range c.byOrder {
		id := h.id
		if !h.alive || !c.reachable(s.ID, id) {
			continue
		}
		if c.cfg.Net != nil {
			c.takeIn(&h.port, float64(size))
		}
		c.sendTo(c.now.Add(c.latency(s.ID, id)), s.ID, h, m)
	}
}

// sybilsSaw lets the Sybils answer a message the tracker published.
func (c *Cluster) sybilsSaw(m wire.Msg) {
	sw := c.sybils
	if sw == nil {
		return
	}
	switch m := m.(type) {
	case *wire.Final:
		if m.Step+1 > sw.step {
			sw.step, sw.head = m.Step+1, m.Checkpoint
		}
	case *wire.Close:
		if sw.closed[m.Step] {
			return
		}
		sw.closed[m.Step] = true
		fake := sybilCID("checkpoint", m.Step, c.cfg.Seed)
		c.schedule(c.now.Add(c.latency("", c.trk.id)), "", 0, func() {
			for _, s := range sw.ids {
				if s.Kind == SybilVoter {
					c.sybilSend(s, &wire.Commit{Round: m.Round, Step: m.Step, Base: m.Base, Result: fake}, false)
				}
			}
		})
	case *wire.Open:
		key := wire.AssignStep(m.Step, m.Attempt)
		if sw.opened[key] || m.Units == 0 {
			return
		}
		sw.opened[key] = true
		c.schedule(c.now.Add(c.latency("", c.trk.id)), "", 0, func() { c.sybilJunk(m) })
	}
}

// sybilJunk sends the junk Sybils' Updates for an Open.
func (c *Cluster) sybilJunk(o *wire.Open) {
	sw := c.sybils
	var junk []int
	for i, s := range sw.ids {
		if s.Kind == SybilJunk {
			junk = append(junk, i)
		}
	}
	if len(junk) == 0 {
		return
	}
	d := c.dealingOf(o)
	mine := map[string]round.Assignment{}
	for _, a := range d.all {
		if _, ok := sw.index[a.Peer]; ok {
			if _, seen := mine[a.Peer]; !seen {
				mine[a.Peer] = a
			}
		}
	}
	samples := uint32(c.cfg.Spec.UnitSamples())
	for n, i := range junk {
		s := sw.ids[i]
		u := &wire.Update{Round: o.Round, Step: o.Step, Attempt: o.Attempt, Base: o.Base, Samples: samples, Loss: 1,
			Raw: sybilCID("raw", uint64(i), o.Step), Residual: sybilCID("residual", uint64(i), o.Step)}
		if a, ok := mine[s.ID]; ok && n%2 == 1 {
			// A unit dealt to it, whose payload no one will ever serve.
			u.Unit, u.Replica = uint32(a.Unit), uint8(a.Replica)
			u.Payload, u.Size = sybilCID("payload", uint64(i), o.Step), uint64(sw.junkBytes)
		} else {
			// A unit dealt to someone else, with junk riding along.
			u.Unit = uint32(c.rng.IntN(int(o.Units)))
			if n%2 == 1 {
				u.Payload, u.Size = sybilCID("payload", uint64(i), o.Step), uint64(sw.junkBytes)
			} else {
				u.Data = make([]byte, sw.junkBytes)
				binary.LittleEndian.PutUint64(u.Data, uint64(i))
				binary.LittleEndian.PutUint64(u.Data[8:], o.Step)
				u.Payload, u.Size = content.Sum(u.Data), uint64(len(u.Data))
			}
		}
		c.sybilSend(s, u, true)
	}
}

// sybilCID is a CID the attacker makes up.
func sybilCID(what string, a, b uint64) cid.Cid {
	buf := binary.LittleEndian.AppendUint64([]byte("sybil "+what), a)
	return content.Sum(binary.LittleEndian.AppendUint64(buf, b))
}

// Withhold makes a node a withholder: it publishes its Updates without
// their inline data and serves no blob (payload or residual) to anyone,
// so that its updates can be had only from it, and are not: the tracker
// does not hold them, so it does not include them.
func (c *Cluster) Withhold(id string) {
	if h, ok := c.hosts[id]; ok {
		h.withholds = true
	}
}

// Replicated reports whether the unit of a step's attempt was dealt to
// more than one peer, as the Open that dealt it says (false if the
// cluster has not seen that Open): what a cheater learns from the Open
// about which of its units a partner recomputes.
func (c *Cluster) Replicated(step uint64, attempt, unit uint32) bool {
	d := c.dealt[wire.AssignStep(step, attempt)]
	if d == nil {
		o := c.Opens[step]
		if o == nil || o.Attempt != attempt {
			return false
		}
		d = c.dealingOf(o)
	}
	_, ok := d.byCopy[[2]uint32{unit, 1}]
	return ok
}

// unheld reports whether no machine can hold a blob a node asks for: the
// pool has no such bytes and no step's stream carries them (a CID a
// Sybil made up). A fetch of it then spares the scan of every machine,
// which nodes retrying such fetches would otherwise pay per retry.
func (c *Cluster) unheld(f node.Fetch) bool {
	if f.Kind != node.FetchBlob {
		return false
	}
	c.pool.mu.Lock()
	_, pooled := c.pool.blobs[f.CID]
	c.pool.mu.Unlock()
	_, streamed := c.present[f.CID]
	return !pooled && !streamed
}
