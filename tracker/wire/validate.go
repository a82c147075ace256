package wire

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// Validation results: whether a message should be delivered and relayed.
type Result uint8

const (
	Accept Result = iota // deliver and relay
	Ignore               // drop without blame: stale, early, or not for us
	Reject               // drop and blame the sender: it broke the protocol
)

func (r Result) String() string {
	switch r {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	}
	return "reject"
}

// View is what Validate needs to know of the round: implemented by the
// Tracker and by node.Node.
type View interface {
	Round() cid.Cid
	// TrackerID returns the tracker's peer ID.
	TrackerID() string
	// Head returns the step the viewer is at and its base checkpoint.
	Head() (uint64, cid.Cid)
	Excluded(peer string) bool
}

// Grouped is a View of a round whose coordinator is a group of trackers
// (spec.Trackers lists more than one): the Opens, Closes and Finals of
// any member of the group are the coordinator's, and no member sends
// what a peer sends but Hellos. The Tracker, node.Node and the daemons'
// validator views are Grouped; a View that is not one has TrackerID as
// its only tracker. Which member leads is not Validate's to judge: a
// peer follows the highest term it has seen (Open.Term).
type Grouped interface {
	IsTracker(peer string) bool
}

// Dealer is a View that knows how the Open it holds (and, for a node,
// the few before it) dealt the step's unit copies. Validate ignores an
// Update of a copy that the Open of its step and attempt did not deal to
// its sender: junk from a peer outside the round, or a member's claim on
// a copy that is not its own, is neither delivered (so costs no storage)
// nor relayed. An Update of a step or attempt whose Open the viewer does
// not hold (yet) cannot be judged now, and is ignored too. The Tracker,
// node.Node and the daemons' validator views are Dealers; a View that is
// not one is not asked.
type Dealer interface {
	// Dealt returns the peer that the viewer's Open of the given step and
	// attempt dealt copy replica of unit to, or "" if the viewer holds no
	// such Open or the Open dealt no such copy.
	Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string
}

// Validate is the cheap check of a message before any work is spent on it:
// the gossip layer calls it on every message it would deliver or relay.
// It checks the form, the round, the sender's standing, who may send the
// kind of message and whether the step is one the viewer can use; it does
// not check content against state it does not have.
func Validate(v View, from string, m Msg) (Result, error) {
	if err := m.check(); err != nil {
		return Reject, err
	}
	if !m.RoundID().Equals(v.Round()) {
		return Ignore, fmt.Errorf("%s message for round %s, not %s", m.Kind(), m.RoundID(), v.Round())
	}
	// A peer without standing is heard only when it says hello (which
	// is how it presents an access token, and costs the tracker one
	// cheap check).
	if v.Excluded(from) && m.Kind() != KindHello {
		return Ignore, fmt.Errorf("%s message from %s, which has no standing in the round", m.Kind(), from)
	}
	tracker := from == v.TrackerID()
	if g, ok := v.(Grouped); ok && !tracker {
		tracker = g.IsTracker(from)
	}
	switch m.Kind() {
	case KindOpen, KindClose, KindFinal:
		if !tracker {
			return Reject, fmt.Errorf("%s message from %s, which is not the tracker", m.Kind(), from)
		}
	case KindHello, KindUpdate, KindCommit, KindVerdict:
		if tracker && m.Kind() != KindHello {
			return Reject, fmt.Errorf("%s message from the tracker", m.Kind())
		}
	}
	step, _ := v.Head()
	s := m.StepNum()
	switch m.Kind() {
	case KindUpdate:
		// Updates are useful only for the current step (a peer one step
		// behind may still be fetching its base).
		if s+1 < step || s > step+1 {
			return Ignore, fmt.Errorf("update for step %d, the viewer is at %d", s, step)
		}
		if d, ok := v.(Dealer); ok {
			u := m.(*Update)
			switch p := d.Dealt(u.Step, u.Attempt, u.Unit, u.Replica); p {
			case from:
			case "":
				return Ignore, fmt.Errorf("update for step %d attempt %d unit %d replica %d, a copy the viewer's Open did not deal", u.Step, u.Attempt, u.Unit, u.Replica)
			default:
				return Ignore, fmt.Errorf("update for step %d unit %d replica %d from %s, but the copy was dealt to %s", u.Step, u.Unit, u.Replica, from, p)
			}
		}
	case KindCommit, KindVerdict:
		// A checked verdict may settle a dispute of any earlier step: the
		// tracker asks for it in every Open until it comes.
		if v, ok := m.(*Verdict); (s+2 < step && !(ok && v.Checked)) || s > step+1 {
			return Ignore, fmt.Errorf("%s for step %d, the viewer is at %d", m.Kind(), s, step)
		}
	}
	return Accept, nil
}
