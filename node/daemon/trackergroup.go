package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"go.etcd.io/raft/v3"

	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/group"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// GroupConfig configures a tracker's part in its round's tracker group.
// Raft counts time in ticks: a member that hears nothing from the
// leader for ElectionTicks (randomised up to twice as many) stands for
// election, and the leader sends a heartbeat every HeartbeatTicks. The
// defaults are sized for members on different continents (round trips
// of a few hundred milliseconds): a heartbeat every 500 ms, an election
// after 3 to 6 s without one, so that a new leader takes over a few
// seconds after the leader dies.
type GroupConfig struct {
	// Log is the member's raft log (group.OpenLogStore, in its data
	// directory).
	Log *group.LogStore
	// Tick is raft's tick (default DefaultRaftTick).
	Tick time.Duration
	// ElectionTicks and HeartbeatTicks default to DefaultElectionTicks
	// and DefaultHeartbeatTicks.
	ElectionTicks, HeartbeatTicks int
	// SnapshotEntries is group.Config.SnapshotEntries.
	SnapshotEntries uint64
	// Join, if not 0, is the raft ID this tracker joins a running group
	// with, as the group's leader gave it when it added it (AddMember);
	// 0 for one of the group's first members.
	Join uint64
}

// The raft timing defaults: see GroupConfig.
const (
	DefaultRaftTick       = group.DefaultTick
	DefaultElectionTicks  = group.DefaultElectionTicks
	DefaultHeartbeatTicks = group.DefaultHeartbeatTicks
)

// groupStatus is what the dashboard and status show of the group.
type groupStatus struct {
	mu     sync.Mutex
	status GroupStatus
}

// GroupStatus is a tracker's view of its round's tracker group.
type GroupStatus struct {
	Self    string           `json:"self"`
	Members []string         `json:"members"` // peer IDs
	Leader  string           `json:"leader,omitempty"`
	Term    uint64           `json:"term"`
	Commit  uint64           `json:"commit"`
	Applied uint64           `json:"applied"`
	Lag     map[string]int64 `json:"lag,omitempty"` // at the leader: entries each member is behind
	// Snapshot is the index of the member's last snapshot and LogLen the
	// entries its log holds.
	Snapshot uint64 `json:"snapshot"`
	LogLen   uint64 `json:"log_len"`
	// Leads counts the times this member became leader.
	Leads int `json:"leads"`
}

// Group returns the tracker's view of its group (zero for a round with
// one tracker). It is safe to call from any goroutine.
func (d *Tracker) Group() GroupStatus {
	d.gs.mu.Lock()
	defer d.gs.mu.Unlock()
	s := d.gs.status
	s.Members = slices.Clone(s.Members)
	if s.Lag != nil {
		lag := make(map[string]int64, len(s.Lag))
		for k, v := range s.Lag {
			lag[k] = v
		}
		s.Lag = lag
	}
	return s
}

