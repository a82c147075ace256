package engine

import (
	"fmt"

	"github.com/shoal-network/shoal/tracker/wire"
)

// event is something that happens to one machine at a virtual time: do,
// or, for the most frequent events, which then need no closure of their
// own, the delivery of a message or a node's lazy tick (see kind).
type event struct {
	at    int64  // virtual nanoseconds since the cluster started
	seq   uint64 // order among events at the same time: order of scheduling
	to    string
	host  *host // the node it is for, if it is for one (saves a lookup)
	epoch int
	kind  eventKind
	do    func()   // eventDo
	from  string   // eventToNode, eventSend: the sender
	msg   wire.Msg // eventToNode, eventSend: the message
	gen   int      // eventWake: the host's tickGen when it was scheduled
}

type eventKind uint8

const (
	eventDo     eventKind = iota // run do
	eventToNode                  // deliver msg to host (see sendTo)
	eventSend                    // deliver msg to the machine to (see send)
	eventWake                    // a lazy tick of host (see wakeAt)
)

// The queue's heap holds, per event, its time and its sequence number
// packed with the index of its slot in a slab of events: 16 bytes, so
// that the four children of a node of the heap share a cache line, and
// ordering the heap never reads the events themselves. Sequence numbers
// are unique, so ordering by the packed word orders by sequence.
const (
	slotBits = 24 // events pending at once: up to 16,777,216
	maxSeq   = 1<<(64-slotBits) - 1
)

type key struct {
	at  int64
	seq uint64 // seq<<slotBits | slot
}

// eventQueue is a 4-ary min-heap of events ordered by (at, seq). It is a
// typed heap rather than container/heap: no interface calls, and half the
// depth of a binary heap. Events live in a slab whose slots are reused,
// so scheduling one allocates nothing for it.
type eventQueue struct {
	keys   []key
	events []event
	free   []uint32
}

func (q *eventQueue) Len() int { return len(q.keys) }

func before(a, b key) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	if e.seq > maxSeq {
		panic(fmt.Sprintf("simulations: event sequence %d beyond %d", e.seq, uint64(maxSeq)))
	}
	var s uint32
	if n := len(q.free); n > 0 {
		s = q.free[n-1]
		q.free = q.free[:n-1]
		q.events[s] = e
	} else {
		if len(q.events) == 1<<slotBits {
			panic(fmt.Sprintf("simulations: more than %d events pending", 1<<slotBits))
		}
		s = uint32(len(q.events))
		q.events = append(q.events, e)
	}
	k := key{at: e.at, seq: e.seq<<slotBits | uint64(s)}
	q.keys = append(q.keys, k)
	keys := q.keys
	i := len(keys) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !before(k, keys[p]) {
			break
		}
		keys[i] = keys[p]
		i = p
	}
	keys[i] = k
}

// peekAt returns the time of the first event.
func (q *eventQueue) peekAt() int64 { return q.keys[0].at }

// pop removes the first event and returns it.
func (q *eventQueue) pop() event {
	keys := q.keys
	s := uint32(keys[0].seq & (1<<slotBits - 1))
	top := q.events[s]
	q.events[s] = event{}
	q.free = append(q.free, s)
	last := keys[len(keys)-1]
	keys = keys[:len(keys)-1]
	q.keys = keys
	if len(keys) == 0 {
		return top
	}
	i, n := 0, len(keys)
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if before(keys[k], keys[m]) {
				m = k
			}
		}
		if !before(keys[m], last) {
			break
		}
		keys[i] = keys[m]
		i = m
	}
	keys[i] = last
	return top
}
