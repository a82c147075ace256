package group

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// traffic is a round's coordinator traffic at n members (half workers,
// half observers): every other message a Hello from a member drawn at
// random (each heard about once per heartbeat), the others the open
// step's updates, then every member's commit, as the coordinator's
// Opens and Closes ask. The clock moves a heartbeat per n Hellos.
type traffic struct {
	spec  *round.Spec
	ids   []string
	rng   *rand.Rand
	now   time.Time
	dt    time.Duration
	queue []benchMsg
	step  uint64
	open  *wire.Open
}

type benchMsg struct {
	from string
	m    wire.Msg
}

func newTraffic(spec *round.Spec, n int) *traffic {
	tr := &traffic{spec: spec, rng: rand.New(rand.NewPCG(1, uint64(n))), now: time.Unix(1_800_000_000, 0),
		dt: round.HeartbeatInterval(spec) / time.Duration(n)}
	for i := range n {
		tr.ids = append(tr.ids, fmt.Sprintf("m%06d", i))
	}
	return tr
}

func (t *traffic) hello(id string, step uint64) *wire.Hello {
	role := wire.RoleWorker
	if id[len(id)-1]%2 == 1 {
		role = wire.RoleObserver
	}
	return &wire.Hello{Round: t.spec.ID(), Role: role, Step: step, Head: cidOf("genesis"), Time: uint64(t.now.Unix())}
}

// saw takes in what the coordinator published.
func (t *traffic) saw(m wire.Msg) {
	switch m := m.(type) {
	case *wire.Open:
		if t.open != nil && t.open.Step == m.Step && t.open.Attempt == m.Attempt {
			return
		}
		t.open, t.queue = m, nil
		for _, a := range round.Assign(t.spec.Seed, wire.AssignStep(m.Step, m.Attempt), m.Members, int(m.Units), t.spec.VerificationRate) {
			data := fmt.Appendf(nil, "%d/%d/%d/%d", m.Step, m.Attempt, a.Unit, a.Replica)
			t.queue = append(t.queue, benchMsg{a.Peer, &wire.Update{Round: m.Round, Step: m.Step, Attempt: m.Attempt, Base: m.Base,
				Unit: uint32(a.Unit), Replica: uint8(a.Replica), Samples: uint32(t.spec.UnitSamples()), Loss: 2.5,
				Raw: cidOf(fmt.Sprintf("raw/%d/%d", m.Step, a.Unit)), Residual: cidOf("residual/" + a.Peer),
				Payload: content.Sum(data), Size: uint64(len(data))}})
		}
		t.rng.Shuffle(len(t.queue), func(i, j int) { t.queue[i], t.queue[j] = t.queue[j], t.queue[i] })
	case *wire.Close:
		t.queue = nil
		attempt := uint32(0)
		if t.open != nil && t.open.Step == m.Step {
			attempt = t.open.Attempt
		}
		for _, i := range t.rng.Perm(len(t.ids)) {
			t.queue = append(t.queue, benchMsg{t.ids[i], &wire.Commit{Round: m.Round, Step: m.Step, Attempt: attempt, Base: m.Base,
				Result: cidOf(fmt.Sprintf("C%d", m.Step+1))}})
		}
	case *wire.Final:
		t.step = m.Step + 1
	}
}

// next returns the next two messages and whether the clock passed a
// tick (every 250 ms).
func (t *traffic) next() ([]benchMsg, bool) {
	id := t.ids[t.rng.IntN(len(t.ids))]
	out := []benchMsg{{id, t.hello(id, t.step)}}
	before := t.now
	t.now = t.now.Add(t.dt)
	if len(t.queue) > 0 {
		out = append(out, t.queue[0])
		t.queue = t.queue[1:]
	}
	return out, t.now.Truncate(250*time.Millisecond) != before.Truncate(250*time.Millisecond)
}

func benchSpec() *round.Spec {
	s := testSpec()
	s.TargetSamples = 64
	s.VerificationRate = 0.25
	return s
}

