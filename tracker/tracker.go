package tracker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Tracker is the coordinator of a round as a deterministic state machine:
// messages and clock ticks go in (Receive, Tick), messages to publish come
// out (Ready), and its State goes to Storage at every decision before any
// message announcing the decision leaves. It holds no goroutines, sockets
// or clocks: the time is whatever the driver passes.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cfg   Config
	spec  *round.Spec
	round cid.Cid
	st    *State
	dirty bool // st changed since the last Save (updates, commits)

	trackerID string // the spec's tracker, canonical

	members  map[string]*member
	refused  map[string]string   // peers refused admission to a closed round, and why
	assigned map[unitCopy]string // of the open step
	updates  map[unitCopy]*wire.Update
	// Counts of the open step kept as updates arrive, so that a step of
	// thousands of units is not rescanned for every update: the copies of
	// each unit that have not arrived, the units whose every copy has, and
	// how many exclusions there had been when the units were dealt
	// (after one, the counts no longer tell what counts; see maybeClose).
	// The copies still to come are len(assigned) − len(updates).
	missing     map[uint32]uint8
	arrived     int
	exclusions  int
	dealtAtExcl int
	// votes counts the closed step's commits by result; need holds, per
	// result, how many commits it must reach before it is worth counting
	// the live ones again.
	votes    map[string]int
	need     map[string]int
	live     liveCache
	out      []wire.Msg
	announce bool // republish the current phase's message at the next Tick
	lastAnn  time.Time
	lastSwep time.Time // when silent members were last forgotten
	// quietUntil holds decisions back after a restart until the members
	// have had time to announce themselves again: membership is soft
	// state, and a quorum of the first few to speak is no quorum.
	quietUntil time.Time
	events     []Event
	failed     error // the Save that failed: what was decided since is not durable
}

// Config configures a Tracker.
type Config struct {
	Spec    *round.Spec
	Genesis cid.Cid // C_0: Spec.InitCheckpoint, or the checkpoint the model's seed makes
	Storage Storage // where the state persists; nil keeps it in memory only
	// MinMembers is how many live workers it takes to open a step
	// (default 1).
	MinMembers int
	// Spares is how many units a step deals beyond its target, as a
	// fraction of the target's units, when there are workers to spare
	// (see DealtUnits); 0 deals exactly the target's worth.
	Spares float64
	// Admit decides, in a closed round, whether a peer's access token
	// gives it standing at now; a peer without standing is not a member.
	// It must be a pure function of its arguments (and of keys fixed at
	// start). In an open round it is not called.
	Admit func(peer string, token []byte, now time.Time) error
}

// liveCache is how many members are live and in good standing, valid
// from at until the first of them can fall silent.
type liveCache struct {
	valid     bool
	at, until time.Time
	n         int
}

type member struct {
	role     wire.Role
	lastSeen time.Time
	step     uint64
	head     cid.Cid
}

type unitCopy struct {
	unit    uint32
	replica uint8
}

// Event is something the tracker decided, for logs and dashboards.
type Event struct {
	Kind   string // "open", "close", "final", "dispute", "exclude", "reopen", "mismatch"
	Step   uint64
	Peer   string
	Detail string
}

// New returns a tracker for a round, resumed from cfg.Storage if it holds
// a state of this round.
func New(cfg Config, now time.Time) (*Tracker, error) {
	if cfg.Spec == nil {
		return nil, errors.New("tracker: no spec")
	}
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Genesis.Defined() {
		return nil, errors.New("tracker: no genesis checkpoint")
	}
	if cfg.Storage == nil {
		cfg.Storage = &MemStorage{}
	}
	if cfg.MinMembers < 1 {
		cfg.MinMembers = 1
	}
	if !(cfg.Spares >= 0 && cfg.Spares <= 1) {
		return nil, fmt.Errorf("tracker: spare units %v: need a fraction from 0 to 1", cfg.Spares)
	}
	t := &Tracker{cfg: cfg, spec: cfg.Spec, round: cfg.Spec.ID(), members: map[string]*member{}, refused: map[string]string{},
		trackerID: cfg.Spec.TrackerID()}
	st, err := cfg.Storage.Load()
	if err != nil {
		return nil, fmt.Errorf("tracker: loading state: %w", err)
	}
	switch {
	case st == nil:
		st = &State{Round: t.round, Base: cfg.Genesis, Ledger: map[string]*Entry{}}
		t.st = st
		if err := t.save(); err != nil {
			return nil, err
		}
	case !st.Round.Equals(t.round):
		return nil, fmt.Errorf("tracker: the database holds round %s, not %s", st.Round, t.round)
	default:
		if st.Ledger == nil {
			st.Ledger = map[string]*Entry{}
		}
		t.st = st
		st.Epoch++
		if st.Open != nil {
			st.Open.Epoch = st.Epoch
		}
		if st.Close != nil {
			st.Close.Epoch = st.Epoch
		}
		if err := t.save(); err != nil {
			return nil, err
		}
		t.restore()
		t.announce = true
		t.quietUntil = now.Add(round.HeartbeatInterval(cfg.Spec) * 3 / 2)
	}
	return t, nil
}

