package group

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// RaftID returns the raft ID of a group member, from its peer ID: the
// first 8 bytes of the SHA-256 of its canonical form, big endian (never
// 0, nor one of raft's local targets).
func RaftID(peer string) uint64 {
	if c, err := round.CanonicalPeerID(peer); err == nil {
		peer = c
	}
	sum := sha256.Sum256([]byte(peer))
	id := binary.BigEndian.Uint64(sum[:8]) >> 2 // clear of raft's local targets at the top
	if id == 0 {
		id = 1
	}
	return id
}

// Config configures a Replica.
type Config struct {
	// ID is the replica's raft ID (RaftID of its peer ID).
	ID uint64
	// Tracker configures the replicated tracker: it must be the same at
	// every replica (the same spec, genesis, secrets and options).
	Tracker tracker.Config
	// Log is the replica's raft log.
	Log *LogStore
	// Voters are the raft IDs of the group's first members, used when
	// Log is empty: every first member starts with the same list. A
	// member added later (AddMember) starts with none and learns the
	// group from the leader.
	Voters []uint64
	// Members names the group's first members: raft ID → peer ID (the
	// same at every member). Members added later are named by their
	// configuration change.
	Members map[uint64]string
	// ElectionTicks and HeartbeatTicks are raft's timeouts in calls of
	// Tick (defaults 10 and 1). The driver sizes the tick for its links.
	ElectionTicks, HeartbeatTicks int
	// SnapshotEntries is how many applied entries a replica goes between
	// snapshots of its tracker (default DefaultSnapshotEntries); after a
	// snapshot it keeps KeepEntries entries of the log behind it (default
	// SnapshotEntries/4) for followers a little behind.
	SnapshotEntries, KeepEntries uint64
	// Logger receives raft's own log (default: none).
	Logger raft.Logger
	// ManualElections turns raft's own election timer off (and with it
	// check quorum, whose lease would refuse the votes): the driver calls
	// Campaign when a follower has heard no leader for long enough. Raft
	// draws its election timeouts from crypto/rand; a deterministic
	// driver (the simulator) draws them from its own generator instead.
	ManualElections bool
	// Options, if set, is a digest of what the tracker runs with beyond
	// the spec (Tracker's options, secrets and genesis, as the driver
	// sees them): every member must run alike, or their trackers would
	// decide differently from the same log. A new leader's Lead entry
	// carries its digest, and a member whose own differs stops with
	// ErrOptions rather than diverge.
	Options []byte
}

// ErrOptions is returned by Ready when the leader's tracker runs with
// other options than this member's (see Config.Options).
var ErrOptions = errors.New("group: this tracker runs with other options than the group's leader (the same --min-members, --spares, --newcomers, group secret and spec at every member)")

// The raft timing a driver uses by default, sized for members on
// different continents (round trips of a few hundred milliseconds): a
// tick of 250 ms, a heartbeat every 2 ticks, an election after 12 ticks
// (randomised up to 24) without one: 3 to 6 s.
const (
	DefaultTick           = 250 * time.Millisecond
	DefaultElectionTicks  = 12
	DefaultHeartbeatTicks = 2
)

// DefaultSnapshotEntries is how many applied entries a replica goes
// between snapshots by default.
const DefaultSnapshotEntries = 4096

// ErrNotLeader is returned for an input given to a replica that is not
// the group's leader: only the leader takes inputs. An input raft drops
// (a leader stepping down, or too much not yet committed) is refused
// with raft.ErrProposalDropped; either way the input is not taken, and
// the peer that sent it sends it again when it sees a new term.
var ErrNotLeader = errors.New("group: not the leader")

// Replica is one member of a tracker group. It is not safe for
// concurrent use.
type Replica struct {
	cfg       Config
	rn        *raft.RawNode
	log       *LogStore
	tr        *tracker.Tracker
	conf      *raftpb.ConfState
	applied   uint64
	snapIndex uint64
	clock     time.Time // the time of the last input applied
	lead      uint64    // the leader, as raft last said (0: none known)
	leader    bool      // this replica leads
	announced uint64    // the term this replica proposed its Lead entry in
	refused   uint64    // inputs the tracker refused when applied
	// peers names the group's members, raft ID → peer ID: replicated
	// (the first members, then the configuration changes applied).
	peers map[uint64]string
}

