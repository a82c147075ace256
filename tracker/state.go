package tracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/wire"
)

// State is what a tracker persists: enough to resume a round after a
// crash without losing a finalised step or finalising one twice. Soft
// state (who is alive) is rebuilt from heartbeats.
type State struct {
	Round   cid.Cid `json:"round"`
	Step    uint64  `json:"step"`  // the current step t
	Base    cid.Cid `json:"base"`  // C_t
	Phase   Phase   `json:"phase"` // where step t is
	Attempt uint32  `json:"attempt"`
	Epoch   uint32  `json:"epoch,omitempty"` // restarts from this state so far (see Open.Epoch)

	Open     *wire.Open `json:"open,omitempty"` // the current step's Open (PhaseOpen, PhaseClosed)
	OpenedAt time.Time  `json:"opened_at"`
	// QuorumAt is when the open step's complete units first reached the
	// spec's quorum: it closes the spec's grace later.
	QuorumAt time.Time      `json:"quorum_at,omitzero"`
	Updates  []*wire.Update `json:"updates,omitempty"` // received for the open step, without Data
	// Held lists the payloads of the open step's updates that the
	// driver holds (see Tracker.Held); after a restart the others are
	// fetched again.
	Held []cid.Cid `json:"held,omitempty"`

	Close    *wire.Close       `json:"close,omitempty"` // the current step's Close (PhaseClosed)
	ClosedAt time.Time         `json:"closed_at"`
	Commits  map[string]string `json:"commits,omitempty"`  // peer → result CID, for the closed step
	Verified []Pair            `json:"verified,omitempty"` // agreeing replica pairs of the closed step
	// PrevVerified holds the pairs of the last finalised step, whose
	// replicas may still be cross-checking each other's payloads.
	PrevVerified []Pair `json:"prev_verified,omitempty"`

	// Finals lists every finalised step in order: Finals[i] is the Final
	// of step i (its Checkpoint is C_{i+1}).
	// Late is the deal of the last step that closed while late updates
	// of it may join the next Close (Spec.LateWeight > 0; see late.go),
	// and Merged the late updates the current step's Close includes.
	Late   *LateStep `json:"late,omitempty"`
	Merged []*Merged `json:"merged,omitempty"`

	Finals   []*wire.Final     `json:"finals,omitempty"`
	Disputes []*Dispute        `json:"disputes,omitempty"`
	Ledger   map[string]*Entry `json:"ledger,omitempty"`
}

// Phase is where the current step is.
type Phase uint8

const (
	PhaseIdle   Phase = 0 // waiting for members to open the step
	PhaseOpen   Phase = 1 // collecting updates
	PhaseClosed Phase = 2 // collecting commits
)

