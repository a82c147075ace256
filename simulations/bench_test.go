package simulations

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// costCluster is a round of peers with cost-model engines: training takes
// 10 s of virtual time and no real time, so what a run costs is the
// protocol itself (state machines, wire encoding, event queue).
func costCluster(tb testing.TB, peers int, seed uint64) *Cluster {
	tb.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.05
	spec.Deadline = 2 * time.Minute
	genesis, err := (&CostEngine{Store: NewStore(NewPool()), Spec: spec}).Genesis()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewCluster(spec, seed, genesis, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.Tick = time.Second
	c.JobTime = func(_ string, j node.Job) time.Duration {
		switch j.(type) {
		case node.TrainJob:
			return 10 * time.Second
		case node.ApplyJob:
			return 100 * time.Millisecond
		}
		return time.Second
	}
	for i := range peers {
		id := fmt.Sprintf("peer-%05d", i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id}, nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// BenchmarkProtocolStep measures the protocol core's cost per outer step
// per peer, training excluded: one unit per peer per step, every update
// delivered to every peer (v1), commits, finals and heartbeats, all
// through the wire encoding, without a link model.
func BenchmarkProtocolStep(b *testing.B) {
	for _, peers := range []int{10, 1000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			c := costCluster(b, peers, 1)
			if err := c.RunUntil(func() bool { return finalised(c) >= 1 }, time.Hour); err != nil {
				b.Fatal(err)
			}
			d0, v0 := c.Delivered, c.Elapsed()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := c.RunUntil(func() bool { return finalised(c) >= 2+i }, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			steps := float64(b.N)
			b.ReportMetric(float64(wall.Nanoseconds())/steps/float64(peers)/1e3, "µs/step/peer")
			b.ReportMetric(float64(c.Delivered-d0)/steps, "msgs/step")
			b.ReportMetric((c.Elapsed()-v0).Seconds()/steps, "virtual-s/step")
		})
	}
}

// planetCluster is a large round as planet-10k runs it: planet links,
// updates in batches, lazy ticks, units of 10 minutes for a tenth of the
// peers a step, 256 KiB updates.
func planetCluster(tb testing.TB, peers int, seed uint64) *Cluster {
	tb.Helper()
	spec := testSpec(max(1, peers/10))
	spec.VerificationRate = 0.02
	spec.Deadline = 30 * time.Minute
	genesis, err := (&CostEngine{Store: NewStore(NewPool()), Spec: spec}).Genesis()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewCluster(spec, seed, genesis, volatileStorage{})
	if err != nil {
		tb.Fatal(err)
	}
	c.Net, c.Batch, c.LazyTicks = &Network{}, true, true
	c.Tick = 5 * time.Second
	c.UpdateBytes, c.ResidualBytes, c.CheckpointBytes = 256<<10, 100<<20, 200<<20
	c.JobTime = func(_ string, j node.Job) time.Duration {
		if _, ok := j.(node.TrainJob); ok {
			return 10 * time.Minute
		}
		return 20 * time.Second
	}
	shared := NewCostShared()
	r := c.Rand()
	for i := range peers {
		id := fmt.Sprintf("peer-%05d", i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id, Shared: shared}, nil
		}); err != nil {
			tb.Fatal(err)
		}
		l, class := LinkMixes["planet"].Draw(r)
		c.SetLink(id, l, class)
	}
	c.SetLink(c.TrackerID(), DatacenterLink.Draw(r), "datacenter")
	c.DelayTracker(10 * time.Second)
	return c
}

// BenchmarkSimulatedStep measures the engine on large rounds: the wall
// time per simulated outer step, the events per second and the share of
// the wall time spent in the tracker's state machine. peers=10000 takes
// several minutes: run it with -bench 'SimulatedStep/peers=10000'
// -benchtime 3x.
func BenchmarkSimulatedStep(b *testing.B) {
	for _, peers := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			c := planetCluster(b, peers, 1)
			if err := c.RunUntil(func() bool { return finalised(c) >= 1 }, 24*time.Hour); err != nil {
				b.Fatal(err)
			}
			e0, v0, t0 := c.Processed, c.Elapsed(), c.TrackerWall
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := c.RunUntil(func() bool { return finalised(c) >= 2+i }, 24*time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			steps := float64(b.N)
			events := float64(c.Processed - e0)
			b.ReportMetric(wall.Seconds()/steps, "wall-s/step")
			b.ReportMetric(events/wall.Seconds(), "events/s")
			b.ReportMetric(events/steps, "events/step")
			b.ReportMetric((c.Elapsed()-v0).Seconds()/steps, "virtual-s/step")
			b.ReportMetric(100*(c.TrackerWall-t0).Seconds()/wall.Seconds(), "%tracker")
		})
	}
}

// BenchmarkEventQueue measures the event queue alone: 100,000 pops and
// pushes per operation (so that `make bench-protocol`'s -benchtime 3x
// measures something), on a queue of 100,000 events.
func BenchmarkEventQueue(b *testing.B) {
	const perOp = 100_000
	var q eventQueue
	for i := range 100_000 {
		q.push(&event{at: int64(i * 7919 % 100_000), seq: uint64(i)})
	}
	seq := uint64(100_000)
	b.ResetTimer()
	for b.Loop() {
		for range perOp {
			e := q.pop()
			e.at += int64(seq % 1000)
			seq++
			e.seq = seq
			q.push(e)
		}
	}
	b.ReportMetric(float64(b.N)*perOp/b.Elapsed().Seconds(), "events/s")
}