// Ready is what a replica has for its driver, once the raft log it
// names is durable.
type Ready struct {
	// Messages are raft's messages to the other members, to send now
	// (the log they depend on is durable). A MsgSnap's outcome is
	// reported with ReportSnapshot.
	Messages []*raftpb.Message
	// Publish is what the leader's tracker decided, to gossip in order;
	// its Opens and Closes carry the leader's term. Empty at followers.
	Publish []wire.Msg
	// Fetch are the payloads the leader is to fetch and report with
	// Held. Empty at followers.
	Fetch []tracker.Fetch
	// Events are the tracker's events, at every replica, and Index the
	// raft index of the entry each came from (a driver that records the
	// group's events once, from whichever member applies an entry first,
	// keeps those past the highest index it recorded).
	Events []tracker.Event
	Index  []uint64
	// State, when not nil, is the tracker's state after a decision, for
	// a driver that keeps a copy of it (the raft log is what makes it
	// durable). It is the tracker's own: done with before the next input.
	State *tracker.State
}

// New starts a replica from its log: from its last snapshot and the
// entries after it, or, for a new log, with cfg.Voters as the group.
func New(cfg Config) (*Replica, error) {
	if cfg.ID == 0 {
		return nil, errors.New("group: no raft ID")
	}
	if cfg.Log == nil {
		return nil, errors.New("group: no raft log")
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.HeartbeatTicks >= cfg.ElectionTicks {
		return nil, fmt.Errorf("group: heartbeat of %d ticks, election of %d: the election timeout must be longer", cfg.HeartbeatTicks, cfg.ElectionTicks)
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = DefaultSnapshotEntries
	}
	if cfg.KeepEntries == 0 {
		cfg.KeepEntries = cfg.SnapshotEntries / 4
	}
	if cfg.Logger == nil {
		cfg.Logger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
	}
	r := &Replica{cfg: cfg, log: cfg.Log, conf: &raftpb.ConfState{}, peers: map[uint64]string{}}
	for id, p := range cfg.Members {
		r.peers[id] = p
	}
	fresh := cfg.Log.Empty()
	if snap := cfg.Log.Snapshot(); !raft.IsEmptySnap(snap) {
		if err := r.restore(snap); err != nil {
			return nil, err
		}
	} else {
		tr, err := tracker.New(cfg.Tracker, nil, time.Unix(0, 0))
		if err != nil {
			return nil, err
		}
		tr.Ready()
		r.tr = tr
	}
	election, checkQuorum := cfg.ElectionTicks, true
	if cfg.ManualElections {
		election, checkQuorum = math.MaxInt32, false
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: cfg.ID, ElectionTick: election, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: cfg.Log.Storage(), Applied: r.applied,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum: checkQuorum, PreVote: true, StepDownOnRemoval: true, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("group: %w", err)
	}
	r.rn = rn
	if fresh && len(cfg.Voters) > 0 {
		peers := make([]raft.Peer, len(cfg.Voters))
		for i, id := range cfg.Voters {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
	}
	return r, nil
}

// restore makes the replica's tracker the one a snapshot holds.
func (r *Replica) restore(snap *raftpb.Snapshot) error {
	data := snap.GetData()
	if len(data) < 8 {
		return fmt.Errorf("group: snapshot at %d: %d bytes", snap.GetMetadata().GetIndex(), len(data))
	}
	clock := int64(binary.BigEndian.Uint64(data))
	data = data[8:]
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)-k) {
		return fmt.Errorf("group: snapshot at %d: bad members", snap.GetMetadata().GetIndex())
	}
	peers := map[uint64]string{}
	if err := json.Unmarshal(data[k:k+int(n)], &peers); err != nil {
		return fmt.Errorf("group: snapshot at %d: members: %w", snap.GetMetadata().GetIndex(), err)
	}
	tr, err := tracker.Restore(r.cfg.Tracker, data[k+int(n):])
	if err != nil {
		return fmt.Errorf("group: snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
	}
	r.peers = peers
	r.tr = tr
	r.applied = snap.GetMetadata().GetIndex()
	r.snapIndex = r.applied
	r.conf = proto.Clone(snap.GetMetadata().GetConfState()).(*raftpb.ConfState)
	r.clock = time.Time{}
	if clock != 0 {
		r.clock = time.Unix(0, clock).UTC()
	}
	return nil
}

// Tracker returns the replica's tracker, to read (Head, Finals, Peers,
// ...): its inputs come only from the group.
func (r *Replica) Tracker() *tracker.Tracker { return r.tr }

// Tick advances raft's clock by one tick.
func (r *Replica) Tick() { r.rn.Tick() }

// Step gives raft a message from another member.
func (r *Replica) Step(m *raftpb.Message) error {
	if raft.IsLocalMsg(m.GetType()) {
		return fmt.Errorf("group: local raft message %s from the network", m.GetType())
	}
	return r.rn.Step(m)
}

// Lead returns the raft ID of the leader this replica follows (0: none
// known), as raft knows it now.
func (r *Replica) Lead() uint64 { return r.rn.BasicStatus().Lead }

// Applied returns the index of the last entry applied to the tracker.
func (r *Replica) Applied() uint64 { return r.applied }

// Campaign starts an election (with a pre-vote first), for a driver
// with ManualElections.
func (r *Replica) Campaign() error { return r.rn.Campaign() }

// ReportUnreachable tells raft that a message to id could not be sent.
func (r *Replica) ReportUnreachable(id uint64) { r.rn.ReportUnreachable(id) }

// ReportSnapshot tells raft whether a snapshot sent to id arrived.
func (r *Replica) ReportSnapshot(id uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	r.rn.ReportSnapshot(id, st)
}

// Leader reports whether this replica leads the group, and its term.
func (r *Replica) Leader() (bool, uint64) { return r.leader, r.rn.BasicStatus().GetTerm() }

// Status is what a replica knows of the group.
type Status struct {
	ID, Lead        uint64
	Term            uint64
	Commit, Applied uint64
	Voters          []uint64
	// Match is, at the leader, how far each member's log matches its own.
	Match    map[uint64]uint64
	Snapshot uint64 // the index of the last snapshot
	LogLen   uint64 // entries held in the log
	Refused  uint64 // inputs the tracker refused when applied
}

// Status returns the replica's view of the group.
func (r *Replica) Status() Status {
	st := r.rn.Status()
	s := Status{ID: r.cfg.ID, Lead: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(), Applied: r.applied,
		Voters: append([]uint64(nil), r.conf.GetVoters()...), Snapshot: r.snapIndex, LogLen: r.log.Len(), Refused: r.refused}
	if len(st.Progress) > 0 {
		s.Match = map[uint64]uint64{}
		for id, pr := range st.Progress {
			s.Match[id] = pr.Match
		}
	}
	return s
}

func (r *Replica) propose(in *Input) error {
	if !r.leader {
		return ErrNotLeader
	}
	b, err := MarshalInput(in)
	if err != nil {
		return err
	}
	return r.rn.Propose(b)
}

// Receive proposes a message from a peer, as the leader took it at now.
// A message the tracker would refuse at once (wire.Validate) is refused
// here, and costs the log nothing.
func (r *Replica) Receive(now time.Time, from string, m wire.Msg) error {
	if !r.leader {
		return ErrNotLeader
	}
	if res, err := wire.Validate(r.tr, from, m); res != wire.Accept {
		return err
	}
	return r.propose(&Input{Kind: KindReceive, At: now, From: from, Msg: m})
}

// Clock proposes a tick of the tracker at now (the leader's clock).
func (r *Replica) Clock(now time.Time) error {
	return r.propose(&Input{Kind: KindTick, At: now})
}

// Held proposes the outcome of a payload fetch.
func (r *Replica) Held(now time.Time, payload cid.Cid, ok bool) error {
	return r.propose(&Input{Kind: KindHeld, At: now, Payload: payload, OK: ok})
}

// AddMember proposes to add peer to the group (raft's configuration
// change) and returns the raft ID it will have: a new one, never used
// before in the group (a peer that was a member before joins again as
// a new member). The new member starts with that ID and an empty log,
// and catches up from the leader (from a snapshot if the log no longer
// reaches back to the start).
func (r *Replica) AddMember(peer string) (uint64, error) {
	if !r.leader {
		return 0, ErrNotLeader
	}
	if peer == "" {
		return 0, errors.New("group: add a member: no peer ID")
	}
	for id, p := range r.peers {
		if p == peer && slices.Contains(r.conf.GetVoters(), id) {
			return 0, fmt.Errorf("group: %s is a member already (raft ID %x)", peer, id)
		}
	}
	id := RaftID(fmt.Sprintf("%s/%d", peer, r.rn.Status().GetCommit()+1))
	if _, used := r.peers[id]; used || id == r.cfg.ID {
		return 0, fmt.Errorf("group: raft ID %x for %s is taken: try again", id, peer)
	}
	err := r.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id), Context: []byte(peer)})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// RemoveMember proposes to remove the member with raft ID id.