func (p Phase) String() string {
	switch p {
	case PhaseIdle:
		return "idle"
	case PhaseOpen:
		return "open"
	case PhaseClosed:
		return "closed"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Pair is a replicated unit of the closed step whose two replicas agreed.
type Pair struct {
	Unit    uint32    `json:"unit"`
	Attempt uint32    `json:"attempt,omitempty"` // the attempt of their updates
	Raw     string    `json:"raw,omitempty"`     // the raw hash they agreed on
	Peers   [2]string `json:"peers"`
	Samples uint32    `json:"samples"`
}

// Dispute is a replicated unit whose replicas disagree (different raw
// pseudo-gradients, or one says the other's payload does not follow from
// its residual), or an included unit picked for an audit (see Audits),
// waiting for a third computation. The checker judges the updates that
// the dispute's peers sent in its attempt, and no others.
type Dispute struct {
	Step    uint64    `json:"step"`
	Attempt uint32    `json:"attempt,omitempty"` // the attempt of the updates judged
	Unit    uint32    `json:"unit"`
	Base    cid.Cid   `json:"base"`
	Peers   [2]string `json:"peers"`             // the replicas, sorted; of an audit, the author and ""
	Raws    [2]string `json:"raws"`              // their raw hashes
	Accuser string    `json:"accuser,omitempty"` // the replica that judged the other's payload bad, if any
	Checker string    `json:"checker,omitempty"` // the peer asked to settle it
	Audit   bool      `json:"audit,omitempty"`   // an audit of an included update of Peers[0]
	// AskedAt is when Checker was asked: a peer the checker says withheld
	// its residual is excluded only if it has been live since.
	AskedAt time.Time `json:"asked_at,omitzero"`
}

// judged returns the peers whose updates the dispute's checker judges,
// sorted (as a wire.Check lists them).
func (d *Dispute) judged() []string {
	if d.Peers[1] == "" {
		return []string{d.Peers[0]}
	}
	return []string{d.Peers[0], d.Peers[1]}
}

// Entry is a peer's line in the contribution ledger.
type Entry struct {
	Units      int    `json:"units"`       // updates of the peer included in finalised steps
	Samples    int64  `json:"samples"`     // their samples
	Verified   int64  `json:"verified"`    // samples of those confirmed by a replica
	Checks     int    `json:"checks"`      // disputes the peer settled as checker
	Mismatches int    `json:"mismatches"`  // commits that differed from the finalised checkpoint
	Excluded   bool   `json:"excluded"`    // caught lying: excluded for the round
	Reason     string `json:"reason"`      // why it was excluded
	ExcludedAt uint64 `json:"excluded_at"` // the round's step when it was excluded

	// Withheld counts its updates left out because the tracker's side
	// did not hold their payload when the step closed.
	Withheld int `json:"withheld,omitempty"`
}

// Storage keeps a tracker's State. Save must be durable when it returns.
type Storage interface {
	Load() (*State, error) // the last State saved, or nil if none
	Save(*State) error
}

// MemStorage is a Storage in memory, for tests and simulations. It keeps
// an encoded copy, so a tracker rebuilt from it shares nothing with the
// old one. Like BoltStorage it keeps the Finals apart from the rest and
// encodes each once, so a Save costs the same at step 10 as at step
// 10,000. Like the Tracker, whose driver alone uses it, it is not safe
// for concurrent use.
type MemStorage struct {
	data   []byte   // the state without its Finals
	finals [][]byte // the Finals, each encoded once
	saves  int
}

// Load returns a copy of the last saved state.
func (m *MemStorage) Load() (*State, error) {
	if m.data == nil {
		return nil, nil
	}
	return DecodeStateParts(m.data, m.finals)
}

// Save keeps a copy of s.
func (m *MemStorage) Save(s *State) error {
	data, finals, err := EncodeStateParts(s, len(m.finals))
	if err != nil {
		return err
	}
	m.data = data
	m.finals = append(m.finals, finals...)
	m.saves++
	return nil
}

// Saves returns how many times Save was called.
func (m *MemStorage) Saves() int {
	return m.saves
}

// EncodeState returns the JSON form of s, whole.
func EncodeState(s *State) ([]byte, error) { return json.Marshal(s) }

// DecodeState reads a state written by EncodeState and checks that it
// holds together, so a damaged database is reported rather than resumed.
func DecodeState(b []byte) (*State, error) { return DecodeStateParts(b, nil) }

// EncodeStateParts returns the JSON form of s without its Finals, and of
// each of its Finals from stored on: what a storage that already holds
// the first stored Finals must add. Finals are append-only, so a state
// with fewer than stored is an error.
func EncodeStateParts(s *State, stored int) (data []byte, finals [][]byte, err error) {
	if len(s.Finals) < stored {
		return nil, nil, fmt.Errorf("tracker state: %d finalised steps, but %d are stored (finalised steps are never undone)", len(s.Finals), stored)
	}
	head := *s
	head.Finals = nil
	if data, err = json.Marshal(&head); err != nil {
		return nil, nil, err
	}
	for _, f := range s.Finals[stored:] {
		b, err := json.Marshal(f)
		if err != nil {
			return nil, nil, err
		}
		finals = append(finals, b)
	}
	return data, finals, nil
}

// DecodeStateParts reads a state stored as its JSON form and, apart, the
// JSON forms of its Finals (which follow any the state itself lists), and
// checks it.
func DecodeStateParts(data []byte, finals [][]byte) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("tracker state: %w", err)
	}
	for _, b := range finals {
		f := new(wire.Final)
		if err := json.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("tracker state: finalised step %d: %w", len(s.Finals), err)
		}
		s.Finals = append(s.Finals, f)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("tracker state: %w", err)
	}
	return &s, nil
}

