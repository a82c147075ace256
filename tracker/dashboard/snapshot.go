package dashboard

import "time"

// Snapshot is everything the dashboard shows about a round at one moment.
// The tracker's daemon builds one on request; the page polls or streams
// them. Times are UTC; durations are in seconds.
type Snapshot struct {
	Round   string    `json:"round"`            // the round ID
	Name    string    `json:"name"`             // the spec's name
	Model   string    `json:"model"`            // e.g. "gpt 2x128, ctx 64"
	Codec   string    `json:"codec"`            // update codec spec
	Rule    string    `json:"rule"`             // aggregation rule spec
	Invite  string    `json:"invite"`           // what volunteers paste into `shoal node join`
	Now     time.Time `json:"now"`              // when the snapshot was taken
	Started time.Time `json:"started"`          // when the tracker started
	Step    uint64    `json:"step"`             // the current outer step
	Phase   string    `json:"phase"`            // idle, open or closed
	Head    string    `json:"head"`             // the last finalised checkpoint (C_Step)
	Floor   float64   `json:"floor,omitempty"`  // the task's best possible loss, if known (nats/char)
	Target  float64   `json:"target,omitempty"` // the loss at which the round stops, if any
	// StartEval is the held-out loss of the checkpoint the round started
	// from (C_0), if an observer measured it: a fine-tuning round's base.
	StartEval float64 `json:"start_eval,omitempty"`

	Loss       []LossPoint `json:"loss"`       // one point per finalised step
	Steps      []StepInfo  `json:"steps"`      // the step timeline, oldest first (the last 200)
	Peers      []PeerInfo  `json:"peers"`      // every peer seen, sorted by ID
	Throughput Throughput  `json:"throughput"` // over the last minute
	Events     []Event     `json:"events"`     // recent notable events, newest last (the last 100)
	// Group is the tracker group's state as this member sees it, for a
	// round coordinated by a group of trackers.
	Group *GroupInfo `json:"group,omitempty"`
}

// GroupInfo is a tracker group as one of its members sees it.
type GroupInfo struct {
	Self    string   `json:"self"`             // this member's peer ID
	Members []string `json:"members"`          // the group's voting members
	Leader  string   `json:"leader,omitempty"` // the leader, if one is known
	Term    uint64   `json:"term"`             // the raft term
	Commit  uint64   `json:"commit"`           // the last log entry committed
	Applied uint64   `json:"applied"`          // the last log entry this member applied
	// Lag, at the leader, is how many committed entries each member's
	// log is behind.
	Lag      map[string]int64 `json:"lag,omitempty"`
	Snapshot uint64           `json:"snapshot"` // the index of this member's last snapshot
	LogLen   uint64           `json:"log_len"`  // entries this member's log holds
	Leads    int              `json:"leads"`    // times this member became leader
}

// LossPoint is the loss after a finalised step.
type LossPoint struct {
	Step  uint64  `json:"step"`
	Train float64 `json:"train"`          // mean training loss of the step's included updates
	Eval  float64 `json:"eval,omitempty"` // held-out loss of C_{Step+1}, if an observer measured it
	// Sample is a short text the observer's sampler wrote from C_{Step+1}
	// (a gpt of bytes), if it did; untrusted text, to show as text.
	Sample string `json:"sample,omitempty"`
}

// StepInfo is one outer step on the timeline.
type StepInfo struct {
	Step       uint64    `json:"step"`
	Opened     time.Time `json:"opened"`
	Closed     time.Time `json:"closed,omitzero"`
	Finalised  time.Time `json:"finalised,omitzero"`
	Members    int       `json:"members"`              // workers the units were dealt to
	Included   int       `json:"included"`             // updates aggregated
	Samples    int64     `json:"samples"`              // sequences they trained on
	Bytes      int64     `json:"bytes"`                // encoded update bytes included
	Disputes   int       `json:"disputes"`             // replicated units whose replicas disagreed
	Checkpoint string    `json:"checkpoint,omitempty"` // C_{Step+1}, once finalised
}

// PeerInfo is one peer and its line of the contribution ledger.
type PeerInfo struct {
	ID         string    `json:"id"`
	Role       string    `json:"role"`  // worker or observer
	State      string    `json:"state"` // live, gone or excluded
	HeadStep   uint64    `json:"head_step"`
	LastSeen   time.Time `json:"last_seen"`
	Units      int       `json:"units"`            // updates included in finalised steps
	Samples    int64     `json:"samples"`          // their samples
	Verified   int64     `json:"verified"`         // samples confirmed by a replica
	Checks     int       `json:"checks"`           // disputes it settled
	Mismatches int       `json:"mismatches"`       // commits that differed from the round's
	Reason     string    `json:"reason,omitempty"` // why it was excluded
}

// Throughput is the round's recent pace.
type Throughput struct {
	SamplesPerSec  float64 `json:"samples_per_sec"`
	BytesInPerSec  float64 `json:"bytes_in_per_sec"`  // received by the tracker's host
	BytesOutPerSec float64 `json:"bytes_out_per_sec"` // sent by the tracker's host
	StepSeconds    float64 `json:"step_seconds"`      // mean duration of the last steps
}

// Event is a notable event: a step decision, a refusal, an exclusion.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Step   uint64    `json:"step"`
	Peer   string    `json:"peer,omitempty"`
	Detail string    `json:"detail"`
}