// restore rebuilds the indexes of the open step from the state.
func (t *Tracker) restore() {
	if t.st.Phase == PhaseIdle {
		return
	}
	t.dealUnits()
	t.updates = map[unitCopy]*wire.Update{}
	for _, u := range t.st.Updates {
		k := unitCopy{u.Unit, u.Replica}
		t.updates[k] = u
		t.arrive(k)
	}
}

// save writes the state to storage. Once a Save has failed, the state in
// memory holds decisions that are not durable and were not announced, so
// the tracker refuses to go on: save, Receive and Tick return that error
// from then on.
func (t *Tracker) save() error {
	if t.failed != nil {
		return t.failed
	}
	if err := t.cfg.Storage.Save(t.st); err != nil {
		t.failed = fmt.Errorf("tracker: saving state: %w", err)
		return t.failed
	}
	t.dirty = false
	return nil
}

// Round returns the round ID.
func (t *Tracker) Round() cid.Cid { return t.round }

// TrackerID returns the tracker's peer ID (the spec's first tracker), in
// canonical form (CanonicalPeerID), as the transport names senders.
func (t *Tracker) TrackerID() string { return t.trackerID }

// Step returns the current step and its phase.
func (t *Tracker) Step() (uint64, Phase) { return t.st.Step, t.st.Phase }

// Head returns the last finalised checkpoint and the step it starts.
func (t *Tracker) Head() (uint64, cid.Cid) { return t.st.Step, t.st.Base }

// Finals returns the Final of every finalised step, in order. The slice is
// shared; do not modify it.
func (t *Tracker) Finals() []*wire.Final { return t.st.Finals }

// Ledger returns a copy of the contribution ledger.
func (t *Tracker) Ledger() map[string]Entry {
	out := make(map[string]Entry, len(t.st.Ledger))
	for p, e := range t.st.Ledger {
		out[p] = *e
	}
	return out
}

// Excluded reports whether peer was caught lying.
func (t *Tracker) Excluded(peer string) bool {
	e := t.st.Ledger[peer]
	return e != nil && e.Excluded
}