func (r *Replica) RemoveMember(id uint64) error {
	if !r.leader {
		return ErrNotLeader
	}
	if !slices.Contains(r.conf.GetVoters(), id) {
		return fmt.Errorf("group: %x is not a member", id)
	}
	return r.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(id)})
}

// Members returns the group's members: raft ID → peer ID (the voters
// of the configuration applied, named when their names are known).
func (r *Replica) Members() map[uint64]string {
	out := map[uint64]string{}
	for _, id := range r.conf.GetVoters() {
		out[id] = r.peers[id]
	}
	return out
}

// HasReady reports whether Ready has anything.
func (r *Replica) HasReady() bool { return r.rn.HasReady() }

// Ready runs one round of raft's Ready loop: it makes raft's log
// durable (LogStore.Save), applies a snapshot and the committed entries
// to the tracker, takes a snapshot when SnapshotEntries have been
// applied since the last, and returns the messages to send and what
// the leader publishes and fetches. An error is a failure to persist:
// the driver stops (nothing after it is durable).
func (r *Replica) Ready() (Ready, error) {
	var out Ready
	for r.rn.HasReady() {
		rd := r.rn.Ready()
		if rd.SoftState != nil {
			r.lead = rd.SoftState.Lead
			r.leader = rd.SoftState.RaftState == raft.StateLeader
		}
		if err := r.log.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, rd.Messages...)
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) && rd.Snapshot.GetMetadata().GetIndex() > r.applied {
			if err := r.restore(rd.Snapshot); err != nil {
				return out, err
			}
			out.State = r.tr.State()
		}
		for _, e := range rd.CommittedEntries {
			if err := r.apply(e, &out); err != nil {
				return out, err
			}
		}
		r.rn.Advance(rd)
		if err := r.maybeSnapshot(); err != nil {
			return out, err
		}
	}
	// A new leader announces itself: once, in its term.
	if r.leader {
		if term := r.rn.BasicStatus().GetTerm(); r.announced != term {
			r.announced = term
			if err := r.propose(&Input{Kind: KindLead, At: r.clockNow(), Term: term, Options: r.cfg.Options}); err != nil {
				if errors.Is(err, raft.ErrProposalDropped) || errors.Is(err, ErrNotLeader) {
					r.announced = 0 // at the next Ready, if it still leads
					return out, nil
				}
				return out, err
			}
			more, err := r.Ready()
			out.Messages = append(out.Messages, more.Messages...)
			out.Publish = append(out.Publish, more.Publish...)
			out.Fetch = append(out.Fetch, more.Fetch...)
			out.Events = append(out.Events, more.Events...)
			out.Index = append(out.Index, more.Index...)
			if more.State != nil {
				out.State = more.State
			}
			return out, err
		}
	}
	return out, nil
}

