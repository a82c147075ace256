package engine

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// StepStats is what happened in one outer step, as the tracker decided it
// and as the peers lived it. Times are virtual, since the cluster started.
type StepStats struct {
	Step         uint64
	Opened       time.Duration // the first Open of the step
	Closed       time.Duration // its Close (0 until then)
	Finalised    time.Duration // its Final (0 until then)
	Reopens      int           // attempts that got nothing and were dealt again
	Members      int           // workers the last attempt was dealt to
	Units        int
	Included     int // updates the Close included
	Late         int // of those, late updates of the step before (round.Spec.LateWeight)
	Contributors int // distinct peers among them
	Disputes     int // disputes raised during the step
	Excluded     int // peers excluded during the step
	// Republished counts the tracker's messages published again (to a
	// newcomer, or a peer that said it was behind), Resent the updates
	// workers sent again on seeing their step's Open again, and CatchUps
	// the nodes that took the step's base by fetching it rather than by
	// applying the step before (a node catching up drops the units it was
	// dealt in the step it catches up to).
	Republished int
	Resent      int
	CatchUps    int
	// Missing counts, for a step closed by its deadline, the units dealt
	// that it did not include, by what their (first) peer was doing at
	// the deadline.
	Missing Missing

	// Per peer alive at the Final, over the step (from the previous
	// Final): bytes received and sent, and the share of the time its
	// machine spent on jobs.
	Live     int
	BytesIn  Dist
	BytesOut Dist
	Busy     Dist

	lastAttempt uint32
	final       cid.Cid // the checkpoint its Final named
}

// Dist summarises a sample: mean, median, 95th percentile and maximum.
type Dist struct {
	Mean, P50, P95, Max float64
}

// Summarise returns the Dist of xs (which it sorts).
func Summarise(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += x
	}
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(xs)))) - 1
		return xs[min(max(i, 0), len(xs)-1)]
	}
	return Dist{Mean: sum / float64(len(xs)), P50: q(0.5), P95: q(0.95), Max: xs[len(xs)-1]}
}

// current returns the stats of the step being run.
func (c *Cluster) current() *StepStats {
	if len(c.Steps) == 0 {
		return nil
	}
	return c.Steps[len(c.Steps)-1]
}

func (c *Cluster) stepStats(step uint64) *StepStats {
	if s := c.current(); s != nil && s.Step == step {
		return s
	}
	for _, s := range c.Steps {
		if s.Step == step {
			return s
		}
	}
	s := &StepStats{Step: step, Opened: c.Elapsed()}
	c.Steps = append(c.Steps, s)
	return s
}

func (c *Cluster) noteOpen(o *wire.Open) {
	s := c.stepStats(o.Step)
	if s.Members > 0 && s.lastAttempt == o.Attempt {
		s.Republished++
		return
	}
	s.Members, s.Units, s.lastAttempt = len(o.Members), int(o.Units), o.Attempt
}

// noteNodeEvent counts a node's catch-ups, for the step being run.
func (c *Cluster) noteNodeEvent(ev node.Event) {
	if s := c.current(); s != nil && ev.Kind == wire.EventCatchUp {
		s.CatchUps++
	}
}

// noteNodeUpdate counts an update a node sends again, for the step being
// run.
func (c *Cluster) noteNodeUpdate(h *host, u *wire.Update) {
	s := c.current()
	if s == nil {
		return
	}
	if _, seen := h.sent[u.Payload]; seen {
		s.Resent++
		return
	}
	if len(h.sent) > 64 {
		clear(h.sent)
	}
	h.sent[u.Payload] = struct{}{}
}

// Missing counts units a step closed by its deadline did not include.
type Missing struct {
	Left      int `json:"left"`      // dealt to a peer that had left
	Computing int `json:"computing"` // to a peer still computing (the unit, or work it had to do first)
	Waiting   int `json:"waiting"`   // to a live, idle peer: waiting for data (a base or updates), or holding back
}

// Total is the number of units missing.
func (m Missing) Total() int { return m.Left + m.Computing + m.Waiting }

func (c *Cluster) noteClose(cl *wire.Close) {
	s := c.stepStats(cl.Step)
	if s.Closed != 0 {
		s.Republished++
		return
	}
	s.Closed = c.Elapsed()
	s.Included = len(cl.Included)
	peers := map[string]bool{}
	units := map[uint32]bool{}
	for _, in := range cl.Included {
		peers[in.Peer] = true
		units[in.Unit] = true
	}
	s.Contributors = len(peers)
	o := c.Opens[cl.Step]
	if o == nil || s.Closed-s.Opened < c.cfg.Spec.Deadline {
		return
	}
	for _, a := range c.assignments(o) {
		if a.Replica != 0 || units[uint32(a.Unit)] {
			continue
		}
		switch h := c.hosts[a.Peer]; {
		case h == nil || !h.alive:
			s.Missing.Left++
		case h.busy.After(c.now):
			s.Missing.Computing++
		default:
			s.Missing.Waiting++
		}
	}
}

func (c *Cluster) noteFinal(f *wire.Final) {
	s := c.stepStats(f.Step)
	if !s.final.Defined() {
		s.final = f.Checkpoint
	} else if !s.final.Equals(f.Checkpoint) {
		// A restarted tracker, or a tracker group's new leader, sends a
		// Final again; never another one for the same step.
		c.err = fmt.Errorf("invariant: step %d was finalised twice, as %s and as %s", f.Step, s.final, f.Checkpoint)
		return
	}
	if s.Finalised != 0 {
		if cur := c.current(); cur != nil {
			cur.Republished++
		}
		return
	}
	s.Finalised = c.Elapsed()
	var in, out, busy []float64
	for _, id := range c.order {
		h := c.hosts[id]
		up := h.upTime
		if h.alive {
			up += c.now.Sub(h.upSince)
		}
		cur := peerSnapshot{in: h.bytesIn, out: h.bytesOut, busy: h.busyTime, up: up}
		prev := c.snap[id]
		c.snap[id] = cur
		if !h.alive {
			continue
		}
		in = append(in, float64(cur.in-prev.in))
		out = append(out, float64(cur.out-prev.out))
		if dt := cur.up - prev.up; dt > 0 {
			busy = append(busy, min(1, float64(cur.busy-prev.busy)/float64(dt)))
		}
	}
	s.Live = len(in)
	s.BytesIn, s.BytesOut, s.Busy = Summarise(in), Summarise(out), Summarise(busy)
}

type peerSnapshot struct {
	in, out int64
	busy    time.Duration
	up      time.Duration
}

// PeerTotals is one peer's account over the whole run.
type PeerTotals struct {
	ID       string
	Class    string
	BytesIn  int64
	BytesOut int64
	Busy     time.Duration // on jobs
	Up       time.Duration // alive
}

// Totals returns every peer's account, in the order they were added.
func (c *Cluster) Totals() []PeerTotals {
	out := make([]PeerTotals, 0, len(c.order))
	for _, id := range c.order {
		h := c.hosts[id]
		up := h.upTime
		if h.alive {
			up += c.now.Sub(h.upSince)
		}
		out = append(out, PeerTotals{ID: id, Class: h.class, BytesIn: h.bytesIn, BytesOut: h.bytesOut, Busy: h.busyTime, Up: up})
	}
	return out
}
