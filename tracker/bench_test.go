package tracker

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// receiveBench drives a tracker of n members (half workers, half
// observers) through steps as a round's traffic would: every other
// message is a Hello from a member drawn at random (so a member is
// heard from once per heartbeat on average, and now and then one falls
// silent for a while and comes back), and the others are the step's
// updates, then every member's commit. The clock moves a heartbeat per
// n Hellos, and the tracker ticks every 250 ms of it. The benchmark
// starts after four heartbeats of such traffic.
type receiveBench struct {
	tr       *Tracker
	spec     *round.Spec
	ids      []string
	rng      *rand.Rand
	now      time.Time
	dt       time.Duration
	lastTick time.Time
	queue    []benchMsg
	took     map[wire.Kind]time.Duration
	count    map[wire.Kind]int
}

type benchMsg struct {
	from string
	m    wire.Msg
}

func newReceiveBench(tb testing.TB, n int) *receiveBench {
	spec := testSpec(64, 0.25)
	tr, err := New(Config{Spec: spec, Genesis: genesis}, nil, t0)
	if err != nil {
		tb.Fatal(err)
	}
	tr.Ready()
	r := &receiveBench{tr: tr, spec: spec, rng: rand.New(rand.NewPCG(1, uint64(n))), now: t0,
		dt: round.HeartbeatInterval(spec) / time.Duration(n), lastTick: t0,
		took: map[wire.Kind]time.Duration{}, count: map[wire.Kind]int{}}
	for i := range n {
		id := fmt.Sprintf("m%06d", i)
		r.ids = append(r.ids, id)
		if err := tr.Receive(t0, id, r.hello(id)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tr.Tick(t0); err != nil {
		tb.Fatal(err)
	}
	tr.Ready()
	if _, p := tr.Step(); p != PhaseOpen {
		tb.Fatalf("no step open with %d members", n)
	}
	return r
}

func (r *receiveBench) role(id string) wire.Role {
	if id[len(id)-1]%2 == 0 {
		return wire.RoleWorker
	}
	return wire.RoleObserver
}

func (r *receiveBench) hello(id string) *wire.Hello {
	step, head := r.tr.Head()
	return &wire.Hello{Round: r.tr.Round(), Role: r.role(id), Step: step, Head: head, Time: unixTime(r.now)}
}

// refill queues the messages of the current step's phase: its updates,
// in a random order, when it is open; every member's commit, in a
// random order, when it is closed.
func (r *receiveBench) refill() {
	st := r.tr.st
	switch st.Phase {
	case PhaseOpen:
		keys := slices.SortedFunc(maps.Keys(r.tr.assigned), cmpUnitCopy)
		r.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys {
			data := fmt.Appendf(nil, "%d/%d/%d/%d", st.Step, st.Attempt, k.unit, k.replica)
			p := r.tr.assigned[k]
			r.queue = append(r.queue, benchMsg{p, &wire.Update{Round: r.tr.Round(), Step: st.Step, Attempt: st.Attempt, Base: st.Base,
				Unit: k.unit, Replica: k.replica, Samples: uint32(r.spec.UnitSamples()), Loss: 2.5,
				Raw: cidOf(fmt.Sprintf("raw/%d/%d", st.Step, k.unit)), Residual: cidOf("residual/" + p),
				Payload: content.Sum(data), Size: uint64(len(data))}})
		}
	case PhaseClosed:
		result := cidOf(fmt.Sprintf("C%d", st.Step+1))
		for _, i := range r.rng.Perm(len(r.ids)) {
			r.queue = append(r.queue, benchMsg{r.ids[i], &wire.Commit{Round: r.tr.Round(), Step: st.Step, Attempt: st.Attempt, Base: st.Base, Result: result}})
		}
	}
}

// receive hands one message to the tracker and times it.
func (r *receiveBench) receive(from string, m wire.Msg) {
	start := time.Now()
	r.tr.Receive(r.now, from, m) // refusals (late updates) are part of the traffic
	r.took[m.Kind()] += time.Since(start)
	r.count[m.Kind()]++
	readyHeld(r.tr, r.now)
}

// next sends a member's Hello and the next message of the step.
func (r *receiveBench) next(tb testing.TB) {
	id := r.ids[r.rng.IntN(len(r.ids))]
	r.receive(id, r.hello(id))
	r.now = r.now.Add(r.dt)
	if r.now.Sub(r.lastTick) >= 250*time.Millisecond {
		r.lastTick = r.now
		if err := r.tr.Tick(r.now); err != nil {
			tb.Fatal(err)
		}
		readyHeld(r.tr, r.now)
	}
	if len(r.queue) == 0 {
		r.refill()
		if len(r.queue) == 0 {
			return
		}
	}
	m := r.queue[0]
	r.queue = r.queue[1:]
	r.receive(m.from, m.m)
}

// BenchmarkReceive measures the tracker's time per message received,
// for Hellos, updates and commits, at 100, 10,000 and 100,000 members
// (time of the state machine's Receive alone, not of ticks).
func BenchmarkReceive(b *testing.B) {
	for _, n := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := newReceiveBench(b, n)
			// Four heartbeats of traffic first, so that members have
			// fallen silent and come back as they do in a running round.
			for range 4 * n {
				r.next(b)
			}
			clear(r.took)
			clear(r.count)
			b.ResetTimer()
			for range b.N {
				r.next(b)
			}
			var total time.Duration
			var msgs int
			for k, d := range r.took {
				total += d
				msgs += r.count[k]
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(msgs), "ns/msg")
			for _, k := range []wire.Kind{wire.KindHello, wire.KindUpdate, wire.KindCommit} {
				if c := r.count[k]; c > 0 {
					b.ReportMetric(float64(r.took[k].Nanoseconds())/float64(c), "ns/"+k.String())
				}
			}
			steps, _ := r.tr.Step()
			b.ReportMetric(float64(steps), "steps")
		})
	}
}
