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
	said     uint64 // the time of its last Hello heard (wire.Hello.Time)
	// prev and next link the members in the order they were last heard
	// from (see liveness); live is whether the member was live at the
	// index's clock.
	prev, next *member
	live       bool
	// weight is the standing weight m was last counted with (see
	// count), so that it is taken back as it was added.
	weight int64
	since  time.Time // when its current stretch of liveness began
}

// liveness keeps the counts the tracker decides by (the live members in
// good standing, by role; their standing weight; those the closed step's
// Close includes; and of those the weight and number that committed each
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
	// standing is the live members' standing weight (see weight), and
	// voters, per result of the closed step, that of those that
	// committed it.
	standing int64
	voters   map[string]int64
	// included marks the peers the closed step's Close includes; boot
	// counts those live, and bootVoters, per result, those of them that
	// committed it: the quorum of an open round without standing.
	included   map[string]bool
	boot       int
	bootVoters map[string]int
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

// count adds d (1 or -1) to the counts m, live and in good standing, is
// part of. Its standing weight is the one it has now when it starts to
// count, and the one it was counted with when it stops.
func (t *Tracker) count(m *member, d int) {
	lv := &t.lv
	switch m.role {
	case wire.RoleWorker:
		lv.workers += d
	case wire.RoleObserver:
		lv.observers += d
	}
	if d > 0 {
		m.weight = t.weight(m.id)
	}
	w := int64(d) * m.weight
	lv.standing += w
	r, committed := t.st.Commits[m.id]
	if committed {
		lv.voters[r] += w
	}
	if lv.included[m.id] {
		lv.boot += d
		if committed {
			lv.bootVoters[r] += d
		}
	}
}

// weight returns a peer's standing weight, the weight of its commit: in
// a closed round 1 (every admitted member votes); in an open round the
// samples of its work that a replica confirmed in finalised steps
// (Entry.Verified), plus spec.TargetSamples for an anchor (Config.Anchors).
func (t *Tracker) weight(peer string) int64 {
	if t.spec.Admission == round.AdmissionClosed {
		return 1
	}
	var w int64
	if e := t.st.Ledger[peer]; e != nil {
		w = e.Verified
	}
	if t.anchors[peer] {
		w += int64(t.spec.TargetSamples)
	}
	return w
}

// reweigh counts a live member in good standing again with its standing
// weight now (after its ledger entry changed).
func (t *Tracker) reweigh(peer string) {
	if m := t.members[peer]; m != nil && m.live && !t.Excluded(peer) {
		t.count(m, -1)
		t.count(m, 1)
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

// resetVoters counts the peers the closed step's Close includes and the
// voters of its commits afresh (after the Close or the commits were set,
// reset or loaded).
func (t *Tracker) resetVoters() {
	lv := &t.lv
	lv.voters, lv.bootVoters, lv.included, lv.boot = map[string]int64{}, map[string]int{}, nil, 0
	if c := t.st.Close; c != nil && t.st.Phase == PhaseClosed {
		lv.included = make(map[string]bool, len(c.Included))
		for _, in := range c.Included {
			if !lv.included[in.Peer] {
				lv.included[in.Peer] = true
				if m := t.members[in.Peer]; m != nil && m.live && !t.Excluded(in.Peer) {
					lv.boot++
				}
			}
		}
	}
	for p, r := range t.st.Commits {
		if m := t.members[p]; m != nil && m.live && !t.Excluded(p) {
			lv.voters[r] += m.weight
			if lv.included[p] {
				lv.bootVoters[r]++
			}
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

// support returns the weight behind result r of the closed step at now
// and the weight of every live member in good standing, by the measure
// the quorum takes: standing weight (see weight) if the live members
// have any; else, in an open round without standing yet, one per live
// peer the step's Close includes (bootstrap).
func (t *Tracker) support(now time.Time, r string) (behind, total int64, bootstrap bool) {
	if now.Before(t.lv.clock) {
		return t.scanSupport(now, r)
	}
	t.advance(now)
	lv := &t.lv
	if lv.standing > 0 {
		return lv.voters[r], lv.standing, false
	}
	return int64(lv.bootVoters[r]), int64(lv.boot), true
}

// scanSupport is support at a time before the index's clock, by a scan.
func (t *Tracker) scanSupport(now time.Time, r string) (behind, total int64, bootstrap bool) {
	window := round.Liveness(t.spec)
	var standing, standingBehind, boot, bootBehind int64
	for p, m := range t.members {
		t.lv.scanned++
		if now.Sub(m.lastSeen) > window || t.Excluded(p) {
			continue
		}
		w := t.weight(p)
		pr, committed := t.st.Commits[p]
		standing += w
		if committed && pr == r {
			standingBehind += w
		}
		if t.lv.included[p] {
			boot++
			if committed && pr == r {
				bootBehind++
			}
		}
	}
	if standing > 0 {
		return standingBehind, standing, false
	}
	return bootBehind, boot, true
}

// counts reports whether a live member in good standing counts in the
// quorum the way support measures it now.
func (t *Tracker) counts(p string, bootstrap bool) bool {
	if bootstrap {
		return t.lv.included[p]
	}
	return t.weight(p) > 0
}
