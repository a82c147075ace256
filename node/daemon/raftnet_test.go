package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/group"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// groupMember is a replica of a tracker group driven over the libp2p
// transport by its own loop, as the daemon drives it.
type groupMember struct {
	h      host.Host
	id     uint64
	path   string // its raft log
	rep    *group.Replica
	log    *group.LogStore
	net    *raftNet
	do     chan func(*group.Replica)
	done   chan struct{}
	cancel context.CancelFunc
}

// start opens the member's log and runs it (voters: the group's first
// members, for a new log).
func (m *groupMember) start(t *testing.T, ctx context.Context, spec *round.Spec, voters []uint64, ids map[uint64]peer.ID) {
	t.Helper()
	lg, err := group.OpenLogStore(m.path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := group.New(group.Config{ID: m.id, Log: lg, Voters: voters, ElectionTicks: 10, HeartbeatTicks: 1, SnapshotEntries: 32,
		Tracker: tracker.Config{Spec: spec, Genesis: content.Sum([]byte("genesis"))}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.rep, m.log = rep, lg
	m.net = newRaftNet(ctx, m.h, spec.ID().String(), ids, slog.New(slog.DiscardHandler))
	m.do, m.done = make(chan func(*group.Replica)), make(chan struct{})
	go m.run(ctx)
}

// stop stops the member as a crash would (its log is as it was).
func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	m.net.Close()
	m.log.Close()
}

func (m *groupMember) run(ctx context.Context) {
	defer close(m.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-m.net.in:
			m.rep.Step(msg)
		case r := <-m.net.reports:
			if r.snapshot {
				m.rep.ReportSnapshot(r.to, r.ok)
			}
			if !r.ok {
				m.rep.ReportUnreachable(r.to)
			}
		case <-tick.C:
			m.rep.Tick()
		case f := <-m.do:
			f(m.rep)
		}
		rd, err := m.rep.Ready()
		if err != nil {
			panic(err)
		}
		m.net.send(rd.Messages)
	}
}

// call runs f on the member's loop and waits for it (not at all once
// the loop has stopped).
func (m *groupMember) call(f func(*group.Replica)) {
	done := make(chan struct{})
	select {
	case m.do <- func(r *group.Replica) { f(r); close(done) }:
		<-done
	case <-m.done:
	}
}

// TestRaftOverLibp2p runs a tracker group of three replicas over the
// raft transport on a mocknet: they elect a leader and apply the inputs
// it proposes alike; when the leader stops, another is elected and the
// group goes on; the stopped member, started again from its log,
// catches up. A peer outside the group cannot speak raft to a member,
// nor can a member speak as another.
func TestRaftOverLibp2p(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var hosts []host.Host
	for range 4 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	spec := smallSpec()
	ids := map[uint64]peer.ID{}
	var voters []uint64
	for _, h := range hosts[:3] {
		ids[group.RaftID(h.ID().String())] = h.ID()
		spec.Trackers = append(spec.Trackers, h.ID().String())
		voters = append(voters, group.RaftID(h.ID().String()))
	}
	dir := t.TempDir()
	var ms []*groupMember
	for i, h := range hosts[:3] {
		m := &groupMember{h: h, id: voters[i], path: filepath.Join(dir, fmt.Sprintf("raft-%d.db", i))}
		m.start(t, ctx, spec, voters, ids)
		ms = append(ms, m)
	}
	live := map[*groupMember]bool{ms[0]: true, ms[1]: true, ms[2]: true}
	defer func() {
		for m := range live {
			m.stop()
		}
	}()

	leader := func() *groupMember {
		for _, m := range ms {
			if !live[m] {
				continue
			}
			var lead bool
			m.call(func(r *group.Replica) { lead, _ = r.Leader() })
			if lead {
				return m
			}
		}
		return nil
	}
	// agree reports whether every live member applied as far as the
	// leader committed and holds the same tracker, with at least at
	// entries applied.
	agree := func(at uint64) bool {
		var snaps [][]byte
		var applied []uint64
		for _, m := range ms {
			if !live[m] {
				continue
			}
			m.call(func(r *group.Replica) {
				s, err := r.Tracker().Snapshot()
				if err == nil {
					snaps, applied = append(snaps, s), append(applied, r.Status().Applied)
				}
			})
		}
		for i := range snaps {
			if applied[i] < at || applied[i] != applied[0] || !bytes.Equal(snaps[i], snaps[0]) {
				return false
			}
		}
		return len(snaps) == len(live)
	}
	// feed has the leader take hellos from four workers and a tick, and
	// returns the leader's last index.
	now := time.Now()
	feed := func(l *groupMember) uint64 {
		now = now.Add(time.Second)
		var last uint64
		l.call(func(r *group.Replica) {
			for i := range 4 {
				hello := &wire.Hello{Round: spec.ID(), Role: wire.RoleWorker, Head: content.Sum([]byte("genesis")), Time: uint64(now.Unix())}
				if err := r.Receive(now, fmt.Sprintf("w%d", i), hello); err != nil {
					t.Errorf("hello: %v", err)
				}
			}
			if err := r.Clock(now); err != nil {
				t.Errorf("clock: %v", err)
			}
			last = r.Status().Commit + 5
		})
		return last
	}
	var l *groupMember
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { l = leader(); return l != nil }); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	at := feed(l)
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { return agree(at) }); err != nil {
		t.Fatalf("the replicas did not apply the same inputs: %v", err)
	}
	var phase tracker.Phase
	l.call(func(r *group.Replica) { _, phase = r.Tracker().Step() })
	if phase != tracker.PhaseOpen {
		t.Fatalf("the group did not open a step with four workers (%s)", phase)
	}

	// The leader stops; another takes over and the group goes on.
	old := l
	var stoppedAt uint64
	old.call(func(r *group.Replica) { stoppedAt = r.Status().Applied })
	old.stop()
	delete(live, old)
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { l = leader(); return l != nil }); err != nil {
		t.Fatalf("no new leader: %v", err)
	}
	for range 20 {
		at = feed(l)
	}
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { return agree(at) }); err != nil {
		t.Fatalf("the two left did not go on alike: %v", err)
	}
	// The stopped member starts again from its log and catches up (from
	// a snapshot: the leader's log no longer reaches back to where it
	// stopped).
	old.start(t, ctx, spec, nil, ids)
	live[old] = true
	at = feed(l)
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { return agree(at) }); err != nil {
		t.Fatalf("the restarted member did not catch up: %v", err)
	}
	var st group.Status
	old.call(func(r *group.Replica) { st = r.Status() })
	var first uint64
	l.call(func(r *group.Replica) { first = r.Status().Snapshot })
	t.Logf("the restarted member had %d entries, the leader's snapshot is at %d; it caught up to %d (its snapshot at %d)",
		stoppedAt, first, st.Applied, st.Snapshot)
	if st.Snapshot <= stoppedAt {
		t.Errorf("the restarted member's snapshot is at %d, not past where it stopped (%d)", st.Snapshot, stoppedAt)
	}

	// An outsider's stream is refused at once, and a member cannot
	// speak as another: in both cases nothing reaches raft.
	var victim, other *groupMember
	for _, m := range ms {
		switch {
		case m == l:
		case victim == nil:
			victim = m
		default:
			other = m
		}
	}
	spoof := func(from host.Host, as uint64) error {
		s, err := from.NewStream(ctx, victim.h.ID(), raftProtocol(spec.ID().String()))
		if err != nil {
			return err
		}
		defer s.Close()
		m := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(as), To: new(group.RaftID(victim.h.ID().String())), Term: new(uint64(1 << 40))}
		b, _ := proto.Marshal(m)
		_, err = s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
		return err
	}
	if err := spoof(hosts[3], group.RaftID(hosts[3].ID().String())); err != nil {
		t.Logf("outsider: %v", err)
	}
	if err := spoof(other.h, group.RaftID(l.h.ID().String())); err != nil {
		t.Logf("member as another: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	var term uint64
	victim.call(func(r *group.Replica) { term = r.Status().Term })
	if term >= 1<<40 {
		t.Fatalf("a spoofed message of term %d reached raft", term)
	}
}
