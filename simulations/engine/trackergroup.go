package engine

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/group"
	"github.com/shoal-network/shoal/tracker/wire"
)

// A round whose spec names several trackers runs them as a tracker group
// (tracker/group): each member's replica, the real raft library and the
// real tracker, driven in virtual time. Raft's messages cross the
// members' links with their latency; every member takes every peer's
// message, the leader proposes it, and only the leader's Opens, Closes
// and Finals go out. Raft draws its election timeouts from crypto/rand,
// so the driver runs elections itself (group.Config.ManualElections): a
// follower that has heard no leader for its election timeout, drawn from
// the cluster's generator, campaigns. The timing is the daemon's
// default.
const (
	groupTick           = group.DefaultTick
	groupElectionTicks  = group.DefaultElectionTicks
	groupHeartbeatTicks = group.DefaultHeartbeatTicks
)

// member is a tracker machine's part in the group.
type member struct {
	raftID uint64
	log    *group.LogStore // its "disk": it survives a kill
	rep    *group.Replica
	// heard is when it last heard from the leader it follows (or
	// started, or campaigned); timeout is its current election timeout.
	heard   time.Time
	timeout time.Duration
	led     uint64 // the last term it led in
}

// groupState is the cluster's side of a tracker group.
type groupState struct {
	byRaft     map[uint64]*trackerHost
	voters     []uint64
	clockEpoch int
	// recorded is the highest raft index whose tracker events are in
	// Events: each entry's events are recorded once, from the first
	// member to apply it.
	recorded uint64
	killed   []*trackerHost // members killed, the last last
	// Leaders lists who led, from when, in order; Campaigns counts the
	// elections members started.
	leaders   []LeaderTerm
	kills     []LeaderKill
	campaigns int
}

// LeaderKill is the death of a group's leader.
type LeaderKill struct {
	At     time.Duration
	Leader string
	// ForGood: it was never to restart (KillLeader), not a crash it
	// restarts from (KillTracker).
	ForGood bool
	// Takeover is the time from then until a live member led (-1: none
	// did by the end of the run).
	Takeover time.Duration
}

// LeaderTerm is a member's leadership of the group from a time on.
type LeaderTerm struct {
	At     time.Duration
	Leader string
	Term   uint64
}

// GroupReport is what a tracker group did in a run.
type GroupReport struct {
	Members   []string
	Leaders   []LeaderTerm
	Kills     []LeaderKill
	Campaigns int
}

func newGroupState() *groupState { return &groupState{byRaft: map[uint64]*trackerHost{}} }

// Group reports what the tracker group did (nil without a group).
func (c *Cluster) Group() *GroupReport {
	g := c.grp
	if g == nil {
		return nil
	}
	r := &GroupReport{Members: c.TrackerIDs(), Leaders: g.leaders, Campaigns: g.campaigns}
	for _, k := range g.kills {
		k.Takeover = -1
		for _, l := range g.leaders {
			if l.At >= k.At {
				k.Takeover = l.At - k.At
				break
			}
		}
		r.Kills = append(r.Kills, k)
	}
	return r
}

// startGroup starts every member from an empty log, the spec's trackers
// as the group's first voters, and the group's clock.
func (c *Cluster) startGroup() error {
	g := c.grp
	names := map[uint64]string{}
	for _, t := range c.trks {
		t.member.raftID = group.RaftID(t.id)
		if g.byRaft[t.member.raftID] != nil {
			return fmt.Errorf("simulations: trackers %s and %s have the same raft ID", g.byRaft[t.member.raftID].id, t.id)
		}
		g.byRaft[t.member.raftID] = t
		g.voters = append(g.voters, t.member.raftID)
		names[t.member.raftID] = t.id
		t.member.log = group.NewMemLogStore()
	}
	for _, t := range c.trks {
		if err := c.startMember(t, names); err != nil {
			return err
		}
	}
	c.scheduleGroupTick()
	g.clockEpoch++
	c.scheduleGroupClock(g.clockEpoch, c.trackerTick())
	return nil
}

