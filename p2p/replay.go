package p2p

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// replayGuard remembers the IDs of accepted messages for a window, so a
// message replayed after gossipsub's shorter duplicate filter has forgotten
// it is still recognised. It holds at most size IDs, forgetting the oldest
// first.
type replayGuard struct {
	window time.Duration
	size   int

	mu    sync.Mutex
	when  map[string]time.Time
	order []replayEntry // insertion order, a ring starting at head
	head  int
}

type replayEntry struct {
	id string
	at time.Time
}

func newReplayGuard(window time.Duration, size int) *replayGuard {
	return &replayGuard{window: window, size: size, when: make(map[string]time.Time)}
}

// seen reports whether id was accepted within the window before now.
func (g *replayGuard) seen(id string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.when[id]
	return ok && now.Sub(at) < g.window
}

// add records id as accepted at now.
func (g *replayGuard) add(id string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Forget what has expired, and the oldest entries beyond the size.
	for len(g.order)-g.head > 0 {
		e := g.order[g.head]
		if now.Sub(e.at) < g.window && len(g.order)-g.head < g.size {
			break
		}
		if at, ok := g.when[e.id]; ok && at.Equal(e.at) {
			delete(g.when, e.id)
		}
		g.order[g.head] = replayEntry{}
		g.head++
	}
	if g.head > len(g.order)/2 && g.head > 64 {
		g.order = append(g.order[:0], g.order[g.head:]...)
		g.head = 0
	}
	if _, ok := g.when[id]; ok {
		return
	}
	g.when[id] = now
	g.order = append(g.order, replayEntry{id: id, at: now})
}

// len returns the number of IDs held.
func (g *replayGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.when)
}

// pairSet remembers (message ID, peer) pairs, at most size of them,
// forgetting the oldest first. Pairs are kept as 64-bit hashes: a rare
// collision makes a duplicate look like a replay in the log, nothing more.
type pairSet struct {
	seed maphash.Seed

	mu   sync.Mutex
	set  map[uint64]struct{}
	ring []uint64
	next int
}

func newPairSet(size int) *pairSet {
	return &pairSet{seed: maphash.MakeSeed(), set: make(map[uint64]struct{}, size), ring: make([]uint64, 0, size)}
}

// add records the pair and reports whether it was new.
func (s *pairSet) add(id string, p peer.ID) bool {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(id)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(id)))
	h.Write(n[:])
	h.WriteString(string(p))
	k := h.Sum64()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[k]; ok {
		return false
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, k)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % len(s.ring)
	}
	s.set[k] = struct{}{}
	return true
}