// clockNow is the time a Lead entry carries: the last applied input's
// (the tracker's clock does not go back when it is applied).
func (r *Replica) clockNow() time.Time {
	if r.clock.IsZero() {
		return time.Unix(0, 0)
	}
	return r.clock
}

func (r *Replica) apply(e *raftpb.Entry, out *Ready) error {
	if e.GetIndex() <= r.applied {
		return nil
	}
	r.applied = e.GetIndex()
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("group: entry %d: %w", e.GetIndex(), err)
		}
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode:
			if len(cc.GetContext()) > 0 {
				r.peers[cc.GetNodeId()] = string(cc.GetContext())
			}
		case raftpb.ConfChangeRemoveNode:
			delete(r.peers, cc.GetNodeId())
		}
		r.conf = r.rn.ApplyConfChange(&cc)
		return nil
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("group: entry %d: %w", e.GetIndex(), err)
		}
		r.conf = r.rn.ApplyConfChange(&cc)
		return nil
	}
	if len(e.GetData()) == 0 {
		return nil // a new leader's empty entry
	}
	in, err := UnmarshalInput(e.GetData())
	if err != nil {
		// Every replica skips it alike: the log is the same everywhere.
		r.refused++
		return nil
	}
	// The tracker's clock does not go back when the leader changes.
	at := in.At
	if at.Before(r.clock) {
		at = r.clock
	}
	r.clock = at
	switch in.Kind {
	case KindReceive:
		if err := r.tr.Receive(at, in.From, in.Msg); err != nil {
			r.refused++
		}
	case KindTick:
		if err := r.tr.Tick(at); err != nil {
			return fmt.Errorf("group: entry %d: %w", e.GetIndex(), err)
		}
	case KindHeld:
		r.tr.Held(at, in.Payload, in.OK)
	case KindLead:
		if len(in.Options) > 0 && len(r.cfg.Options) > 0 && !bytes.Equal(in.Options, r.cfg.Options) {
			return fmt.Errorf("%w (term %d, entry %d)", ErrOptions, in.Term, e.GetIndex())
		}
		r.tr.Republish()
	}
	rd := r.tr.Ready()
	out.Events = append(out.Events, rd.Events...)
	for range rd.Events {
		out.Index = append(out.Index, e.GetIndex())
	}
	if rd.State != nil {
		out.State = rd.State
	}
	if !r.leader {
		return nil
	}
	term := r.rn.BasicStatus().GetTerm()
	for _, m := range rd.Publish {
		out.Publish = append(out.Publish, stamp(m, term))
	}
	out.Fetch = append(out.Fetch, rd.Fetch...)
	if in.Kind == KindLead && in.Term == term {
		out.Fetch = append(out.Fetch, r.tr.Pending()...)
	}
	return nil
}