// Members returns the live members of the given role at now, sorted.
func (t *Tracker) Members(role wire.Role, now time.Time) []string {
	var out []string
	live := round.Liveness(t.spec)
	for p, m := range t.members {
		if m.role == role && now.Sub(m.lastSeen) <= live && !t.Excluded(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// PeerState is what the tracker knows of a peer that announced itself.
type PeerState struct {
	ID       string
	Role     wire.Role
	LastSeen time.Time
	Step     uint64 // the step of its head
	Live     bool   // heard from within Liveness
	Excluded bool
	Refused  string // why a closed round refused it, if it did
}

// Peers returns every peer heard from since the tracker started and not
// forgotten since (see ForgetAfter), sorted by ID.
func (t *Tracker) Peers(now time.Time) []PeerState {
	live := round.Liveness(t.spec)
	out := make([]PeerState, 0, len(t.members))
	for id, m := range t.members {
		out = append(out, PeerState{ID: id, Role: m.role, LastSeen: m.lastSeen, Step: m.step,
			Live: now.Sub(m.lastSeen) <= live, Excluded: t.Excluded(id)})
	}
	for id, why := range t.refused {
		out = append(out, PeerState{ID: id, Role: wire.RoleWorker, Refused: why})
	}
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Refused returns the peers a closed round refused since the tracker
// started, and why.
func (t *Tracker) Refused() map[string]string { return maps.Clone(t.refused) }

// Ready returns the messages to publish, in order, and forgets them.
func (t *Tracker) Ready() []wire.Msg {
	out := t.out
	t.out = nil
	return out
}

// Events returns what the tracker decided since the last call.
func (t *Tracker) Events() []Event {
	ev := t.events
	t.events = nil
	return ev
}

func (t *Tracker) event(kind string, step uint64, peer, format string, args ...any) {
	t.events = append(t.events, Event{Kind: kind, Step: step, Peer: peer, Detail: fmt.Sprintf(format, args...)})
}

func (t *Tracker) publish(m wire.Msg) { t.out = append(t.out, m) }

// Receive handles a message from a peer. It returns an error, for the
// driver's log, when the message is refused; a refused message changes
// nothing. It also returns the error of a failed Save (see Tick).
func (t *Tracker) Receive(now time.Time, from string, m wire.Msg) error {
	if t.failed != nil {
		return t.failed
	}
	if r, err := wire.Validate(t, from, m); r != wire.Accept {
		return err
	}
	switch m := m.(type) {
	case *wire.Hello:
		return t.hello(now, from, m)
	case *wire.Update:
		return t.update(now, from, m)
	case *wire.Commit:
		return t.commit(now, from, m)
	case *wire.Verdict:
		return t.verdict(from, m)
	}
	return nil // the tracker's own messages, relayed back
}

func (t *Tracker) hello(now time.Time, from string, m *wire.Hello) error {
	if t.Excluded(from) {
		return fmt.Errorf("hello from %s, excluded from the round", from)
	}
	if t.spec.Admission == round.AdmissionClosed {
		err := errors.New("the round is closed and this tracker has no admission check")
		if t.cfg.Admit != nil {
			err = t.cfg.Admit(from, m.Token, now)
		}
		if err != nil {
			delete(t.members, from)
			t.live.valid = false
			reason := "no valid access token: " + err.Error()
			if t.refused[from] != reason {
				t.event("refused", t.st.Step, from, "%s", reason)
			}
			t.refused[from] = reason
			return errors.New(reason)
		}
		delete(t.refused, from)
	}
	mb := t.members[from]
	if mb == nil {
		mb = &member{}
		t.members[from] = mb
		t.announce = true // a newcomer needs the current step
		t.live.valid = false
	} else if mb.role != m.Role || now.Sub(mb.lastSeen) > round.Liveness(t.spec) {
		t.live.valid = false // a member comes back to life or changes role
	}
	mb.role, mb.lastSeen, mb.step, mb.head = m.Role, now, m.Step, m.Head
	if m.Step < t.st.Step || (m.Step == t.st.Step && !m.Head.Equals(t.st.Base)) {
		t.announce = true // it is behind or astray
	}
	return nil
}

func (t *Tracker) update(now time.Time, from string, m *wire.Update) error {
	st := t.st
	if st.Phase != PhaseOpen || m.Step != st.Step || m.Attempt != st.Attempt {
		return fmt.Errorf("update for step %d attempt %d, but step %d attempt %d is %s", m.Step, m.Attempt, st.Step, st.Attempt, st.Phase)
	}
	if !m.Base.Equals(st.Base) {
		return fmt.Errorf("update from base %s, but the step's base is %s", m.Base, st.Base)
	}
	key := unitCopy{m.Unit, m.Replica}
	if t.assigned[key] != from {
		return fmt.Errorf("unit %d replica %d is not assigned to %s", m.Unit, m.Replica, from)
	}
	if want := uint32(t.spec.UnitSamples()); m.Samples != want {
		return fmt.Errorf("update claims %d samples, a unit has %d", m.Samples, want)
	}
	if old := t.updates[key]; old != nil {
		if old.Payload.Equals(m.Payload) {
			return nil // a repeat
		}
		return fmt.Errorf("second, different update for unit %d replica %d", m.Unit, m.Replica)
	}
	u := *m
	u.Data = nil
	t.updates[key] = &u
	st.Updates = append(st.Updates, &u)
	t.arrive(key)
	t.dirty = true
	return t.maybeCloseOnUpdate(now)
}

func (t *Tracker) commit(now time.Time, from string, m *wire.Commit) error {
	st := t.st
	if m.Step < st.Step {
		// A commit for a finalised step: check it against the record.
		f := st.Finals[m.Step]
		if f.Base.Equals(m.Base) && !f.Checkpoint.Equals(m.Result) {
			t.mismatch(from, m.Step, m.Result, f.Checkpoint)
		}
		return nil
	}
	if st.Phase != PhaseClosed || m.Step != st.Step || !m.Base.Equals(st.Base) {
		return fmt.Errorf("commit for step %d from %s, but step %d is %s", m.Step, m.Base, st.Step, st.Phase)
	}
	if prev, ok := st.Commits[from]; ok {
		if prev == m.Result.String() {
			return nil
		}
		return fmt.Errorf("second, different commit for step %d", m.Step)
	}
	if st.Commits == nil {
		st.Commits = map[string]string{}
	}
	r := m.Result.String()
	st.Commits[from] = r
	if t.votes != nil {
		t.votes[r]++
	}
	t.dirty = true
	return t.maybeFinalise(now, r)
}

func (t *Tracker) mismatch(peer string, step uint64, got, want cid.Cid) {
	t.entry(peer).Mismatches++
	t.dirty = true
	t.event("mismatch", step, peer, "committed %s, finalised %s", got, want)
}

func (t *Tracker) entry(peer string) *Entry {
	e := t.st.Ledger[peer]
	if e == nil {
		e = &Entry{}
		t.st.Ledger[peer] = e
	}
	return e
}

// Tick advances the tracker's clock: it opens a step when there are
// members, closes one at its deadline, reopens one that got nothing,
// forgets silent members, and republishes what latecomers need. Tick
// returns an error only when the state cannot be saved; the tracker must
// then stop (what it decided is not durable), and every later Tick and
// Receive returns the same error.
func (t *Tracker) Tick(now time.Time) error {
	if t.failed != nil {
		return t.failed
	}
	st := t.st
	if now.Before(t.quietUntil) {
		if t.announce {
			t.announce = false
			t.lastAnn = now
			t.republish()
		}
		return nil
	}
	switch st.Phase {
	case PhaseIdle:
		if err := t.maybeOpen(now); err != nil {
			return err
		}
	case PhaseOpen:
		if err := t.maybeClose(now); err != nil {
			return err
		}
		if st.Phase == PhaseOpen && now.Sub(st.OpenedAt) >= t.spec.Deadline {
			if err := t.closeStep(now); err != nil {
				return err
			}
		}
	case PhaseClosed:
		if err := t.maybeFinalise(now, ""); err != nil {
			return err
		}
	}
	if t.dirty {
		if err := t.save(); err != nil {
			return err
		}
	}
	if t.announce && now.Sub(t.lastAnn) >= round.HeartbeatInterval(t.spec) {
		t.announce = false
		t.lastAnn = now
		t.republish()
	}
	if now.Sub(t.lastSwep) >= round.Liveness(t.spec) {
		t.lastSwep = now
		t.forgetSilent(now)
	}
	return nil
}

// ForgetAfter is how long a member may be silent before the tracker
// forgets it (membership is soft state; its ledger entry stays, and a
// Hello makes it a member again). Under churn, the member table then
// holds the peers of the last hours, not every peer ever seen.
const ForgetAfter = time.Hour

// forgetSilent drops the members silent for longer than ForgetAfter (and
// at least ten liveness windows).
func (t *Tracker) forgetSilent(now time.Time) {
	horizon := max(ForgetAfter, 10*round.Liveness(t.spec))
	for p, m := range t.members {
		if now.Sub(m.lastSeen) > horizon {
			delete(t.members, p)
		}
	}
}

// republish sends again what a peer that missed something needs: the
// last Final and the current step's Open or Close. A message still
// waiting in Ready (just decided) moves to its place in that sequence
// rather than going out twice.
func (t *Tracker) republish() {
	st := t.st
	var msgs []wire.Msg
	if n := len(st.Finals); n > 0 {
		msgs = append(msgs, st.Finals[n-1])
	}
	switch st.Phase {
	case PhaseOpen:
		msgs = append(msgs, st.Open)
	case PhaseClosed:
		msgs = append(msgs, st.Open, st.Close)
	}
	t.out = slices.DeleteFunc(t.out, func(m wire.Msg) bool { return slices.Contains(msgs, m) })
	t.out = append(t.out, msgs...)
}

func (t *Tracker) maybeOpen(now time.Time) error {
	workers := t.Members(wire.RoleWorker, now)
	if len(workers) < t.cfg.MinMembers || len(workers) == 0 {
		return nil
	}
	st := t.st
	open := &wire.Open{Round: t.round, Step: st.Step, Attempt: st.Attempt, Epoch: st.Epoch, Base: st.Base,
		Members: workers, Units: uint32(DealtUnits(t.spec, len(workers), t.cfg.Spares))}
	open.Checks = t.assignChecks(workers)
	open.Excluded = t.excludedList()
	st.Phase, st.Open, st.OpenedAt, st.Updates = PhaseOpen, open, now, nil
	st.Close, st.Commits, st.Verified = nil, nil, nil
	t.votes = nil
	if err := t.save(); err != nil {
		return err
	}
	t.dealUnits()
	t.updates = map[unitCopy]*wire.Update{}
	t.publish(open)
	t.event("open", st.Step, "", "attempt %d, %d members, %d units, %d checks", st.Attempt, len(workers), open.Units, len(open.Checks))
	return nil
}

// DealtUnits returns how many units a step deals to workers: the
// target's worth (Spec.UnitsPerStep) and, when there are more workers
// than that, up to spares times as many again (rounded up). A step closes
// as soon as its complete units reach the target, so with spares the
// slowest workers, and those that leave mid-step, do not hold every step
// to its deadline (the backup workers of synchronous SGD): a spare that
// arrives in time is included too, one that does not costs only its
// compute. Spare units read the data that the next units in order would
// (the dataset is read as a cycle).
func DealtUnits(s *round.Spec, workers int, spares float64) int {
	units := s.UnitsPerStep()
	if extra := int(math.Ceil(spares * float64(units))); extra > 0 && workers > units {
		units = min(workers, units+extra, wire.MaxUnits)
	}
	return units
}

// dealUnits computes the open step's assignment.
func (t *Tracker) dealUnits() {
	o := t.st.Open
	t.assigned = map[unitCopy]string{}
	t.missing = map[uint32]uint8{}
	for _, a := range round.Assign(t.spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), t.spec.VerificationRate) {
		t.assigned[unitCopy{uint32(a.Unit), uint8(a.Replica)}] = a.Peer
		t.missing[uint32(a.Unit)]++
	}
	t.arrived, t.dealtAtExcl = 0, t.exclusions
}

// arrive counts the arrival of a unit copy's update.
func (t *Tracker) arrive(k unitCopy) {
	t.missing[k.unit]--
	if t.missing[k.unit] == 0 {
		t.arrived++
	}
}

// assignChecks gives unsettled disputes a checker among the workers other
// than their replicas: the checker a dispute already has while it is still
// a worker (a third computation may take longer than a step), else one
// chosen by a hash of the round seed and the dispute. A Check names an
// earlier step by step and unit only, so disputes of the current step
// (raised by an attempt that was dealt again) wait for it to be
// finalised, and of a unit disputed in several attempts one is checked at
// a time. Disputes left without a Check have no checker.
func (t *Tracker) assignChecks(workers []string) []wire.Check {
	type unitKey struct {
		step uint64
		unit uint32
	}
	var checks []wire.Check
	asked := map[unitKey]bool{}
	for _, d := range t.st.Disputes {
		k := unitKey{d.Step, d.Unit}
		if d.Step >= t.st.Step || asked[k] || len(checks) == wire.MaxChecks {
			d.Checker = ""
			continue
		}
		var eligible []string
		for _, w := range workers {
			if w != d.Peers[0] && w != d.Peers[1] {
				eligible = append(eligible, w)
			}
		}
		if len(eligible) == 0 {
			d.Checker = ""
			continue
		}
		if !slices.Contains(eligible, d.Checker) {
			var b [8 + 8 + 4]byte
			binary.LittleEndian.PutUint64(b[:], t.st.Step)
			binary.LittleEndian.PutUint64(b[8:], d.Step)
			binary.LittleEndian.PutUint32(b[16:], d.Unit)
			d.Checker = eligible[round.AssignHash(t.spec.Seed, uint64(t.st.Attempt), 'c', b[:])%uint64(len(eligible))]
		}
		asked[k] = true
		checks = append(checks, wire.Check{Step: d.Step, Unit: d.Unit, Base: d.Base, Checker: d.Checker})
	}
	wire.SortChecks(checks)
	return checks
}

// maybeCloseOnUpdate is maybeClose after an update, from counts kept as
// updates arrive: it closes when every copy dealt has arrived, or when
// the units whose every copy has arrived reach the target. Either implies
// what maybeClose decides; what only maybeClose sees (copies dealt to
// peers that fell silent or were excluded) waits for the next Tick, which
// keeps an update's cost independent of the size of the step. After an
// exclusion in the step it falls back to maybeClose.
func (t *Tracker) maybeCloseOnUpdate(now time.Time) error {
	if t.exclusions != t.dealtAtExcl {
		return t.maybeClose(now)
	}
	if now.Before(t.quietUntil) {
		return nil
	}
	if len(t.updates) == len(t.assigned) || t.arrived*t.spec.UnitSamples() >= t.spec.TargetSamples {
		return t.closeStep(now)
	}
	return nil
}

// maybeClose closes the open step once the complete units reach the
// target samples, or once nothing more can be expected: every copy dealt
// to a peer that is still live and in good standing has arrived. A unit
// is complete when every copy dealt to such a peer has arrived; waiting
// for both copies of a replicated unit makes what a step includes
// independent of the order in which updates arrive, when they all arrive
// in time.
func (t *Tracker) maybeClose(now time.Time) error {
	if now.Before(t.quietUntil) {
		return nil
	}
	live := round.Liveness(t.spec)
	expected := func(peer string) bool {
		m := t.members[peer]
		return m != nil && now.Sub(m.lastSeen) <= live && !t.Excluded(peer)
	}
	samples, pending := 0, false
	complete := map[uint32]bool{}
	for k, p := range t.assigned {
		if t.updates[k] == nil && expected(p) {
			pending = true
			complete[k.unit] = false
		} else if _, seen := complete[k.unit]; !seen {
			complete[k.unit] = true
		}
	}
	for u, ok := range complete {
		if !ok {
			continue
		}
		for r := range uint8(2) {
			if up := t.updates[unitCopy{u, r}]; up != nil && !t.Excluded(t.assigned[unitCopy{u, r}]) {
				samples += int(up.Samples)
				break
			}
		}
	}
	if samples >= t.spec.TargetSamples || (!pending && len(t.updates) > 0) {
		return t.closeStep(now)
	}
	return nil
}

// closeStep closes the open step with the updates received: one per unit;
// of a replicated unit whose replicas agree, replica 0's; of one whose
// replicas disagree, none (the unit goes to a third computation). A step
// with nothing to include is reopened.
func (t *Tracker) closeStep(now time.Time) error {
	st := t.st
	var included []wire.Included
	var verified []Pair
	var disputes []*Dispute
	units := slices.Sorted(maps.Keys(t.unitSet()))
	for _, u := range units {
		a, b := t.updates[unitCopy{u, 0}], t.updates[unitCopy{u, 1}]
		// Updates of a peer excluded since it sent them are dropped.
		if a != nil && t.Excluded(t.assigned[unitCopy{u, 0}]) {
			a = nil
		}
		if b != nil && t.Excluded(t.assigned[unitCopy{u, 1}]) {
			b = nil
		}
		switch {
		case a != nil && b != nil && a.Raw.Equals(b.Raw):
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 0}], Unit: u, Payload: a.Payload, Weight: a.Samples})
			verified = append(verified, Pair{Unit: u, Peers: [2]string{t.assigned[unitCopy{u, 0}], t.assigned[unitCopy{u, 1}]}, Samples: a.Samples})
		case a != nil && b != nil:
			d := &Dispute{Step: st.Step, Unit: u, Base: st.Base,
				Peers: [2]string{t.assigned[unitCopy{u, 0}], t.assigned[unitCopy{u, 1}]},
				Raws:  [2]string{a.Raw.String(), b.Raw.String()}}
			sortDispute(d)
			disputes = append(disputes, d)
		case a != nil:
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 0}], Unit: u, Payload: a.Payload, Weight: a.Samples})
		case b != nil:
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 1}], Unit: u, Payload: b.Payload, Weight: b.Samples})
		}
	}
	st.Disputes = append(st.Disputes, disputes...)
	for _, d := range disputes {
		t.event("dispute", d.Step, "", "unit %d: replicas %s and %s computed different pseudo-gradients", d.Unit, d.Peers[0], d.Peers[1])
	}
	if len(included) == 0 {
		// Nothing arrived (or everything is disputed): deal the step
		// again to whoever is there now.
		t.event("reopen", st.Step, "", "attempt %d got no usable update", st.Attempt)
		st.Attempt++
		if st.Attempt >= wire.MaxAttempt {
			st.Attempt = 0
		}
		st.Phase, st.Open, st.Updates = PhaseIdle, nil, nil
		if err := t.save(); err != nil {
			return err
		}
		return t.maybeOpen(now)
	}
	wire.SortIncluded(included)
	cl := &wire.Close{Round: t.round, Step: st.Step, Epoch: st.Epoch, Base: st.Base, Included: included}
	st.Phase, st.Close, st.ClosedAt, st.Commits, st.Verified = PhaseClosed, cl, now, nil, verified
	t.votes = nil
	if err := t.save(); err != nil {
		return err
	}
	t.publish(cl)
	t.event("close", st.Step, "", "%d updates included, %d verified pairs", len(included), len(verified))
	return nil
}

