package engine

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkEventQueue measures the event queue alone: 100,000 pops and
// pushes per operation (so that `make bench-protocol`'s -benchtime 3x
// measures something), on a queue of 100,000 events.
func BenchmarkEventQueue(b *testing.B) {
	const perOp = 100_000
	var q eventQueue
	for i := range 100_000 {
		q.push(event{at: int64(i * 7919 % 100_000), seq: uint64(i)})
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

// TestEventQueueOrder checks that events leave the queue by (at, seq),
// with pushes between pops, against a sorted reference.
func TestEventQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q eventQueue
	var ref []event
	seq := uint64(0)
	push := func() {
		seq++
		e := event{at: r.Int64N(50), seq: seq, epoch: int(seq)}
		q.push(e)
		ref = append(ref, e)
	}
	for range 1000 {
		push()
	}
	for q.Len() > 0 {
		slices.SortFunc(ref, func(a, b event) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
		if at := q.peekAt(); at != ref[0].at {
			t.Fatalf("first event at %d, want %d", at, ref[0].at)
		}
		got := q.pop()
		if got.seq != ref[0].seq || got.at != ref[0].at || got.epoch != ref[0].epoch {
			t.Fatalf("pop gives event %d at %d, want %d at %d", got.seq, got.at, ref[0].seq, ref[0].at)
		}
		ref = ref[1:]
		if seq < 3000 && r.IntN(2) == 0 {
			push()
			push()
		}
	}
	if len(ref) != 0 {
		t.Fatalf("queue empty with %d events left", len(ref))
	}
}