// BenchmarkCoordinator measures coordinator messages per second at
// 1,000 members: through one tracker (its state machine alone, as the
// daemon drives it: messages held in memory, the state persisted only
// at decisions), and through a group of three replicas (in-process, on
// an in-memory network, each raft log a bbolt file synced at every
// Ready: the leader proposes every message, and a message counts once
// every replica has applied it). The group drains its proposals every
// 64 or 512 messages, so each raft round trip and fsync carries as many
// (the daemon's leader proposes all that arrived before each Ready).
func BenchmarkCoordinator(b *testing.B) {
	const n = 1000
	b.Run(fmt.Sprintf("single/members=%d", n), func(b *testing.B) {
		spec := benchSpec()
		tr, err := tracker.New(tracker.Config{Spec: spec, Genesis: cidOf("genesis")}, nil, time.Unix(0, 0))
		if err != nil {
			b.Fatal(err)
		}
		tf := newTraffic(spec, n)
		drain := func() {
			for {
				rd := tr.Ready()
				for _, m := range rd.Publish {
					tf.saw(m)
				}
				if len(rd.Fetch) == 0 {
					return
				}
				for _, f := range rd.Fetch {
					tr.Held(tf.now, f.Payload, true)
				}
			}
		}
		msgs := 0
		for b.Loop() {
			batch, tick := tf.next()
			for _, m := range batch {
				tr.Receive(tf.now, m.from, m.m)
				msgs++
			}
			if tick {
				if err := tr.Tick(tf.now); err != nil {
					b.Fatal(err)
				}
			}
			drain()
		}
		b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
		step, _ := tr.Step()
		b.ReportMetric(float64(step), "steps")
	})
	for _, batch := range []int{64, 512} {
		b.Run(fmt.Sprintf("group=3/members=%d/batch=%d", n, batch), func(b *testing.B) { benchGroup(b, n, batch) })
	}
}

// benchGroup is BenchmarkCoordinator's group: the leader proposes every
// message, and the group drains the proposals every batch messages.
func benchGroup(b *testing.B, n, batch int) {
	spec := benchSpec()
	tf := newTraffic(spec, n)
	voters := []uint64{1, 2, 3}
	reps := map[uint64]*Replica{}
	dir := b.TempDir()
	for _, id := range voters {
		lg, err := OpenLogStore(filepath.Join(dir, fmt.Sprintf("raft-%d.db", id)))
		if err != nil {
			b.Fatal(err)
		}
		defer lg.Close()
		r, err := New(Config{ID: id, Log: lg, Voters: voters, Tracker: tracker.Config{Spec: spec, Genesis: cidOf("genesis"),
			AuditSecret: bytes.Repeat([]byte{9}, 32)}, SnapshotEntries: 8192})
		if err != nil {
			b.Fatal(err)
		}
		reps[id] = r
	}
	inbox := map[uint64][]*raftpb.Message{}
	var leader *Replica
	// pump runs Ready everywhere and delivers raft's messages until
	// nothing moves.
	pump := func() {
		for moved := true; moved; {
			moved = false
			for _, id := range voters {
				r := reps[id]
				if !r.HasReady() && len(inbox[id]) == 0 {
					continue
				}
				moved = true
				for _, m := range inbox[id] {
					r.Step(m)
				}
				inbox[id] = nil
				rd, err := r.Ready()
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range rd.Messages {
					inbox[m.GetTo()] = append(inbox[m.GetTo()], m)
				}
				for _, m := range rd.Publish {
					tf.saw(m)
				}
				for _, f := range rd.Fetch {
					r.Held(tf.now, f.Payload, true)
				}
			}
		}
	}
	for leader == nil {
		for _, id := range voters {
			reps[id].Tick()
		}
		pump()
		for _, id := range voters {
			if ok, _ := reps[id].Leader(); ok {
				leader = reps[id]
			}
		}
	}
	msgs, pending := 0, 0
	for b.Loop() {
		in, tick := tf.next()
		for _, m := range in {
			if err := leader.Receive(tf.now, m.from, m.m); err == nil {
				pending++
			}
			msgs++
		}
		if tick {
			leader.Clock(tf.now)
		}
		if pending >= batch {
			pump()
			pending = 0
		}
	}
	pump()
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
	step, _ := leader.Tracker().Step()
	b.ReportMetric(float64(step), "steps")
	// Every replica applied the same log.
	a, _ := reps[1].Tracker().Snapshot()
	for _, id := range voters[1:] {
		if s, _ := reps[id].Tracker().Snapshot(); !bytes.Equal(a, s) {
			b.Fatalf("replica %d differs from replica 1 after the run", id)
		}
	}
}
