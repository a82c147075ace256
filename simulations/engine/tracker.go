package engine

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/wire"
)

// The tracker's side of the cluster: its machine, its lifecycle (start,
// crash, restart from storage), its ticks, and what it receives and
// publishes. What drives the tracker (its making, its storage, its ticks,
// its input and its output) is in this file.

// trackerHost is a tracker's machine: the round's one tracker, or a
// member of its tracker group.
type trackerHost struct {
	port
	id      string
	t       *tracker.Tracker
	storage tracker.Storage
	alive   bool
	epoch   int
	// inline holds the payloads that arrived inside updates the tracker
	// took, until the tracker asks for them (in the same delivery).
	inline map[cid.Cid]bool
	// member is the host's replica in a tracker group (nil: none).
	member *member
}

// newTrackerHosts returns the trackers' machines, none started: the
// round's tracker, or every member of its group when the spec names
// several.
func newTrackerHosts(cfg Config) []*trackerHost {
	if len(cfg.Spec.Trackers) > 1 {
		var out []*trackerHost
		for _, id := range cfg.Spec.TrackerIDs() {
			out = append(out, &trackerHost{id: id, inline: map[cid.Cid]bool{}, member: &member{}})
		}
		return out
	}
	storage := cfg.Storage
	if storage == nil {
		storage = &tracker.MemStorage{}
	}
	return []*trackerHost{{id: cfg.Spec.Trackers[0], storage: storage, inline: map[cid.Cid]bool{}}}
}

// trackerOf returns the tracker machine with peer ID id, or nil.
func (c *Cluster) trackerOf(id string) *trackerHost {
	for _, t := range c.trks {
		if t.id == id {
			return t
		}
	}
	return nil
}

// Tracker returns the tracker (nil while it is down). Of a tracker group
// it returns the tracker of the member that has applied the most of the
// group's log, up or down: every member applies the same log, so that
// one holds everything the group decided so far.
func (c *Cluster) Tracker() *tracker.Tracker {
	if c.grp != nil {
		return c.groupTracker()
	}
	if !c.trk.alive {
		return nil
	}
	return c.trk.t
}

// TrackerID returns the tracker's peer ID (of a group, the first
// member's).
func (c *Cluster) TrackerID() string { return c.trk.id }

// TrackerIDs returns the peer IDs of every tracker machine: the round's
// tracker, or its group's members.
func (c *Cluster) TrackerIDs() []string {
	out := make([]string, len(c.trks))
	for i, t := range c.trks {
		out[i] = t.id
	}
	return out
}

// DelayTracker moves the tracker's next tick to d from now, so that the
// first step opens once the peers started with the cluster have said
// hello, as a tracker started before its volunteers would see them.
func (c *Cluster) DelayTracker(d time.Duration) {
	if c.grp != nil {
		c.grp.clockEpoch++
		c.scheduleGroupClock(c.grp.clockEpoch, d)
		return
	}
	c.trk.epoch++ // drops the tick already scheduled
	c.scheduleTrackerTick(c.trk.epoch, d)
}

func (c *Cluster) startTracker() error {
	if c.grp != nil {
		return c.startGroup()
	}
	var st *tracker.State
	if c.trk.storage != nil {
		var err error
		if st, err = c.trk.storage.Load(); err != nil {
			return fmt.Errorf("tracker: loading state: %w", err)
		}
	}
	t, err := tracker.New(tracker.Config{Spec: c.cfg.Spec, Genesis: c.genesis, MinMembers: c.cfg.MinMembers, Spares: c.cfg.Spares, Newcomers: c.cfg.Newcomers, Anchors: c.cfg.Anchors}, st, c.now)
	if err != nil {
		return err
	}
	c.trk.t, c.trk.alive = t, true
	c.trk.epoch++
	c.flushTracker() // persists the state of the new epoch, asks again for payloads not held
	c.scheduleTrackerTick(c.trk.epoch, c.trackerTick())
	return nil
}

// KillTracker stops the tracker as a crash would: whatever it had not
// saved is lost. Of a tracker group it kills the leader, which
// RestartTracker starts again from its raft log.
func (c *Cluster) KillTracker() {
	if c.grp != nil {
		c.killLeader(false)
		return
	}
	c.trk.alive = false
	c.trk.epoch++
	c.trace("tracker killed")
}

// RestartTracker starts the tracker again from its storage. Of a
// tracker group it restarts the member killed last, from its raft log.
func (c *Cluster) RestartTracker() error {
	if c.grp != nil {
		return c.restartKilled()
	}
	c.trace("tracker restarted")
	return c.startTracker()
}

// RestartTrackerFrom starts the tracker again from another handle on its
// storage (a database reopened after the crash).
func (c *Cluster) RestartTrackerFrom(s tracker.Storage) error {
	c.trk.storage = s
	return c.RestartTracker()
}

