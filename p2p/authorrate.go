package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// authorLimit is a token bucket per message author: each author's bucket
// holds up to burst tokens and gains rate tokens a second; a message
// takes one. It bounds what one author (one key, however many
// connections relay it) can make every host of a topic validate, store
// and relay. The buckets of authors idle long enough to be full again
// are forgotten when the table reaches max entries, so a swarm of keys
// costs a bounded table; if every entry is busy, a new author waits. The
// table is swept at most once per refill time (burst/rate), so that a
// flood of fresh keys against a full table costs a lookup each, not a
// sweep each.
type authorLimit struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	max   int
	b     map[peer.ID]*bucket
	swept time.Time // the last sweep
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newAuthorLimit(rate float64, burst, max int) *authorLimit {
	return &authorLimit{rate: rate, burst: float64(burst), max: max, b: map[peer.ID]*bucket{}}
}

// allow takes a token from author's bucket at now, if it has one.
func (l *authorLimit) allow(author peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.b[author]
	if bk == nil {
		if len(l.b) >= l.max {
			if now.Sub(l.swept) < l.refill() {
				return false
			}
			l.sweep(now)
			if len(l.b) >= l.max {
				return false
			}
		}
		bk = &bucket{tokens: l.burst, at: now}
		l.b[author] = bk
	}
	if dt := now.Sub(bk.at).Seconds(); dt > 0 {
		bk.tokens = min(l.burst, bk.tokens+dt*l.rate)
		bk.at = now
	}
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

// sweep forgets the authors whose buckets are full again at now: to
// them a fresh bucket is the same.
func (l *authorLimit) sweep(now time.Time) {
	l.swept = now
	full := l.refill()
	for a, bk := range l.b {
		if now.Sub(bk.at) >= full {
			delete(l.b, a)
		}
	}
}

// refill is how long an empty bucket takes to fill.
func (l *authorLimit) refill() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}
