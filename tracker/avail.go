package tracker

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// Availability: an update counts only once the tracker's side holds its
// payload (see the package doc, Steps).

// Fetch is a payload the driver is asked to hold: it fetches it from
// Provider (the author of the update that names it) into its store,
// checks that it is Size bytes that hash to Payload, and reports the
// outcome with Held.
type Fetch struct {
	Payload  cid.Cid
	Size     uint64
	Provider string
}

// holding is what the tracker knows of the open step's payloads.
type holding struct {
	// waiting maps a payload (its CID's key) to the copies of the open
	// step whose update names it, while the driver fetches it.
	waiting map[string][]unitCopy
	// held are the copies whose payload the driver holds.
	held map[unitCopy]bool
	// payloads are the payloads the driver holds, and lost those it
	// gave up on (as keys); lost ones are not asked for again this
	// attempt.
	payloads map[string]bool
	lost     map[string]bool
	fetches  []Fetch // for the next Ready
}

// resetHolding forgets the payloads of an earlier step or attempt.
func (t *Tracker) resetHolding() {
	t.hold = holding{waiting: map[string][]unitCopy{}, held: map[unitCopy]bool{},
		payloads: map[string]bool{}, lost: map[string]bool{}}
}

// want asks for the payload of an update the open step took (copy k): a
// payload already held makes it count at once; else the driver is asked
// for it, once per payload.
func (t *Tracker) want(k unitCopy, u *wire.Update, author string) {
	p := u.Payload.KeyString()
	switch {
	case t.hold.payloads[p]:
		t.markHeld(k)
	case t.hold.lost[p]:
	default:
		if _, asked := t.hold.waiting[p]; !asked {
			t.hold.fetches = append(t.hold.fetches, Fetch{Payload: u.Payload, Size: u.Size, Provider: author})
		}
		t.hold.waiting[p] = append(t.hold.waiting[p], k)
	}
}

// markHeld counts copy k as arrived.
func (t *Tracker) markHeld(k unitCopy) {
	if t.hold.held[k] {
		return
	}
	t.hold.held[k] = true
	t.arrive(k)
}

// unavailable reports whether copy k's update arrived but its payload
// cannot be had: the driver gave up on it.
func (t *Tracker) unavailable(k unitCopy) bool {
	u := t.updates[k]
	return u != nil && !t.hold.held[k] && t.hold.lost[u.Payload.KeyString()]
}

// Held tells the tracker that its driver now holds payload, verified
// (ok), or gave up fetching it (not ok). Only an update whose payload is
// held counts as arrived and can be included; one given up on is
// expected no longer, and is left out when the step closes. A payload
// the open step did not ask for is ignored.
func (t *Tracker) Held(now time.Time, payload cid.Cid, ok bool) {
	p := payload.KeyString()
	t.heldLate(payload, ok) // the same bytes may be a late copy's payload too
	copies, asked := t.hold.waiting[p]
	if !asked || t.st.Phase != PhaseOpen {
		return
	}
	delete(t.hold.waiting, p)
	if !ok {
		t.hold.lost[p] = true
		return
	}
	t.hold.payloads[p] = true
	t.st.Held = append(t.st.Held, payload)
	t.dirty = true
	for _, k := range copies {
		t.markHeld(k)
	}
	t.maybeCloseOnUpdate(now)
}

// withheld records, as a step closes, that peer's update was left out
// because its payload was not held, and excludes a peer that withholds
// repeatedly: at least WithheldLimit updates, and more than it had
// included.
func (t *Tracker) withheld(peer string, unit uint32) {
	e := t.entry(peer)
	e.Withheld++
	t.event(wire.EventWithheld, t.st.Step, peer, "unit %d: payload not held when the step closed; left out", unit)
	if e.Withheld >= WithheldLimit && e.Withheld > e.Units {
		t.exclude(peer, t.st.Step, fmt.Sprintf("withheld payloads: %d updates left out for want of their payload, %d included", e.Withheld, e.Units))
	}
}

// WithheldLimit is how many updates a peer may have left out for want of
// their payload before it is excluded (if it has had fewer included).
const WithheldLimit = 3
