package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
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
	"github.com/shoal-network/shoal/tracker/wire"
)

// groupMember is a replica of a tracker group driven over the libp2p
// transport by its own loop, as the daemon drives it.
type groupMember struct {
	h    host.Host
	rep  *group.Replica
	net  *raftNet
	do   chan func(*group.Replica)
	done chan struct{}
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
// raft transport on a mocknet: they elect a leader, the inputs the
// leader proposes are applied alike everywhere; a peer outside the
// group cannot speak raft to a member, nor can a member speak as
// another.
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
	members := hosts[:3]
	ids := map[uint64]peer.ID{}
	var voters []uint64
	for _, h := range members {
		ids[group.RaftID(h.ID().String())] = h.ID()
		spec.Trackers = append(spec.Trackers, h.ID().String())
		voters = append(voters, group.RaftID(h.ID().String()))
	}
	log := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	var ms []*groupMember
	for i, h := range members {
		lg, err := group.OpenLogStore(filepath.Join(t.TempDir(), "raft.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer lg.Close()
		rep, err := group.New(group.Config{ID: voters[i], Log: lg, Voters: voters, ElectionTicks: 10, HeartbeatTicks: 1,
			Tracker: tracker.Config{Spec: spec, Genesis: content.Sum([]byte("genesis"))}})
		if err != nil {
			t.Fatal(err)
		}
		m := &groupMember{h: h, rep: rep, net: newRaftNet(ctx, h, spec.ID().String(), ids, log), do: make(chan func(*group.Replica)), done: make(chan struct{})}
		defer m.net.Close()
		ms = append(ms, m)
		wg.Add(1)
		go func() { defer wg.Done(); m.run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()

	leader := func() *groupMember {
		for _, m := range ms {
			var lead bool
			m.call(func(r *group.Replica) { lead, _ = r.Leader() })
			if lead {
				return m
			}
		}
		return nil
	}
	var l *groupMember
	if err := WaitFor(ctx, 20*time.Millisecond, func() bool { l = leader(); return l != nil }); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	// The leader takes hellos from four workers and ticks; the group
	// opens a step at every replica.
	now := time.Now()
	for i := range 4 {
		w := fmt.Sprintf("w%d", i)
		l.call(func(r *group.Replica) {
			hello := &wire.Hello{Round: spec.ID(), Role: wire.RoleWorker, Head: content.Sum([]byte("genesis")), Time: uint64(now.Unix())}
			if err := r.Receive(now, w, hello); err != nil {
				t.Errorf("hello: %v", err)
			}
		})
	}
	l.call(func(r *group.Replica) {
		if err := r.Clock(now.Add(time.Second)); err != nil {
			t.Errorf("clock: %v", err)
		}
	})
	err := WaitFor(ctx, 20*time.Millisecond, func() bool {
		var snaps [][]byte
		for _, m := range ms {
			m.call(func(r *group.Replica) {
				_, phase := r.Tracker().Step()
				if phase != tracker.PhaseOpen {
					return
				}
				s, err := r.Tracker().Snapshot()
				if err == nil {
					snaps = append(snaps, s)
				}
			})
		}
		return len(snaps) == 3 && bytes.Equal(snaps[0], snaps[1]) && bytes.Equal(snaps[1], snaps[2])
	})
	if err != nil {
		t.Fatalf("the replicas did not all open the same step: %v", err)
	}

	// An outsider's stream is refused at once, and a member cannot
	// speak as another: in both cases nothing reaches raft.
	victim := ms[0]
	if victim == l {
		victim = ms[1]
	}
	var other *groupMember
	for _, m := range ms {
		if m != victim && m != l {
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