// startMember starts (or restarts) a member's replica from its log.
func (c *Cluster) startMember(t *trackerHost, names map[uint64]string) error {
	m := t.member
	rep, err := group.New(group.Config{
		ID: m.raftID,
		Tracker: tracker.Config{Spec: c.cfg.Spec, Genesis: c.genesis, MinMembers: c.cfg.MinMembers, Spares: c.cfg.Spares,
			Newcomers: c.cfg.Newcomers, Anchors: c.cfg.Anchors},
		Log: m.log, Voters: c.grp.voters, Members: names,
		HeartbeatTicks: groupHeartbeatTicks, ElectionTicks: groupElectionTicks, ManualElections: true,
	})
	if err != nil {
		return fmt.Errorf("simulations: tracker group member %s: %w", t.id, err)
	}
	m.rep, t.t, t.alive = rep, rep.Tracker(), true
	t.epoch++
	m.heard, m.timeout = c.now, c.electionTimeout()
	return nil
}

// electionTimeout draws a follower's election timeout, as raft would:
// ElectionTicks to twice as many.
func (c *Cluster) electionTimeout() time.Duration {
	base := groupElectionTicks * groupTick
	return base + time.Duration(c.rng.Int64N(int64(base)))
}

// scheduleGroupTick ticks every live member's raft, every groupTick, and
// starts an election at a follower whose timeout has passed.
func (c *Cluster) scheduleGroupTick() {
	c.schedule(c.now.Add(groupTick), "", 0, func() {
		for _, t := range c.trks {
			if !t.alive {
				continue
			}
			m := t.member
			m.rep.Tick()
			if lead, _ := m.rep.Leader(); !lead && c.now.Sub(m.heard) >= m.timeout {
				m.heard, m.timeout = c.now, c.electionTimeout()
				c.grp.campaigns++
				c.trace("tracker group: %s stands for election", t.id)
				if err := m.rep.Campaign(); err != nil {
					c.err = fmt.Errorf("simulations: tracker group member %s: %w", t.id, err)
					return
				}
			}
			c.flushMember(t)
		}
		c.scheduleGroupTick()
	})
}

// scheduleGroupClock proposes a tick of the tracker at the leader, every
// tracker tick (the group's clock is its leader's).
func (c *Cluster) scheduleGroupClock(epoch int, after time.Duration) {
	c.schedule(c.now.Add(after), "", 0, func() {
		if epoch != c.grp.clockEpoch {
			return
		}
		if t := c.leader(); t != nil {
			t0 := time.Now()
			err := t.member.rep.Clock(c.now)
			c.TrackerWall += time.Since(t0)
			if err != nil && !errors.Is(err, group.ErrNotLeader) && !errors.Is(err, raft.ErrProposalDropped) {
				c.err = fmt.Errorf("simulations: tracker group member %s: %w", t.id, err)
				return
			}
			c.flushMember(t)
		}
		c.scheduleGroupClock(epoch, c.trackerTick())
	})
}

// leader returns the live member that leads in the highest term, or nil.
func (c *Cluster) leader() *trackerHost {
	var best *trackerHost
	var bestTerm uint64
	for _, t := range c.trks {
		if !t.alive {
			continue
		}
		if lead, term := t.member.rep.Leader(); lead && term > bestTerm {
			best, bestTerm = t, term
		}
	}
	return best
}

// groupTracker is Tracker for a group: the tracker of the member that
// has applied the most.
func (c *Cluster) groupTracker() *tracker.Tracker {
	var best *trackerHost
	for _, t := range c.trks {
		if t.member.rep != nil && (best == nil || t.member.rep.Applied() > best.member.rep.Applied()) {
			best = t
		}
	}
	if best == nil {
		return nil
	}
	return best.member.rep.Tracker()
}

// KillLeader kills the group's leader for good and returns its ID; ""
// if no member leads.
func (c *Cluster) KillLeader() string { return c.killLeader(true) }

// killLeader kills the group's leader as a crash would (its raft log, on
// its disk, stays, for a restart unless forGood).
func (c *Cluster) killLeader(forGood bool) string {
	t := c.leader()
	if t == nil {
		c.trace("tracker group: no leader to kill")
		return ""
	}
	t.alive = false
	t.epoch++
	if !forGood {
		c.grp.killed = append(c.grp.killed, t)
	}
	c.grp.kills = append(c.grp.kills, LeaderKill{At: c.Elapsed(), Leader: t.id, ForGood: forGood})
	c.trace("tracker group: leader %s killed", t.id)
	return t.id
}

