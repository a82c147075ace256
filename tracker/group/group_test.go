package group

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

const trackerPeer = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"

func cidOf(s string) cid.Cid { return content.Sum([]byte(s)) }

func testSpec() *round.Spec {
	s := round.Defaults()
	s.Model = round.Model{Arch: round.ArchGPT, Vocab: 256, Ctx: 8, Dim: 8, Layers: 1, Heads: 1}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 1, 1
	s.Inner.LR = 0.01
	s.TargetSamples = 4
	s.Deadline = time.Minute
	s.VerificationRate = 0.5
	s.Seed = 7
	s.Trackers = []string{trackerPeer}
	return s
}

// member is a replica of the test group and its raft log's directory.
type member struct {
	id    uint64
	path  string
	r     *Replica
	alive bool
}

// cluster is a tracker group on an in-memory network, driven with a fake
// clock, and four workers that do what the leader's Opens and Closes
// say (their "checkpoint" of step t is named "C<t>").
type cluster struct {
	t       *testing.T
	cfg     func(id uint64) Config
	members map[uint64]*member
	now     time.Time
	cut     map[[2]uint64]bool // links that drop messages
	inbox   map[uint64][]*raftpb.Message
	workers []string
	// What the workers saw: the highest term, and what they sent in it.
	term      uint64
	sent      map[string]bool
	open      *wire.Open
	close     *wire.Close
	lastHello time.Time
	// finals are the Finals published, by step: each step once, and
	// always to the same checkpoint.
	finals    map[uint64]cid.Cid
	published int
	finalsBy  map[uint64]int // Finals published, by member
	// stopped holds the members that stopped on ErrOptions.
	stopped map[uint64]error
}

func newCluster(t *testing.T, n int, snapEvery uint64) *cluster {
	c := &cluster{t: t, members: map[uint64]*member{}, now: time.Unix(1_800_000_000, 0), cut: map[[2]uint64]bool{},
		inbox: map[uint64][]*raftpb.Message{}, workers: []string{"w1", "w2", "w3", "w4"}, sent: map[string]bool{},
		finals: map[uint64]cid.Cid{}, finalsBy: map[uint64]int{}, stopped: map[uint64]error{}}
	spec := testSpec()
	c.cfg = func(id uint64) Config {
		return Config{ID: id, Tracker: tracker.Config{Spec: spec, Genesis: cidOf("genesis"), AuditSecret: bytes.Repeat([]byte{9}, 32)},
			ElectionTicks: 10, HeartbeatTicks: 1, SnapshotEntries: snapEvery}
	}
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	dir := t.TempDir()
	for _, id := range voters {
		m := &member{id: id, path: filepath.Join(dir, fmt.Sprintf("raft-%d.db", id))}
		c.members[id] = m
		c.start(m, voters)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.alive {
				m.r.log.Close()
			}
		}
	})
	return c
}

// start opens a member's log and starts its replica.
func (c *cluster) start(m *member, voters []uint64) {
	c.t.Helper()
	log, err := OpenLogStore(m.path)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := c.cfg(m.id)
	cfg.Log, cfg.Voters = log, voters
	r, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	m.r, m.alive = r, true
}

// kill stops a member as a crash would: its log file stays as it was.
func (c *cluster) kill(id uint64) {
	m := c.members[id]
	m.alive = false
	m.r.log.Close()
	delete(c.inbox, id)
}

