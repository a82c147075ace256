package tracker

import (
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// member is what the tracker knows of a peer that said Hello.
type member struct {
	id       string
	role     wire.Role
	lastSeen time.Time
	step     uint64
	head     cid.Cid
	// prev and next link the members in the order they were last heard
	// from (see liveness); live is whether the member was live at the
	// index's clock.
	prev, next *member
	live       bool
	since      time.Time // when its current stretch of liveness began
}

// liveness keeps the counts the tracker decides by (the live members in
// good standing, by role, and of those the ones that committed each
// result of the closed step) as messages arrive, so that no message
// costs a scan of the members. The members form a list in the order
// they were last heard from: a Hello moves its sender to the end, and
// as the clock moves, the members at the front that have been silent
// for longer than the liveness window stop counting, each once per
// silence. The counts hold at clock, the latest time the tracker was
// given; a question about an earlier time (a driver's clock that went
// back) is answered by a scan.
type liveness struct {
	first, last *member // the list, oldest first
	// firstLive is the first member of the list live at clock: every
	// member before it is silent, every one from it on is live.
	firstLive *member
	clock     time.Time
	workers   int
	observers int
	voters    map[string]int // result → live members in good standing that committed it
	// scanned counts the members visited by scans, for tests.
	scanned int
}

// advance brings the liveness counts to now, if now is later than the
// index's clock: the members silent for longer than the liveness window
// stop counting.
func (t *Tracker) advance(now time.Time) {
	lv := &t.lv
	if !now.After(lv.clock) {
		return
	}
	lv.clock = now
	window := round.Liveness(t.spec)
	for lv.firstLive != nil && now.Sub(lv.firstLive.lastSeen) > window {
		m := lv.firstLive
		lv.firstLive = m.next
		t.setLive(m, false)
	}
}

// setLive changes whether m counts as live, and the counts with it.
func (t *Tracker) setLive(m *member, live bool) {
	if m.live == live {
		return
	}
	m.live = live
	if t.Excluded(m.id) {
		return
	}
	d := 1
	if !live {
		d = -1
	}
	t.count(m, d)
}

// count adds d to the counts m, live and in good standing, is part of.
func (t *Tracker) count(m *member, d int) {
	switch m.role {
	case wire.RoleWorker:
		t.lv.workers += d
	case wire.RoleObserver:
		t.lv.observers += d
	}
	if r, ok := t.st.Commits[m.id]; ok {
		t.lv.voters[r] += d
	}
}

// touch records that m was heard from at now, in the given role.
func (t *Tracker) touch(m *member, role wire.Role, now time.Time) {
	t.advance(now)
	lv := &t.lv
	if m.role != role {
		if m.live && !t.Excluded(m.id) {
			t.count(m, -1)
			m.role = role
			t.count(m, 1)
		}
		m.role = role
	}
	t.unlink(m)
	if m.lastSeen.IsZero() || now.Sub(m.lastSeen) > round.Liveness(t.spec) {
		m.since = now
	}
	m.lastSeen = now
	// Insert it by lastSeen, from the end: at the end unless the
	// driver's clock went back.
	at := lv.last
	for at != nil && at.lastSeen.After(now) {
		at = at.prev
	}
	m.prev = at
	if at == nil {
		m.next = lv.first
		lv.first = m
	} else {
		m.next = at.next
		at.next = m
	}
	if m.next == nil {
		lv.last = m
	} else {
		m.next.prev = m
	}
	live := lv.clock.Sub(now) <= round.Liveness(t.spec)
	if live && (lv.firstLive == nil || now.Before(lv.firstLive.lastSeen)) {
		lv.firstLive = m
	}
	t.setLive(m, live)
}

// unlink takes m out of the list.
func (t *Tracker) unlink(m *member) {
	lv := &t.lv
	if lv.firstLive == m {
		lv.firstLive = m.next
	}
	if m.prev == nil {
		if lv.first == m {
			lv.first = m.next
		}
	} else {
		m.prev.next = m.next
	}
	if m.next == nil {
		if lv.last == m {
			lv.last = m.prev
		}
	} else {
		m.next.prev = m.prev
	}
	m.prev, m.next = nil, nil
}

// forget drops a member.
func (t *Tracker) forget(m *member) {
	t.setLive(m, false)
	t.unlink(m)
	delete(t.members, m.id)
}

// resetVoters counts the voters of the closed step's commits afresh
// (after the commits were reset or loaded).
func (t *Tracker) resetVoters() {
	t.lv.voters = map[string]int{}
	for p, r := range t.st.Commits {
		if m := t.members[p]; m != nil && m.live && !t.Excluded(p) {
			t.lv.voters[r]++
		}
	}
}

// liveCount returns how many members of the given roles are live and in
// good standing at now.
func (t *Tracker) liveCount(now time.Time, workers, observers bool) int {
	if now.Before(t.lv.clock) {
		return t.scanLive(now, workers, observers)
	}
	t.advance(now)
	n := 0
	if workers {
		n += t.lv.workers
	}
	if observers {
		n += t.lv.observers
	}
	return n
}

func (t *Tracker) scanLive(now time.Time, workers, observers bool) int {
	window := round.Liveness(t.spec)
	n := 0
	for p, m := range t.members {
		t.lv.scanned++
		if ((m.role == wire.RoleWorker && workers) || (m.role == wire.RoleObserver && observers)) && now.Sub(m.lastSeen) <= window && !t.Excluded(p) {
			n++
		}
	}
	return n
}

// liveVoters returns how many members live and in good standing at now
// committed result r for the closed step.
func (t *Tracker) liveVoters(now time.Time, r string) int {
	if now.Before(t.lv.clock) {
		window := round.Liveness(t.spec)
		n := 0
		for p, pr := range t.st.Commits {
			t.lv.scanned++
			if m := t.members[p]; pr == r && m != nil && now.Sub(m.lastSeen) <= window && !t.Excluded(p) {
				n++
			}
		}
		return n
	}
	t.advance(now)
	return t.lv.voters[r]
}
