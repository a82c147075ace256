package engine

import "testing"

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