func (c *Cluster) trackerTick() time.Duration {
	if c.cfg.TrackerTick > 0 {
		return c.cfg.TrackerTick
	}
	return c.tick()
}

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
		c.recordEvent(ev)
	}
	for _, m := range rd.Publish {
		c.publishDecision(c.trk.id, m)
	}
	held := false
	for _, f := range rd.Fetch {
		held = c.fetchForTracker(f) || held
	}
	clear(c.trk.inline)
	if held {
		c.flushTracker()
	}
}

// fetchForTracker is the tracker's driver fetching a payload it must hold
// before the update that names it counts. One that came inside its
// update is held at once (it reports whether it was); else it comes from
// the author, over the author's uplink and the tracker's downlink as a
// node's fetch does, if the author is up, reachable and serves it;
// otherwise the driver gives up a second later.
func (c *Cluster) fetchForTracker(f tracker.Fetch) bool {
	if c.trk.inline[f.Payload] {
		c.trk.t.Held(c.now, f.Payload, true)
		return true
	}
	c.fetchPayload(c.trk, f, func(ok bool) {
		c.trk.t.Held(c.now, f.Payload, ok)
		c.flushTracker()
	})
	return false
}

// fetchPayload fetches a payload for tracker machine t, as
// fetchForTracker says, and calls held with the outcome (in an event of
// t's current incarnation).
func (c *Cluster) fetchPayload(t *trackerHost, f tracker.Fetch, held func(ok bool)) {
	src := c.hosts[f.Provider]
	ep := t.epoch
	if src == nil || !src.alive || src.withholds || !c.reachable(t.id, src.id) || !src.store.HasBlob(f.Payload) {
		c.schedule(c.now.Add(time.Second), t.id, ep, func() { held(false) })
		return
	}
	size := c.blobBytes(f.Payload, int64(f.Size))
	var d time.Duration
	if c.cfg.Net == nil {
		bw := c.cfg.Bandwidth
		if bw <= 0 {
			bw = 100e6
		}
		d = c.latency(src.id, t.id) + time.Duration(float64(size)/bw*float64(time.Second))
	} else {
		rate := t.link.Down
		if rate <= 0 || (src.link.Up > 0 && src.link.Up < rate) {
			rate = src.link.Up
		}
		d = src.link.Latency + t.link.Latency + time.Duration(float64(size)*secondsPerByte(rate)*1e9)
		src.bytesOut += size
		t.bytesIn += size
	}
	c.schedule(c.now.Add(d), t.id, ep, func() {
		held(src.alive && c.reachable(t.id, src.id))
	})
}

// recordEvent keeps a tracker decision, with its time.
func (c *Cluster) recordEvent(ev tracker.Event) {
	c.Events = append(c.Events, TimedEvent{At: c.Elapsed(), Event: ev})
	c.trace("tracker %s step %d %s %s", ev.Kind, ev.Step, ev.Peer, ev.Detail)
	c.noteEvent(ev)
}

// publishDecision notes what a tracker publishes and publishes it.
func (c *Cluster) publishDecision(from string, m wire.Msg) {
	switch m := m.(type) {
	case *wire.Open:
		c.Opens[m.Step] = m
		c.noteOpen(m)
	case *wire.Close:
		c.noteClose(m)
	case *wire.Final:
		c.noteFinal(m)
	}
	c.publish(from, m)
}

func (c *Cluster) scheduleTrackerTick(epoch int, after time.Duration) {
	c.schedule(c.now.Add(after), c.trk.id, epoch, func() {
		t0 := time.Now()
		err := c.trk.t.Tick(c.now)
		c.TrackerWall += time.Since(t0)
		if err != nil {
			c.err = err
			return
		}
		c.flushTracker()
		c.scheduleTrackerTick(epoch, c.trackerTick())
	})
}

// deliverToTracker hands tracker machine t a message.
func (c *Cluster) deliverToTracker(t *trackerHost, from string, m wire.Msg) {
	if t.member != nil {
		c.deliverToMember(t, from, m)
		return
	}
	t0 := time.Now()
	err := c.trk.t.Receive(c.now, from, m)
	c.TrackerWall += time.Since(t0)
	if err != nil {
		c.trace("tracker refused %s from %s: %v", m.Kind(), from, err)
	} else if u, ok := m.(*wire.Update); ok && len(u.Data) > 0 {
		// The tracker's driver keeps an accepted update's inline payload
		// (the cluster checked its form when it was published).
		c.trk.inline[u.Payload] = true
	}
	c.flushTracker()
}

// TrackerBytes returns the bytes the tracker (of a group, every member)
// received and sent.
func (c *Cluster) TrackerBytes() (in, out int64) {
	for _, t := range c.trks {
		in += t.bytesIn
		out += t.bytesOut
	}
	return in, out
}