// stamp returns m with the leader's term, if it is an Open or a Close (a
// copy: the tracker's own stays as it decided it).
func stamp(m wire.Msg, term uint64) wire.Msg {
	switch m := m.(type) {
	case *wire.Open:
		c := *m
		c.Term = term
		return &c
	case *wire.Close:
		c := *m
		c.Term = term
		return &c
	}
	return m
}

func (r *Replica) maybeSnapshot() error {
	if r.applied < r.snapIndex+r.cfg.SnapshotEntries {
		return nil
	}
	// A snapshot is the clock of the last input applied (8 bytes, unix
	// nanoseconds, big endian; 0 for none), the members' names (a
	// uvarint length and JSON), and the tracker's snapshot.
	trs, err := r.tr.Snapshot()
	if err != nil {
		return fmt.Errorf("group: %w", err)
	}
	names, err := json.Marshal(r.peers)
	if err != nil {
		return fmt.Errorf("group: %w", err)
	}
	var clock int64
	if !r.clock.IsZero() {
		clock = r.clock.UnixNano()
	}
	data := binary.BigEndian.AppendUint64(make([]byte, 0, 8+binary.MaxVarintLen64+len(names)+len(trs)), uint64(clock))
	data = binary.AppendUvarint(data, uint64(len(names)))
	data = append(data, names...)
	data = append(data, trs...)
	if err := r.log.Compact(r.applied, r.conf, data, r.cfg.KeepEntries); err != nil {
		return err
	}
	r.snapIndex = r.applied
	return nil
}
