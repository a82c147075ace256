package wire

// EventKind is the kind of an event the protocol's state machines report
// (tracker.Event, node.Event) for logs, dashboards and the simulator's
// counts. Events are not sent on the wire; their kinds are named here,
// once, beside the messages, so that every reader compares named kinds.
type EventKind string

// The tracker's kinds; final, mismatch and refused are a node's too.
const (
	EventOpen     EventKind = "open"     // a step opened
	EventClose    EventKind = "close"    // a step closed
	EventFinal    EventKind = "final"    // a checkpoint finalised (a node: it agrees)
	EventDispute  EventKind = "dispute"  // replicas disagree: a third computation settles it
	EventExclude  EventKind = "exclude"  // a peer lost its standing
	EventReopen   EventKind = "reopen"   // a step got nothing usable and opens again
	EventMismatch EventKind = "mismatch" // a commit (a node: its head) differs from the Final
	EventRefused  EventKind = "refused"  // a peer refused admission (a node: refused by the tracker)
	EventWithheld EventKind = "withheld" // an update left out: its payload was not held when the step closed
	EventAudit    EventKind = "audit"    // an included update picked for a third computation (routine, not a dispute)
	EventMerge    EventKind = "merge"    // a Close includes late updates of the step before
)

// The nodes' kinds besides those.
const (
	EventTrain    EventKind = "train"    // a unit's training started
	EventUpdate   EventKind = "update"   // an update is ready to publish
	EventCommit   EventKind = "commit"   // the node computed C_{t+1}
	EventCatchUp  EventKind = "catch-up" // the node adopted a checkpoint it fetched
	EventVerdict  EventKind = "verdict"  // the node judged a replica's update
	EventExcluded EventKind = "excluded" // the tracker excluded this node
	EventShard    EventKind = "shard"    // a dataset shard arrived (the daemon's)
	EventError    EventKind = "error"    // something failed; the node goes on
)
