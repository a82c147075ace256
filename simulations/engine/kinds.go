package engine

import (
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
)

// EventKind is the kind of a decision the protocol reports, a tracker's
// (tracker.Event) or a node's (node.Event). Both state machines spell
// their kinds as strings; the simulator names each kind once, here, and
// compares only these.
type EventKind string

// The tracker's kinds.
const (
	KindOpen     EventKind = "open"
	KindClose    EventKind = "close"
	KindFinal    EventKind = "final" // also a node's: it agreed with the Final
	KindDispute  EventKind = "dispute"
	KindExclude  EventKind = "exclude"
	KindReopen   EventKind = "reopen"
	KindMismatch EventKind = "mismatch" // also a node's: its head was not the Final's
	KindRefused  EventKind = "refused"  // also a node's
)

// The nodes' kinds besides those.
const (
	KindJoin    EventKind = "join"
	KindTrain   EventKind = "train"
	KindUpdate  EventKind = "update"
	KindApply   EventKind = "apply"
	KindCommit  EventKind = "commit"
	KindCatchUp EventKind = "catch-up"
	KindVerdict EventKind = "verdict"
	KindError   EventKind = "error"
)

// TrackerKind is the kind of a tracker's event.
func TrackerKind(ev tracker.Event) EventKind { return EventKind(ev.Kind) }

// NodeKind is the kind of a node's event.
func NodeKind(ev node.Event) EventKind { return EventKind(ev.Kind) }
