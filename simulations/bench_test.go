package simulations

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
)

// costCluster is a round of peers with cost-model engines: training takes
// 10 s of virtual time and no real time, so what a run costs is the
// protocol itself (state machines, wire encoding, event queue).
func costCluster(tb testing.TB, peers int, seed uint64) *Cluster {
	tb.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.05
	spec.Deadline = 2 * time.Minute
	st := node.NewMemStore()
	genesis, err := (&CostEngine{Store: st, Spec: spec}).Genesis()
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
		if err := c.AddNode(id, tracker.RoleWorker, func(st *node.MemStore) (node.Engine, error) {
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
// through the wire encoding.
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
