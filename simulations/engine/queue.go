package engine

// event is something that happens to one machine at a virtual time.
type event struct {
	at    int64  // virtual nanoseconds since the cluster started
	seq   uint64 // order among events at the same time: order of scheduling
	to    string
	host  *host // the node it is for, if it is for one (saves a lookup)
	epoch int
	do    func()
}

// eventQueue is a 4-ary min-heap of events ordered by (at, seq). It is a
// typed heap rather than container/heap: no interface calls, and half the
// depth of a binary heap. It holds the events themselves, not pointers to
// them: an event costs no allocation of its own, and ordering the heap
// reads only the heap's array, not events scattered over the memory.
type eventQueue struct{ items []event }

func (q *eventQueue) Len() int { return len(q.items) }

func before(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	q.items = append(q.items, e)
	items := q.items
	i := len(items) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !before(&e, &items[p]) {
			break
		}
		items[i] = items[p]
		i = p
	}
	items[i] = e
}

// peek returns the first event without removing it; the pointer is valid
// until the next push or pop.
func (q *eventQueue) peek() *event { return &q.items[0] }

func (q *eventQueue) pop() event {
	items := q.items
	top := items[0]
	last := items[len(items)-1]
	items[len(items)-1] = event{}
	items = items[:len(items)-1]
	q.items = items
	if len(items) == 0 {
		return top
	}
	i, n := 0, len(items)
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if before(&items[k], &items[m]) {
				m = k
			}
		}
		if !before(&items[m], &last) {
			break
		}
		items[i] = items[m]
		i = m
	}
	items[i] = last
	return top
}