func sortDispute(d *Dispute) {
	if d.Peers[0] > d.Peers[1] {
		d.Peers[0], d.Peers[1] = d.Peers[1], d.Peers[0]
		d.Raws[0], d.Raws[1] = d.Raws[1], d.Raws[0]
	}
}

func (t *Tracker) unitSet() map[uint32]bool {
	s := map[uint32]bool{}
	for k := range t.updates {
		s[k.unit] = true
	}
	return s
}

// Quorum returns how many matching commits finalise a step at now: a
// majority of the live members (workers and observers).
func (t *Tracker) Quorum(now time.Time) int { return t.liveMembers(now)/2 + 1 }

// liveMembers counts the live members in good standing (workers and
// observers). The count holds until the first of them falls silent, or a
// Hello or an exclusion changes it, so it is made again rarely, not for
// every commit.
func (t *Tracker) liveMembers(now time.Time) int {
	c := &t.live
	if c.valid && !now.Before(c.at) && !now.After(c.until) {
		return c.n
	}
	live := round.Liveness(t.spec)
	n, first := 0, now
	for p, m := range t.members {
		if (m.role == wire.RoleWorker || m.role == wire.RoleObserver) && now.Sub(m.lastSeen) <= live && !t.Excluded(p) {
			n++
			first = minTime(first, m.lastSeen)
		}
	}
	*c = liveCache{valid: true, at: now, until: first.Add(live), n: n}
	return n
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// maybeFinalise finalises the closed step once one result has the
// commits of a quorum. After a commit (only = its result) it looks at
// that result alone, and counts its live voters only once the commits
// could make a quorum; a Tick (only = "") looks at every result, which
// catches a quorum that shrank as members fell silent.
func (t *Tracker) maybeFinalise(now time.Time, only string) error {
	st := t.st
	if st.Phase != PhaseClosed || now.Before(t.quietUntil) {
		return nil
	}
	if t.votes == nil {
		t.votes, t.need = map[string]int{}, map[string]int{}
		for _, r := range st.Commits {
			t.votes[r]++
		}
	}
	q := t.Quorum(now)
	results := []string{only}
	if only == "" {
		results = slices.Sorted(maps.Keys(t.votes))
	}
	live := round.Liveness(t.spec)
	for _, r := range results {
		if t.votes[r] < q || (only != "" && t.votes[r] < t.need[r]) {
			continue
		}
		// Count only members still alive and in good standing, as the
		// quorum does: a quorum of the departed or of peers excluded
		// since they committed does not speak for the round.
		var voters []string
		for p, pr := range st.Commits {
			if m := t.members[p]; pr == r && m != nil && now.Sub(m.lastSeen) <= live && !t.Excluded(p) {
				voters = append(voters, p)
			}
		}
		if len(voters) < q {
			// At least this many more commits before it can be a quorum
			// (unless the quorum shrinks, which a Tick sees).
			t.need[r] = t.votes[r] + q - len(voters)
			continue
		}
		result, err := cid.Decode(r)
		if err != nil {
			return fmt.Errorf("tracker: corrupt commit in state: %w", err)
		}
		return t.finalise(now, result, voters)
	}
	return nil
}

// finalise records result as the closed step's checkpoint, agreed by
// voters (live, in good standing): the ledger counts the included units
// and verified pairs, and every commit of another result is a mismatch.
func (t *Tracker) finalise(now time.Time, result cid.Cid, voters []string) error {
	st := t.st
	slices.Sort(voters)
	providers := voters
	if len(providers) > wire.MaxProviders {
		providers = providers[:wire.MaxProviders]
	}
	f := &wire.Final{Round: t.round, Step: st.Step, Base: st.Base, Checkpoint: result, Providers: slices.Clone(providers)}
	for _, in := range st.Close.Included {
		e := t.entry(in.Peer)
		e.Units++
		e.Samples += int64(in.Weight)
	}
	for _, p := range st.Verified {
		t.entry(p.Peers[0]).Verified += int64(p.Samples)
		t.entry(p.Peers[1]).Verified += int64(p.Samples)
	}
	want := result.String()
	for _, p := range slices.Sorted(maps.Keys(st.Commits)) {
		if r := st.Commits[p]; r != want {
			got, _ := cid.Decode(r)
			t.mismatch(p, st.Step, got, result)
		}
	}
	st.Finals = append(st.Finals, f)
	st.PrevVerified = st.Verified
	st.Step++
	st.Base = result
	st.Attempt = 0
	st.Phase, st.Open, st.Updates, st.Close, st.Commits, st.Verified = PhaseIdle, nil, nil, nil, nil, nil
	t.votes = nil
	if err := t.save(); err != nil {
		return err
	}
	t.publish(f)
	t.event("final", f.Step, "", "C_%d = %s (%d commits)", f.Step+1, result, len(voters))
	return t.maybeOpen(now)
}

// verdict handles a replica's judgement of its partner, or a checker's
// settlement of a dispute.
func (t *Tracker) verdict(from string, m *wire.Verdict) error {
	st := t.st
	if m.Checked {
		for i, d := range st.Disputes {
			if d.Step != m.Step || d.Unit != m.Unit || d.Checker != from {
				continue
			}
			for k, p := range d.Peers {
				switch {
				case d.Raws[k] != "" && d.Raws[k] != m.Raw.String():
					t.exclude(p, m.Step, fmt.Sprintf("unit %d of step %d: its pseudo-gradient differs from the third computation's", m.Unit, m.Step))
				case slices.Contains(m.Bad, p):
					t.exclude(p, m.Step, fmt.Sprintf("unit %d of step %d: its payload does not follow from its pseudo-gradient and residual", m.Unit, m.Step))
				case d.Accuser != "" && d.Accuser != p:
					// p was accused and passed the check: the accuser lied.
					t.exclude(d.Accuser, m.Step, fmt.Sprintf("unit %d of step %d: falsely accused %s", m.Unit, m.Step, p))
				}
			}
			t.entry(from).Checks++
			st.Disputes = slices.Delete(st.Disputes, i, i+1)
			return t.save()
		}
		return fmt.Errorf("verdict on step %d unit %d from %s, which is not its checker", m.Step, m.Unit, from)
	}
	// A replica's verdict on its partner: only a "bad" one matters, and
	// only about the closed step's verified pairs.
	if len(m.Bad) == 0 {
		return nil
	}
	if st.Phase != PhaseClosed || m.Step != st.Step {
		if m.Step+1 != st.Step || len(st.Finals) == 0 {
			return fmt.Errorf("verdict on step %d, which is not the last closed step", m.Step)
		}
	}
	pair, ok := t.pairOf(m.Step, m.Unit)
	if !ok {
		return fmt.Errorf("verdict on step %d unit %d, which was not a verified pair", m.Step, m.Unit)
	}
	if pair.Peers[0] != from && pair.Peers[1] != from {
		return fmt.Errorf("verdict on unit %d from %s, which is not one of its replicas", m.Unit, from)
	}
	other := pair.Peers[0]
	if other == from {
		other = pair.Peers[1]
	}
	if !slices.Equal(m.Bad, []string{other}) {
		return fmt.Errorf("verdict on unit %d names %v, not the partner %s", m.Unit, m.Bad, other)
	}
	for _, d := range st.Disputes {
		if d.Step == m.Step && d.Unit == m.Unit {
			return nil // already disputed
		}
	}
	d := &Dispute{Step: m.Step, Unit: m.Unit, Base: t.baseOf(m.Step), Peers: pair.Peers, Accuser: from}
	sortDispute(d)
	st.Disputes = append(st.Disputes, d)
	t.event("dispute", m.Step, from, "unit %d: %s says the payload of %s does not follow from its residual", m.Unit, from, other)
	return t.save()
}

// pairOf finds the verified pair of a unit in the closed step or the last
// finalised one.
func (t *Tracker) pairOf(step uint64, unit uint32) (Pair, bool) {
	var pairs []Pair
	switch {
	case step == t.st.Step && t.st.Phase == PhaseClosed:
		pairs = t.st.Verified
	case step+1 == t.st.Step:
		pairs = t.st.PrevVerified
	}
	for _, p := range pairs {
		if p.Unit == unit {
			return p, true
		}
	}
	return Pair{}, false
}

func (t *Tracker) baseOf(step uint64) cid.Cid {
	if step == t.st.Step {
		return t.st.Base
	}
	if step == 0 {
		return t.cfg.Genesis
	}
	return t.st.Finals[step-1].Checkpoint
}

func (t *Tracker) exclude(peer string, step uint64, reason string) {
	e := t.entry(peer)
	if e.Excluded {
		return
	}
	e.Excluded, e.Reason, e.ExcludedAt = true, reason, t.st.Step
	t.exclusions++
	t.live.valid = false
	t.event("exclude", step, peer, "%s", reason)
}

// excludedList returns the peers excluded from the round as an Open lists
// them: sorted, and only the wire.MaxExcluded most recently excluded
// (latest step first, then by ID) when there are more.
func (t *Tracker) excludedList() []string {
	var out []string
	for p, e := range t.st.Ledger {
		if e.Excluded {
			out = append(out, p)
		}
	}
	if len(out) > wire.MaxExcluded {
		slices.SortFunc(out, func(a, b string) int {
			if c := cmp.Compare(t.st.Ledger[b].ExcludedAt, t.st.Ledger[a].ExcludedAt); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		out = out[:wire.MaxExcluded]
	}
	slices.Sort(out)
	return out
}