func (s *State) check() error {
	switch {
	case !s.Round.Defined():
		return errors.New("no round ID")
	case !s.Base.Defined():
		return errors.New("no base checkpoint")
	case s.Phase > PhaseClosed:
		return fmt.Errorf("unknown phase %d", s.Phase)
	case uint64(len(s.Finals)) != s.Step:
		return fmt.Errorf("step %d but %d finalised steps", s.Step, len(s.Finals))
	case s.Phase != PhaseIdle && (s.Open == nil || s.Open.Step != s.Step):
		return fmt.Errorf("phase %s without the Open of step %d", s.Phase, s.Step)
	case s.Phase == PhaseClosed && (s.Close == nil || s.Close.Step != s.Step):
		return fmt.Errorf("phase closed without the Close of step %d", s.Step)
	}
	for i, f := range s.Finals {
		if f == nil || f.Step != uint64(i) {
			return fmt.Errorf("finals[%d] is not the Final of step %d", i, i)
		}
		if err := wire.WellFormed(f); err != nil {
			return fmt.Errorf("finals[%d]: %w", i, err)
		}
	}
	if n := len(s.Finals); n > 0 && !s.Finals[n-1].Checkpoint.Equals(s.Base) {
		return errors.New("base is not the last finalised checkpoint")
	}
	if s.Open != nil {
		if err := wire.WellFormed(s.Open); err != nil {
			return err
		}
	}
	if s.Close != nil {
		if err := wire.WellFormed(s.Close); err != nil {
			return err
		}
	}
	return s.checkStep()
}

// checkStep checks the parts of the current step that a resumed tracker
// relies on: what it holds must belong to the step, phase and attempt.
func (s *State) checkStep() error {
	if s.Phase != PhaseIdle && (s.Open.Attempt != s.Attempt || !s.Open.Base.Equals(s.Base)) {
		return fmt.Errorf("the Open is of attempt %d from %s, not attempt %d from %s", s.Open.Attempt, s.Open.Base, s.Attempt, s.Base)
	}
	if s.Phase == PhaseClosed && !s.Close.Base.Equals(s.Base) {
		return fmt.Errorf("the Close is from %s, not %s", s.Close.Base, s.Base)
	}
	for i, u := range s.Updates {
		switch {
		case u == nil:
			return fmt.Errorf("updates[%d] is null", i)
		case s.Phase == PhaseIdle:
			return fmt.Errorf("updates[%d] while no step is open", i)
		case u.Step != s.Step || u.Attempt != s.Attempt || !u.Base.Equals(s.Base):
			return fmt.Errorf("updates[%d] is of step %d attempt %d, not step %d attempt %d", i, u.Step, u.Attempt, s.Step, s.Attempt)
		}
	}
	for i, c := range s.Held {
		if !c.Defined() {
			return fmt.Errorf("held[%d] is no CID", i)
		}
	}
	for p, r := range s.Commits {
		if p == "" {
			return errors.New("commit of an empty peer ID")
		}
		c, err := cid.Decode(r)
		if err == nil {
			err = content.Check(c)
		}
		if err != nil {
			return fmt.Errorf("commit of %s: %v", p, err)
		}
	}
	for i, d := range s.Disputes {
		switch {
		case d == nil:
			return fmt.Errorf("disputes[%d] is null", i)
		case d.Step > s.Step:
			return fmt.Errorf("disputes[%d] is of step %d, after the current step %d", i, d.Step, s.Step)
		case !d.Base.Defined():
			return fmt.Errorf("disputes[%d] has no base", i)
		case d.Audit && (d.Peers[0] == "" || d.Peers[1] != "" || d.Accuser != ""):
			return fmt.Errorf("disputes[%d] is an audit, but not of one author", i)
		case !d.Audit && (d.Peers[0] == "" || d.Peers[1] == ""):
			return fmt.Errorf("disputes[%d] lacks a replica", i)
		}
	}
	for p, e := range s.Ledger {
		if e == nil {
			return fmt.Errorf("ledger entry of %s is null", p)
		}
	}
	return nil
}