func (c *cluster) ids() []uint64 {
	var out []uint64
	for id, m := range c.members {
		if m.alive {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// leader returns the live member that leads in the highest term, or 0.
func (c *cluster) leader() uint64 {
	var best, term uint64
	for _, id := range c.ids() {
		if ok, t := c.members[id].r.Leader(); ok && t > term {
			best, term = id, t
		}
	}
	return best
}

// round advances the clock by 100 ms: one raft tick everywhere, a tick
// of the leader's tracker, the workers' messages, and every Ready.
func (c *cluster) round() {
	c.t.Helper()
	c.now = c.now.Add(100 * time.Millisecond)
	for _, id := range c.ids() {
		c.members[id].r.Tick()
	}
	if l := c.leader(); l != 0 {
		r := c.members[l].r
		if err := r.Clock(c.now); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, raft.ErrProposalDropped) {
			c.t.Fatal(err)
		}
		c.workersSay(r)
	}
	for pass := 0; pass < 3; pass++ {
		for _, id := range c.ids() {
			c.ready(c.members[id])
		}
		c.deliver()
	}
}

func (c *cluster) ready(m *member) {
	c.t.Helper()
	rd, err := m.r.Ready()
	if errors.Is(err, ErrOptions) {
		c.stopped[m.id] = err
		c.kill(m.id)
		return
	}
	if err != nil {
		c.t.Fatalf("member %d: %v", m.id, err)
	}
	for _, msg := range rd.Messages {
		to := msg.GetTo()
		if c.cut[[2]uint64{m.id, to}] || c.members[to] == nil || !c.members[to].alive {
			if msg.GetType() == raftpb.MsgSnap {
				m.r.ReportSnapshot(to, false)
			}
			continue
		}
		c.inbox[to] = append(c.inbox[to], msg)
		if msg.GetType() == raftpb.MsgSnap {
			m.r.ReportSnapshot(to, true)
		}
	}
	for _, f := range rd.Fetch {
		if err := m.r.Held(c.now, f.Payload, true); err != nil {
			c.t.Fatalf("member %d: held: %v", m.id, err)
		}
	}
	for _, p := range rd.Publish {
		c.publish(m.id, p)
	}
}

func (c *cluster) deliver() {
	for _, id := range c.ids() {
		msgs := c.inbox[id]
		c.inbox[id] = nil
		for _, msg := range msgs {
			if err := c.members[id].r.Step(msg); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
				c.t.Fatalf("member %d: step %s: %v", id, msg.GetType(), err)
			}
		}
	}
}

// publish is what the workers see of a member's publication: they follow
// the highest term and ignore lower ones, and a higher term makes them
// send again what they sent.
func (c *cluster) publish(from uint64, m wire.Msg) {
	c.published++
	var term uint64
	switch m := m.(type) {
	case *wire.Open:
		term = m.Term
	case *wire.Close:
		term = m.Term
	case *wire.Final:
		if prev, ok := c.finals[m.Step]; ok && !prev.Equals(m.Checkpoint) {
			c.t.Fatalf("step %d finalised twice: %s, then %s (member %d)", m.Step, prev, m.Checkpoint, from)
		}
		c.finals[m.Step] = m.Checkpoint
		c.finalsBy[from]++
		return
	}
	if term == 0 {
		c.t.Fatalf("member %d published %s without a term", from, m.Kind())
	}
	if term < c.term {
		return
	}
	if term > c.term {
		c.term = term
		clear(c.sent)
	}
	switch m := m.(type) {
	case *wire.Open:
		c.open = m
	case *wire.Close:
		c.close = m
	}
}

// workersSay sends the leader what the workers have to say.
func (c *cluster) workersSay(r *Replica) {
	send := func(from string, key string, m wire.Msg) {
		if key != "" && c.sent[key] {
			return
		}
		if err := r.Receive(c.now, from, m); err == nil && key != "" {
			c.sent[key] = true
		}
	}
	tr := r.Tracker()
	if c.now.Sub(c.lastHello) >= time.Second {
		c.lastHello = c.now
		step, head := c.head()
		for _, w := range c.workers {
			send(w, "", &wire.Hello{Round: tr.Round(), Role: wire.RoleWorker, Step: step, Head: head, Time: uint64(c.now.Unix())})
		}
	}
	if o := c.open; o != nil && (c.close == nil || c.close.Step < o.Step) {
		for _, a := range round.Assign(testSpec().Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), testSpec().VerificationRate) {
			data := fmt.Appendf(nil, "%s/%d/%d/%d", a.Peer, o.Step, o.Attempt, a.Unit)
			u := &wire.Update{Round: tr.Round(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: uint32(a.Unit), Replica: uint8(a.Replica),
				Samples: uint32(testSpec().UnitSamples()), Loss: 2, Raw: cidOf(fmt.Sprintf("raw/%d/%d", o.Step, a.Unit)),
				Residual: cidOf("res/" + a.Peer), Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
			send(a.Peer, fmt.Sprintf("u/%d/%d/%d/%d", o.Step, o.Attempt, a.Unit, a.Replica), u)
		}
	}
	if cl := c.close; cl != nil {
		for _, w := range c.workers {
			send(w, fmt.Sprintf("c/%d/%s", cl.Step, w), &wire.Commit{Round: tr.Round(), Step: cl.Step, Attempt: c.attemptOf(cl), Base: cl.Base,
				Result: cidOf(fmt.Sprintf("C%d", cl.Step+1))})
		}
	}
}

func (c *cluster) attemptOf(cl *wire.Close) uint32 {
	if c.open != nil && c.open.Step == cl.Step {
		return c.open.Attempt
	}
	return 0
}

// head is the workers' head: the last Final they saw.
func (c *cluster) head() (uint64, cid.Cid) {
	n := uint64(len(c.finals))
	if n == 0 {
		return 0, cidOf("genesis")
	}
	return n, c.finals[n-1]
}

// runUntil runs rounds until cond holds, failing after max rounds.
func (c *cluster) runUntil(max int, what string, cond func() bool) int {
	c.t.Helper()
	for i := range max {
		if cond() {
			return i
		}
		c.round()
	}
	c.t.Fatalf("%s: not after %d rounds (%v of fake time); finals %d, leader %d", what, max, time.Duration(max)*100*time.Millisecond, len(c.finals), c.leader())
	return 0
}

// agree checks that every live member applied the same log and holds
// the same tracker (its whole snapshot) and clock, and returns the
// common applied index.
func (c *cluster) agree() uint64 {
	c.t.Helper()
	// Quiet: no inputs, so that every member catches up.
	var applied uint64
	for range 50 {
		for _, id := range c.ids() {
			c.members[id].r.Tick()
		}
		for _, id := range c.ids() {
			c.ready(c.members[id])
		}
		c.deliver()
	}
	var ref []byte
	var refID uint64
	for _, id := range c.ids() {
		r := c.members[id].r
		snap, err := r.tr.Snapshot()
		if err != nil {
			c.t.Fatal(err)
		}
		snap = append(snap, r.clock.String()...)
		if ref == nil {
			ref, refID, applied = snap, id, r.applied
			continue
		}
		if r.applied != applied {
			c.t.Fatalf("member %d applied %d entries, member %d %d", id, r.applied, refID, applied)
		}
		if !bytes.Equal(snap, ref) {
			c.t.Fatalf("members %d and %d hold different trackers at entry %d:\n%s\n%s", refID, id, applied, ref, snap)
		}
	}
	return applied
}

func (c *cluster) checkFinals(tr *tracker.Tracker) {
	c.t.Helper()
	fs := tr.Finals()
	for i, f := range fs {
		if want, ok := c.finals[uint64(i)]; ok && !want.Equals(f.Checkpoint) {
			c.t.Fatalf("step %d: the tracker holds %s, %s was published", i, f.Checkpoint, want)
		}
		if want := cidOf(fmt.Sprintf("C%d", i+1)); !f.Checkpoint.Equals(want) {
			c.t.Fatalf("step %d finalised to %s, want %s", i, f.Checkpoint, want)
		}
	}
}

func TestGroupAgrees(t *testing.T) {
	c := newCluster(t, 3, 0)
	c.runUntil(600, "a leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "5 finals", func() bool { return len(c.finals) >= 5 })
	c.agree()
	for _, id := range c.ids() {
		c.checkFinals(c.members[id].r.Tracker())
		if n := len(c.members[id].r.Tracker().Finals()); n < 5 {
			t.Fatalf("member %d holds %d finals", id, n)
		}
	}
}

func TestGroupLeaderFails(t *testing.T) {
	c := newCluster(t, 3, 0)
	c.runUntil(600, "a leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "2 finals", func() bool { return len(c.finals) >= 2 })
	old := c.leader()
	_, oldTerm := c.members[old].r.Leader()
	c.kill(old)
	n := c.runUntil(600, "a new leader", func() bool { return c.leader() != 0 })
	nl := c.leader()
	_, term := c.members[nl].r.Leader()
	if nl == old || term <= oldTerm {
		t.Fatalf("leader %d in term %d after %d led in term %d", nl, term, old, oldTerm)
	}
	t.Logf("new leader %d in term %d after %v of fake time", nl, term, time.Duration(n)*100*time.Millisecond)
	c.runUntil(3000, "5 finals", func() bool { return len(c.finals) >= 5 })
	c.agree()
	for _, id := range c.ids() {
		c.checkFinals(c.members[id].r.Tracker())
	}
}

func TestGroupRestartCatchesUp(t *testing.T) {
	c := newCluster(t, 3, 0)
	c.runUntil(600, "a leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "1 final", func() bool { return len(c.finals) >= 1 })
	var follower uint64
	for _, id := range c.ids() {
		if id != c.leader() {
			follower = id
			break
		}
	}
	c.kill(follower)
	c.runUntil(3000, "4 finals", func() bool { return len(c.finals) >= 4 })
	c.start(c.members[follower], nil)
	applied := c.agree()
	if got := c.members[follower].r.applied; got != applied {
		t.Fatalf("the restarted member applied %d entries, the others %d", got, applied)
	}
	c.checkFinals(c.members[follower].r.Tracker())
}

func TestGroupNewMemberFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, 16)
	c.runUntil(600, "a leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "3 finals", func() bool { return len(c.finals) >= 3 })
	for _, id := range c.ids() {
		r := c.members[id].r
		if r.snapIndex == 0 {
			t.Fatalf("member %d took no snapshot in %d entries", id, r.applied)
		}
		if n := r.log.Len(); n > 16+4+64 {
			t.Fatalf("member %d holds %d entries of log after snapshots every 16", id, n)
		}
	}
	newID, err := c.members[c.leader()].r.AddMember("tracker4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.members[c.leader()].r.AddMember("tracker4"); err == nil {
		// The first change is not applied yet: raft refuses a second
		// while one is pending, or this one is refused as a member.
		c.round()
	}
	m := &member{id: newID, path: filepath.Join(t.TempDir(), "raft-4.db")}
	c.members[newID] = m
	c.start(m, nil)
	c.runUntil(3000, "5 finals", func() bool { return len(c.finals) >= 5 })
	c.agree()
	if m.r.snapIndex == 0 {
		t.Fatal("the new member did not start from a snapshot")
	}
	if got := m.r.Status().Voters; len(got) != 4 {
		t.Fatalf("voters %v, want 4", got)
	}
	if name := m.r.Members()[newID]; name != "tracker4" {
		t.Fatalf("the new member knows itself as %q", name)
	}
	// A member removed from the group is no longer counted: with it
	// and the leader gone, the other two of three carry on.
	if err := c.members[c.leader()].r.RemoveMember(newID); err != nil {
		t.Fatal(err)
	}
	c.runUntil(600, "the removal", func() bool { return len(c.members[c.leader()].r.Status().Voters) == 3 })
	c.kill(newID)
	c.checkFinals(m.r.Tracker())
	c.kill(c.leader())
	c.runUntil(600, "a new leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "7 finals", func() bool { return len(c.finals) >= 7 })
	c.agree()
}

// partition cuts every link between the two sides.
func (c *cluster) partition(a, b []uint64, cut bool) {
	for _, x := range a {
		for _, y := range b {
			c.cut[[2]uint64{x, y}] = cut
			c.cut[[2]uint64{y, x}] = cut
		}
	}
}

// TestGroupPartition cuts the leader off from the other two: on its
// minority side it takes the workers' messages still (some workers are
// on its side) but commits nothing, so it finalises and publishes
// nothing new, while the majority elects a leader and carries on; once
// the partition heals, the old leader follows the new one and every
// replica holds one history.
func TestGroupPartition(t *testing.T) {
	c := newCluster(t, 3, 0)
	c.runUntil(600, "a leader", func() bool { return c.leader() != 0 })
	c.runUntil(3000, "2 finals", func() bool { return len(c.finals) >= 2 })
	old := c.leader()
	var rest []uint64
	for _, id := range c.ids() {
		if id != old {
			rest = append(rest, id)
		}
	}
	c.partition([]uint64{old}, rest, true)
	oldFinals := len(c.members[old].r.Tracker().Finals())
	oldApplied := c.members[old].r.applied
	c.finalsBy[old] = 0
	for i := range 3000 {
		// The workers on the old leader's side talk to it while it
		// thinks it leads.
		if ok, _ := c.members[old].r.Leader(); ok {
			c.workersSay(c.members[old].r)
		}
		c.round()
		if len(c.finals) >= 5 && i > 100 {
			break
		}
	}
	if len(c.finals) < 5 {
		t.Fatalf("the majority side finalised up to %d steps", len(c.finals))
	}
	if n := c.finalsBy[old]; n != 0 {
		t.Fatalf("the old leader on the minority side published %d Finals", n)
	}
	if n := len(c.members[old].r.Tracker().Finals()); n != oldFinals {
		t.Fatalf("the old leader on the minority side went from %d to %d finals", oldFinals, n)
	}
	if a := c.members[old].r.applied; a != oldApplied {
		t.Fatalf("the old leader on the minority side applied entries %d to %d", oldApplied+1, a)
	}
	if ok, _ := c.members[old].r.Leader(); ok {
		t.Fatal("the old leader still leads on the minority side (check quorum should depose it)")
	}
	c.partition([]uint64{old}, rest, false)
	c.runUntil(3000, "7 finals", func() bool { return len(c.finals) >= 7 })
	c.agree()
	for _, id := range c.ids() {
		c.checkFinals(c.members[id].r.Tracker())
	}
}

// TestGroupOptionsMustAgree: a member whose tracker runs with other
// options than the leader's stops at the leader's Lead entry rather than
// decide otherwise from the same log.
func TestGroupOptionsMustAgree(t *testing.T) {
	c := newCluster(t, 3, 0)
	for _, id := range c.ids() {
		c.kill(id)
	}
	base := c.cfg
	c.cfg = func(id uint64) Config {
		cfg := base(id)
		cfg.Options = []byte("the group's options")
		if id == 3 {
			cfg.Options = []byte("other options")
		}
		return cfg
	}
	for _, id := range []uint64{1, 2, 3} {
		c.start(c.members[id], []uint64{1, 2, 3})
	}
	c.runUntil(600, "a member stopped", func() bool { return len(c.stopped) > 0 })
	if c.stopped[3] == nil && len(c.stopped) != 2 {
		t.Fatalf("stopped: %v; want the odd member, or both others if it leads", c.stopped)
	}
	t.Logf("stopped: %v", c.stopped)
}