// restartKilled starts the member killed last again, from its log.
func (c *Cluster) restartKilled() error {
	g := c.grp
	if len(g.killed) == 0 {
		return nil
	}
	t := g.killed[len(g.killed)-1]
	g.killed = g.killed[:len(g.killed)-1]
	names := map[uint64]string{}
	for id, h := range g.byRaft {
		names[id] = h.id
	}
	c.trace("tracker group: %s restarted", t.id)
	if err := c.startMember(t, names); err != nil {
		return err
	}
	c.flushMember(t)
	return nil
}

// deliverToMember hands a member a peer's message: the leader proposes
// it; a follower drops it, as the leader has it too.
func (c *Cluster) deliverToMember(t *trackerHost, from string, m wire.Msg) {
	if c.trackerOf(from) != nil {
		return // another member's publication: the group's, not an input
	}
	t0 := time.Now()
	err := t.member.rep.Receive(c.now, from, m)
	c.TrackerWall += time.Since(t0)
	switch {
	case errors.Is(err, group.ErrNotLeader), errors.Is(err, raft.ErrProposalDropped):
		return
	case err != nil:
		c.trace("tracker %s refused %s from %s: %v", t.id, m.Kind(), from, err)
		return
	}
	if u, ok := m.(*wire.Update); ok && len(u.Data) > 0 {
		t.inline[u.Payload] = true
	}
	c.flushMember(t)
}

// flushMember runs a member's Ready: its log is durable, its raft
// messages go out, and, if it leads, what its tracker decided is
// published and the payloads it waits for are fetched.
func (c *Cluster) flushMember(t *trackerHost) {
	m := t.member
	t0 := time.Now()
	rd, err := m.rep.Ready()
	c.TrackerWall += time.Since(t0)
	if err != nil {
		c.err = fmt.Errorf("simulations: tracker group member %s: %w", t.id, err)
		return
	}
	t.t = m.rep.Tracker() // a snapshot from the leader replaces it
	if lead, term := m.rep.Leader(); lead && term != m.led {
		m.led = term
		c.grp.leaders = append(c.grp.leaders, LeaderTerm{At: c.Elapsed(), Leader: t.id, Term: term})
		c.trace("tracker group: %s leads in term %d", t.id, term)
	}
	c.sendRaft(t, rd.Messages)
	top := c.grp.recorded
	for i, ev := range rd.Events {
		if rd.Index[i] <= c.grp.recorded {
			continue
		}
		top = max(top, rd.Index[i])
		c.recordEvent(ev)
	}
	c.grp.recorded = top
	for _, msg := range rd.Publish {
		c.publishDecision(t.id, msg)
	}
	again := false
	for _, f := range rd.Fetch {
		if t.inline[f.Payload] {
			again = m.rep.Held(c.now, f.Payload, true) == nil || again
			continue
		}
		c.fetchPayload(t, f, func(ok bool) {
			if m.rep.Held(c.now, f.Payload, ok) == nil {
				c.flushMember(t)
			}
		})
	}
	clear(t.inline)
	if again {
		c.flushMember(t)
	}
}

// sendRaft sends a member's raft messages over its link to the others'.
// A message to a member that is down or cut off fails at once, as a
// connection would, and raft is told.
func (c *Cluster) sendRaft(from *trackerHost, msgs []*raftpb.Message) {
	for _, msg := range msgs {
		to := c.grp.byRaft[msg.GetTo()]
		if to == nil || !to.alive || !c.reachable(from.id, to.id) {
			from.member.rep.ReportUnreachable(msg.GetTo())
			if msg.GetType() == raftpb.MessageType_MsgSnap {
				from.member.rep.ReportSnapshot(msg.GetTo(), false)
			}
			continue
		}
		size := int64(proto.Size(msg))
		from.bytesOut += size
		to.bytesIn += size
		fromEpoch := from.epoch
		c.schedule(c.now.Add(c.latency(from.id, to.id)), to.id, to.epoch, func() {
			if !c.reachable(from.id, to.id) {
				return
			}
			if err := to.member.rep.Step(msg); err != nil {
				c.trace("tracker group: %s refused raft %s from %x: %v", to.id, msg.GetType(), msg.GetFrom(), err)
			}
			if msg.GetFrom() == to.member.rep.Lead() {
				to.member.heard = c.now
			}
			if msg.GetType() == raftpb.MessageType_MsgSnap && from.alive && from.epoch == fromEpoch {
				from.member.rep.ReportSnapshot(msg.GetTo(), true)
			}
			c.flushMember(to)
		})
	}
}