// newGroupTracker prepares a member of a tracker group.
func newGroupTracker(cfg TrackerConfig) (*Tracker, error) {
	spec := cfg.Spec
	self := cfg.Host.ID().String()
	if !spec.IsTracker(self) {
		return nil, fmt.Errorf("this host is %s, which is not one of the round's trackers %v: start the tracker with an identity the spec names", self, spec.TrackerIDs())
	}
	if cfg.Group.Log == nil {
		return nil, errors.New("tracker: a member of a tracker group needs its raft log")
	}
	if cfg.Group.Tick <= 0 {
		cfg.Group.Tick = DefaultRaftTick
	}
	if cfg.Group.ElectionTicks <= 0 {
		cfg.Group.ElectionTicks = DefaultElectionTicks
	}
	if cfg.Group.HeartbeatTicks <= 0 {
		cfg.Group.HeartbeatTicks = DefaultHeartbeatTicks
	}
	// Every member decides alike, so it must be configured alike: tokens
	// are checked against the first tracker's key (which its peer ID
	// holds), and the audit secret is one the members share, or none.
	var admit func(string, []byte, time.Time) error
	if spec.Admission == round.AdmissionClosed {
		first, err := peer.Decode(spec.TrackerID())
		if err != nil {
			return nil, err
		}
		pub, err := first.ExtractPublicKey()
		if err != nil {
			return nil, fmt.Errorf("tracker: the first tracker's key, to check tokens with: %w", err)
		}
		admit = Admitter(pub, spec.ID())
	}
	var voters []uint64
	names := map[uint64]string{}
	for _, p := range spec.TrackerIDs() {
		voters = append(voters, group.RaftID(p))
		names[group.RaftID(p)] = p
	}
	id := group.RaftID(self)
	if cfg.Group.Join != 0 {
		id, voters = cfg.Group.Join, nil
	}
	// What the members must agree on beyond the spec: a digest of it,
	// checked when a leader takes over (group.Config.Options).
	opts := struct {
		Round      string   `json:"round"`
		Genesis    string   `json:"genesis"`
		MinMembers int      `json:"min_members"`
		Spares     float64  `json:"spares"`
		Newcomers  float64  `json:"newcomers"`
		Anchors    []string `json:"anchors"`
		Secret     []byte   `json:"secret"`
	}{Round: spec.ID().String(), Genesis: cfg.Genesis.String(), MinMembers: max(cfg.MinMembers, 1), Spares: cfg.Spares,
		Newcomers: cfg.Newcomers, Anchors: cfg.Anchors}
	if cfg.AuditSecret != nil {
		sum := sha256.Sum256(append([]byte("shoal group options\x00"), cfg.AuditSecret...))
		opts.Secret = sum[:]
	}
	optsJSON, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(optsJSON)
	rep, err := group.New(group.Config{ID: id, Log: cfg.Group.Log, Voters: voters, Members: names, Options: digest[:],
		ElectionTicks: cfg.Group.ElectionTicks, HeartbeatTicks: cfg.Group.HeartbeatTicks, SnapshotEntries: cfg.Group.SnapshotEntries,
		Tracker: tracker.Config{Spec: spec, Genesis: cfg.Genesis, MinMembers: cfg.MinMembers, Spares: cfg.Spares, Newcomers: cfg.Newcomers,
			Anchors: cfg.Anchors, Admit: admit, AuditSecret: cfg.AuditSecret}})
	if err != nil {
		return nil, err
	}
	// The members reach one another at the addresses the spec gives.
	ps := cfg.Host.Libp2p().Peerstore()
	for i, p := range spec.TrackerIDs() {
		if i >= len(spec.TrackerAddrs) || p == self {
			continue
		}
		id, err := peer.Decode(p)
		if err != nil {
			return nil, err
		}
		a, err := ma.NewMultiaddr(spec.TrackerAddrs[i])
		if err != nil {
			return nil, fmt.Errorf("tracker_addrs[%d]: %w", i, err)
		}
		ps.AddAddr(id, a, peerstore.PermanentAddrTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = min(spec.Deadline/4, 2*time.Minute)
	}
	if cfg.Fetches <= 0 {
		cfg.Fetches = 8
	}
	rid := spec.ID()
	if err := cfg.Store.Put(rid, spec.Canonical()); err != nil {
		return nil, err
	}
	d := &Tracker{cfg: cfg, round: rid, t: rep.Tracker(), admin: make(chan func()), rep: rep, group: spec.TrackerIDs(), log: cfg.Logger, started: time.Now().UTC(),
		updates: map[cid.Cid]*wire.Update{}, held: make(chan heldPayload), sem: make(chan struct{}, cfg.Fetches)}
	d.gs.status = GroupStatus{Self: self, Members: spec.TrackerIDs()}
	d.refresh()
	return d, nil
}

// runGroup drives a member of a tracker group until ctx ends: raft's
// ticks and messages, and, at the leader, the round's messages, the
// tracker's ticks and the payload fetches, all as inputs proposed to the
// group (see package tracker/group).
func (d *Tracker) runGroup(ctx context.Context) error {
	s, h := d.t.Head()
	b, err := newBus(d.cfg.Host, d.round, d.log, &view{round: d.round, tracker: d.t.TrackerID(), group: d.group, step: s, head: h, excluded: map[string]bool{}}, d.cfg.Spec)
	if err != nil {
		return err
	}
	d.bus = b
	defer b.topic.Close()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	b.run(ctx, &wg)
	rn := newRaftNet(ctx, d.cfg.Host.Libp2p(), d.round.String(), d.raftMembers(), d.log)
	defer rn.Close()
	fetch := func(f tracker.Fetch) { d.fetch(ctx, &wg, f) }
	raftTick := time.NewTicker(d.cfg.Group.Tick)
	defer raftTick.Stop()
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	dash := time.NewTicker(refreshEvery)
	defer dash.Stop()
	d.log.Info("tracker group member running", "round", d.round.String(), "member", d.cfg.Host.ID().String(),
		"group", len(d.group), "raft_tick", d.cfg.Group.Tick.String(), "election_ticks", d.cfg.Group.ElectionTicks)
	for {
		select {
		case <-ctx.Done():
			d.log.Info("tracker stopping")
			d.refresh()
			return nil
		case m := <-b.in:
			d.propose(m)
			// Take what else has arrived before the Ready: its log
			// write and round trip carry all of it.
			for range cap(b.in) {
				var m inbound
				select {
				case m = <-b.in:
				default:
				}
				if m.msg == nil {
					break
				}
				d.propose(m)
			}
		case h := <-d.held:
			d.own(h.id)
			if err := d.rep.Held(time.Now(), h.id, h.err == nil); err != nil {
				d.log.Debug("payload outcome not proposed", "payload", h.id.String(), "err", err.Error())
			}
		case m := <-rn.in:
			if err := d.rep.Step(m); err != nil {
				d.log.Debug("raft message refused", "from", m.GetFrom(), "err", err.Error())
			}
		case r := <-rn.reports:
			if r.snapshot {
				d.rep.ReportSnapshot(r.to, r.ok)
			}
			if !r.ok {
				d.rep.ReportUnreachable(r.to)
			}
		case <-raftTick.C:
			d.rep.Tick()
		case <-tick.C:
			if err := d.rep.Clock(time.Now()); err != nil && !errors.Is(err, group.ErrNotLeader) && !errors.Is(err, raft.ErrProposalDropped) {
				return fmt.Errorf("tracker: %w", err)
			}
		case <-dash.C:
			d.refresh()
			d.updateView(true)
		case f := <-d.admin:
			f()
		}
		if err := d.flushGroup(rn, fetch); err != nil {
			return err
		}
	}
}

// propose proposes a message from the round's topic to the group, if
// this member leads.
func (d *Tracker) propose(m inbound) {
	if d.IsMember(m.from) {
		return // another member's publication: the group's, not an input
	}
	err := d.rep.Receive(time.Now(), m.from, m.msg)
	switch {
	case errors.Is(err, group.ErrNotLeader), errors.Is(err, raft.ErrProposalDropped):
	case err != nil:
		d.bus.refused.Add(1)
		d.log.Debug("message refused", "peer", m.from, "kind", m.msg.Kind().String(), "reason", err.Error())
	default:
		if u, ok := m.msg.(*wire.Update); ok {
			d.keepInline(u)
			d.mu.Lock()
			meta := *u
			meta.Data = nil
			d.updates[u.Payload] = &meta
			d.mu.Unlock()
		}
	}
}

// IsMember reports whether peer is a member of the round's tracker group.
func (d *Tracker) IsMember(peer string) bool {
	for _, p := range d.group {
		if p == peer {
			return true
		}
	}
	return false
}

// flushGroup runs the replica's Ready: the raft log is durable when it
// returns; then raft's messages go out, the leader publishes and fetches.
func (d *Tracker) flushGroup(rn *raftNet, fetch func(tracker.Fetch)) error {
	if !d.rep.HasReady() {
		return nil
	}
	rd, err := d.rep.Ready()
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	d.t = d.rep.Tracker() // a snapshot from the leader replaces it
	if rd.State != nil && d.cfg.Storage != nil {
		// A copy of the state for status and exports; the raft log is
		// what the group resumes from.
		if err := d.cfg.Storage.Save(rd.State); err != nil {
			return fmt.Errorf("tracker: saving a copy of the state: %w", err)
		}
	}
	rn.send(rd.Messages)
	for _, f := range rd.Fetch {
		if d.cfg.Store.HasBlob(f.Payload) {
			if err := d.rep.Held(time.Now(), f.Payload, true); err != nil {
				d.log.Debug("payload outcome not proposed", "payload", f.Payload.String(), "err", err.Error())
			}
			continue
		}
		fetch(f)
	}
	d.emit(rd.Events, rd.Publish)
	d.noteGroup()
	rn.setMembers(d.raftMembers())
	return nil
}

// raftMembers names the group's members for the transport: the voters
// of the configuration applied (a member added later under its new raft
// ID), or, before any is applied, the spec's trackers under their first
// raft IDs.
func (d *Tracker) raftMembers() map[uint64]peer.ID {
	first := map[uint64]string{}
	for _, p := range d.group {
		first[group.RaftID(p)] = p
	}
	names := d.rep.Members()
	if len(names) == 0 {
		names = first
	}
	out := map[uint64]peer.ID{}
	for rid, p := range names {
		if p == "" {
			p = first[rid]
		}
		if id, err := peer.Decode(p); err == nil {
			out[rid] = id
		}
	}
	return out
}

// AddMember adds a tracker to the group: one the spec names (volunteers
// follow no other), with a new raft ID, which it returns; the tracker
// then joins with that ID (GroupConfig.Join) and catches up from the
// leader. Only the leader adds members.
func (d *Tracker) AddMember(ctx context.Context, p string) (uint64, error) {
	if d.rep == nil {
		return 0, errors.New("the round has one tracker, not a group")
	}
	if c, err := round.CanonicalPeerID(p); err == nil {
		p = c
	}
	if !d.cfg.Spec.IsTracker(p) {
		return 0, fmt.Errorf("%s is not one of the round's trackers: volunteers would not follow it", p)
	}
	var id uint64
	err := d.onDriver(ctx, func() error {
		var err error
		id, err = d.rep.AddMember(p)
		return err
	})
	return id, err
}

// RemoveMember removes a tracker (every raft ID it holds) from the
// group. Only the leader removes members.
func (d *Tracker) RemoveMember(ctx context.Context, p string) error {
	if d.rep == nil {
		return errors.New("the round has one tracker, not a group")
	}
	if c, err := round.CanonicalPeerID(p); err == nil {
		p = c
	}
	return d.onDriver(ctx, func() error {
		for rid, name := range d.rep.Members() {
			if name == p {
				return d.rep.RemoveMember(rid)
			}
		}
		return fmt.Errorf("%s is not a member of the group", p)
	})
}

// onDriver runs f on the driver's goroutine and returns its error.
func (d *Tracker) onDriver(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	select {
	case d.admin <- func() { done <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noteGroup keeps the group's status for Group, and logs a change of
// leader.
func (d *Tracker) noteGroup() {
	st := d.rep.Status()
	members := d.rep.Members()
	name := func(id uint64) string {
		if p := members[id]; p != "" {
			return p
		}
		for _, p := range d.group {
			if group.RaftID(p) == id {
				return p
			}
		}
		if id == 0 {
			return ""
		}
		return fmt.Sprintf("raft:%x", id)
	}
	d.gs.mu.Lock()
	defer d.gs.mu.Unlock()
	g := &d.gs.status
	lead := name(st.Lead)
	if lead != g.Leader || st.Term != g.Term {
		if lead == g.Self {
			g.Leads++
		}
		d.log.Info("group leader", "leader", lead, "term", st.Term, "self", lead == g.Self)
	}
	g.Leader, g.Term, g.Commit, g.Applied, g.Snapshot, g.LogLen = lead, st.Term, st.Commit, st.Applied, st.Snapshot, st.LogLen
	g.Members = nil
	for _, v := range st.Voters {
		g.Members = append(g.Members, name(v))
	}
	g.Lag = nil
	if st.Match != nil && lead == g.Self {
		g.Lag = map[string]int64{}
		for id, m := range st.Match {
			g.Lag[name(id)] = max(0, int64(st.Commit)-int64(m))
		}
	}
}
