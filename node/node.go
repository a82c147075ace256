package node

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Config configures a Node.
type Config struct {
	ID      string      // this peer's ID
	Role    wire.Role   // RoleWorker or RoleObserver
	Spec    *round.Spec // the round
	Genesis cid.Cid     // C_0, which every node can make from the spec
	// HeadStep and Head resume a node from the checkpoint it held when it
	// stopped (C_HeadStep); zero and cid.Undef start from the genesis.
	HeadStep uint64
	Head     cid.Cid
	// InlineLimit is the largest payload sent inside an Update; larger
	// ones are fetched by CID from the sender. 0 means wire.MaxInline.
	InlineLimit int
	// Token is the access token of a closed round, sent with every Hello.
	Token []byte
	// GenesisMissing says that the store lacks the genesis, a checkpoint
	// the round names (init_checkpoint) rather than one the node made:
	// unless it starts from a later head, the node fetches it before it
	// trains or applies anything.
	GenesisMissing bool

	// Optional hooks for drivers that run many nodes in one process (the
	// simulator). Left nil, as the daemon leaves them, the node does the
	// work itself; set, each must answer exactly as the default would.

	// Present reports content that is in the node's store although the
	// core was not told of it (a Receive, Done or Fetched): a simulator
	// that delivers a step's updates in bulk marks them present this way
	// instead of handing each to every node.
	Present func(id cid.Cid) bool
	// PresentAll, if set, reports whether Present holds for the payload
	// of every one of a Close's included updates; false means it may
	// not, and each is looked at. Every node checks every payload of
	// each Close it applies; the driver knows at once whether a whole
	// batch is in.
	PresentAll func(included []wire.Included) bool
	// Validate replaces wire.Validate in Receive. A driver that hands
	// every receiver the same decoded message may check its form once.
	Validate func(v wire.View, from string, m wire.Msg) (wire.Result, error)
	// Assignments replaces the round.Assign of an Open's units. A
	// driver running many nodes computes it once per step; the result is
	// shared and read only.
	Assignments func(o *wire.Open) []round.Assignment
}

// Node is a participant of a round (a worker or an observer) as a
// deterministic state machine. Messages (Receive), clock ticks (Tick) and
// the results of the work it asked for (Done, Fetched) go in; Ready gives
// what to publish, compute and fetch. It has no goroutines, sockets, clocks
// or randomness: the daemon, the simulator and the tests drive the same
// code, and the same inputs in the same order give the same outputs.
//
// A Node is not safe for concurrent use.
type Node struct {
	cfg     Config
	spec    *round.Spec
	round   cid.Cid
	tracker string
	group   []string // the spec's trackers, canonical (computed once: every message's validation asks)

	headStep uint64
	head     cid.Cid
	// agreed is the detail of the event that says the tracker finalised
	// the head, C_agreedStep = agreedHead (see agreedDetail).
	agreed     string
	agreedStep uint64
	agreedHead cid.Cid
	// Content in the store that the core knows of, in two generations:
	// have since the last head change, had before it. Older knowledge is
	// dropped (the driver answers a fetch of content it holds at once).
	have, had map[cid.Cid]bool

	open     *wire.Open // the latest Open of the tracker
	epoch    uint32     // the latest tracker epoch seen in an Open or Close
	term     uint64     // the highest raft term of a tracker group seen in an Open or Close (0: one tracker)
	deal     *Deal      // its assignment (never changed: may be shared)
	deals    Deals      // the deals of the recent Opens, deal last (never changed: may be shared)
	close    *wire.Close
	finals   map[uint64]*wire.Final  // recent Finals by step
	commits  map[uint64]*wire.Commit // my recent commits by step
	excluded []string                // the peers the latest Open says the tracker excluded: its own sorted list, shared and never changed

	// Work of the current step.
	queue    []round.Assignment // my units of the open step still to train, in order
	training *TrainJob          // the TrainJob running
	mine     map[uint64][]*wire.Update
	applying *ApplyJob
	// applyAttempt is the attempt of the step whose Close is applied: the
	// commit names it, so that the tracker does not count it for the
	// Close of another attempt.
	applyAttempt uint32
	verifies     map[verifyKey]*pendingVerify
	serving      map[verifyKey]*pendingState // states materialised for checkers of my disputed units (bisect.go)
	// Updates seen, by step, for fetching payloads and pairing replicas.
	seen map[uint64]map[cid.Cid]seenUpdate

	fetching map[cid.Cid]*pendingFetch
	credit   int64              // samples of own units a replica confirmed
	credited map[creditKey]bool // the unit copies credited, of recent steps
	catchUp  cid.Cid            // a checkpoint being fetched to become the head
	catchTo  uint64             // the step it starts

	providers map[cid.Cid][]string // peers that announced they hold a checkpoint
	// disowned is the last checkpoint the tracker named for a step whose
	// checkpoint the node computed otherwise (see keepsOwn).
	disowned cid.Cid

	lastHello time.Time
	helloDue  bool
	now       time.Time
	ready     Ready
	stopped   bool
}

type seenUpdate struct {
	from string
	u    *wire.Update
}

// creditKey names a unit copy of one attempt of a step.
type creditKey struct {
	step    uint64
	attempt uint32
	unit    uint32
}

type verifyKey struct {
	step uint64
	unit uint32
}

type pendingVerify struct {
	job     VerifyJob
	started bool
	state   cid.Cid   // the training state a checked job's bisection waits for (bisect.go)
	since   time.Time // when a checked job began to wait for traces, or for state
	waiting bool      // it waits for them
	audit   bool      // a check of one author's update (see startCheck)
	// withheld lists the peers of a check whose residual or payload
	// could not be fetched (see WithheldTries): the verdict names them.
	withheld []string
}

type pendingFetch struct {
	kind      FetchKind
	providers []string
	failedAt  time.Time
	failed    bool
	failures  int // failed tries so far
}

// WithheldTries is how many failed tries to fetch a residual or payload
// that a check or a cross-check needs the node makes (one per heartbeat
// interval, see Tick) before it stops waiting for it. A checker then
// judges the other claims and names the peer in its verdict's Withheld:
// a check must not wait forever on the party it judges, and the tracker
// rules against a withholder still in the round (one that left is not
// judged). A replica cross-checking its partner gives up and names the
// partner in a verdict's Withheld instead of accusing it (it may simply
// have left): the tracker then audits the partner's update.
const WithheldTries = 5

// stepsKept is how many past steps of updates a node remembers.
const stepsKept = Retention - 1

// New returns a node that starts from cfg.Head (or the genesis).
func New(cfg Config) (*Node, error) {
	if cfg.Spec == nil {
		return nil, errors.New("node: no spec")
	}
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		return nil, errors.New("node: no peer ID")
	}
	if cfg.Role != wire.RoleWorker && cfg.Role != wire.RoleObserver {
		return nil, fmt.Errorf("node: unknown role %v", cfg.Role)
	}
	if !cfg.Genesis.Defined() {
		return nil, errors.New("node: no genesis checkpoint")
	}
	if cfg.InlineLimit <= 0 || cfg.InlineLimit > wire.MaxInline {
		cfg.InlineLimit = wire.MaxInline
	}
	n := &Node{
		cfg: cfg, spec: cfg.Spec, round: cfg.Spec.ID(), tracker: cfg.Spec.Trackers[0], group: cfg.Spec.TrackerIDs(),
		headStep: 0, head: cfg.Genesis,
		have: map[cid.Cid]bool{cfg.Genesis: true}, had: map[cid.Cid]bool{}, finals: map[uint64]*wire.Final{}, commits: map[uint64]*wire.Commit{},
		mine:     map[uint64][]*wire.Update{},
		verifies: map[verifyKey]*pendingVerify{}, seen: map[uint64]map[cid.Cid]seenUpdate{},
		fetching: map[cid.Cid]*pendingFetch{}, providers: map[cid.Cid][]string{},
		helloDue: true,
	}
	if cfg.Head.Defined() {
		n.headStep, n.head = cfg.HeadStep, cfg.Head
		n.keep(cfg.Head)
	} else if cfg.GenesisMissing {
		delete(n.have, cfg.Genesis)
		n.catchUp, n.catchTo = cfg.Genesis, 0
		n.fetch(cfg.Genesis, FetchCheckpoint, nil)
	}
	return n, nil
}

// Round returns the round ID.
func (n *Node) Round() cid.Cid { return n.round }

// TrackerID returns the tracker's peer ID.
func (n *Node) TrackerID() string { return n.tracker }

// IsTracker reports whether peer is one of the round's trackers (see
// wire.Grouped).
func (n *Node) IsTracker(peer string) bool {
	return peer == n.tracker || slices.Contains(n.group, peer)
}

// staleLeader reports whether an Open or Close of a term is from a
// group member deposed since: one of a lower term than the highest the
// node has seen. A round with one tracker has term 0 throughout.
func (n *Node) staleLeader(term uint64) error {
	if term < n.term {
		return fmt.Errorf("from a deposed leader: term %d, the group is at term %d", term, n.term)
	}
	return nil
}

// ID returns the node's own peer ID.
func (n *Node) ID() string { return n.cfg.ID }

// Head returns the step the node is at and the checkpoint it starts from.
func (n *Node) Head() (uint64, cid.Cid) { return n.headStep, n.head }

// Excluded reports whether the node knows peer to be excluded: the
// latest Open from the tracker lists it. Validate then ignores the peer's
// messages (but its Hellos).
func (n *Node) Excluded(peer string) bool {
	_, ok := slices.BinarySearch(n.excluded, peer)
	return ok
}

// Dealt returns the peer that the Open of the given step and attempt,
// the one the node holds or one of the few before it, dealt a unit copy
// to, or "" (see wire.Dealer): Validate ignores an Update from anyone
// else, and one of a step whose Open the node has not seen.
func (n *Node) Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string {
	return n.deals.Dealt(step, attempt, unit, replica)
}

// Deals returns the deals of the Open the node holds and of the few
// before it (an update of the step before may still be worth having: a
// check of a disputed unit collects them). They are never changed once
// returned, so a driver may share them with its gossip validator.
func (n *Node) Deals() Deals { return n.deals }

// ExcludedPeers returns the peers the node knows to be excluded, sorted.
// The slice is the latest Open's own and is never changed (a new list
// replaces it), so a driver may share it with its gossip validator; it
// must not modify it. Every node of a simulation that receives the same
// Open shares one list.
func (n *Node) ExcludedPeers() []string { return n.excluded }

// Final returns the Final of a step, if the node has seen it.
func (n *Node) Final(step uint64) (*wire.Final, bool) {
	f, ok := n.finals[step]
	return f, ok
}

// Ready returns what the core has for its driver and forgets it.
func (n *Node) Ready() Ready {
	r := n.ready
	n.ready = Ready{}
	return r
}

func (n *Node) publish(m wire.Msg) { n.ready.Publish = append(n.ready.Publish, m) }

func (n *Node) event(kind wire.EventKind, step uint64, format string, args ...any) {
	n.ready.Events = append(n.ready.Events, Event{Kind: kind, Step: step, Detail: fmt.Sprintf(format, args...)})
}

// agreedDetail returns the detail of the event that says the tracker
// finalised the head, made once per head: the tracker republishes its
// last Final to every node while a step runs, and a node that agrees
// says so each time.
func (n *Node) agreedDetail() string {
	if n.agreed == "" || n.agreedStep != n.headStep || !n.agreedHead.Equals(n.head) {
		n.agreed = fmt.Sprintf("C_%d = %s agreed", n.headStep, n.head)
		n.agreedStep, n.agreedHead = n.headStep, n.head
	}
	return n.agreed
}

func (n *Node) has(id cid.Cid) bool {
	return n.have[id] || n.had[id] || (n.cfg.Present != nil && n.cfg.Present(id))
}

// hasAll reports whether the payload of every one of included is in
// the store.
func (n *Node) hasAll(included []wire.Included) bool {
	if n.cfg.PresentAll != nil && n.cfg.PresentAll(included) {
		return true
	}
	for _, in := range included {
		if !n.has(in.Payload) {
			return false
		}
	}
	return true
}

func (n *Node) keep(id cid.Cid) { n.have[id] = true }

func (n *Node) setHead(step uint64, id cid.Cid) {
	n.headStep, n.head = step, id
	n.had, n.have = n.have, map[cid.Cid]bool{id: true}
	if n.catchUp.Defined() && n.catchTo <= step {
		n.catchUp = cid.Undef // got there another way; a fetch still running is harmless
	}
	n.ready.HeadStep, n.ready.Head, n.ready.HeadChanged = step, id, true
	n.helloDue = true
	// Forget what is too old to matter.
	for s := range n.seen {
		if s+stepsKept < step {
			delete(n.seen, s)
		}
	}
	for s := range n.mine {
		if s+stepsKept < step {
			delete(n.mine, s)
		}
	}
	for s := range n.finals {
		if s+stepsKept < step {
			delete(n.finals, s)
		}
	}
	for s := range n.commits {
		if s+stepsKept < step {
			delete(n.commits, s)
		}
	}
	for k := range n.credited {
		if k.step+stepsKept < step {
			delete(n.credited, k)
		}
	}
}

// confirm credits the node with the samples of each of its updates of
// step that another replica's update of the same unit confirms (the same
// raw pseudo-gradient), once per unit: the credit the tracker gives for
// verified work, as far as this node has seen it.
func (n *Node) confirm(step uint64) {
	for _, mine := range n.mine[step] {
		k := creditKey{step, mine.Attempt, mine.Unit}
		if n.credited[k] {
			continue
		}
		for _, su := range n.seen[step] {
			u := su.u
			if su.from != n.cfg.ID && u.Attempt == mine.Attempt && u.Unit == mine.Unit && u.Replica != mine.Replica && u.Raw.Equals(mine.Raw) {
				if n.credited == nil {
					n.credited = map[creditKey]bool{}
				}
				n.credited[k] = true
				n.credit += int64(mine.Samples)
				break
			}
		}
	}
}

// Credit returns the samples of the node's own units that a replica's
// update has confirmed so far (see confirm).
func (n *Node) Credit() int64 { return n.credit }

// Leave stops the node: it asks for nothing more and ignores every input.
// The tracker notices the silence.
func (n *Node) Leave() { n.stopped = true }

// Tick advances the node's clock: it sends its heartbeat and retries
// fetches that failed.
func (n *Node) Tick(now time.Time) {
	if n.stopped {
		return
	}
	n.now = now
	every := round.HeartbeatInterval(n.spec)
	if n.helloDue || now.Sub(n.lastHello) >= every {
		n.helloDue = false
		n.lastHello = now
		n.publish(&wire.Hello{Round: n.round, Role: n.cfg.Role, Step: n.headStep, Head: n.head, Token: n.cfg.Token,
			Time: uint64(max(now.Unix(), 1))})
	}
	for _, id := range sortedCIDs(n.fetching) {
		f := n.fetching[id]
		if f.failed && now.Sub(f.failedAt) >= every {
			f.failed = false
			n.ready.Fetches = append(n.ready.Fetches, Fetch{CID: id, Kind: f.kind, Providers: n.providersFor(id, f.providers)})
		}
	}
	n.tickBisect()
}

func sortedCIDs[V any](m map[cid.Cid]V) []cid.Cid {
	out := make([]cid.Cid, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b cid.Cid) int { return compareCID(a, b) })
	return out
}

func compareCID(a, b cid.Cid) int {
	ka, kb := a.KeyString(), b.KeyString()
	switch {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}

// Receive handles a message from a peer, already accepted by Validate (it
// is checked again). An Update carrying its payload (Data) must have been
// put in the store by the driver before Receive is called. The returned
// error, for the driver's log, says why a message was refused.
func (n *Node) Receive(now time.Time, from string, m wire.Msg) error {
	return n.receive(now, from, m, nil)
}

// receive is Receive with a hook for the Loop: place, if not nil, is
// called with an Update that passed Validate just before the core takes
// it, if the core is to keep it (see takes), so that its payload is in
// the store first and the payload of anything else is not.
func (n *Node) receive(now time.Time, from string, m wire.Msg, place func(*wire.Update)) error {
	if n.stopped {
		return nil
	}
	n.now = now
	validate := wire.Validate
	if n.cfg.Validate != nil {
		validate = n.cfg.Validate
	}
	if r, err := validate(n, from, m); r != wire.Accept {
		return err
	}
	switch m := m.(type) {
	case *wire.Hello:
		if m.Head.Defined() {
			n.addProvider(m.Head, from)
		}
	case *wire.Open:
		if err := n.staleLeader(m.Term); err != nil {
			return err
		}
		n.onOpen(m)
	case *wire.Update:
		if place != nil && n.takes(from, m) {
			place(m)
		}
		n.onUpdate(from, m)
	case *wire.Close:
		if err := n.staleLeader(m.Term); err != nil {
			return err
		}
		n.onClose(m)
	case *wire.Commit:
		n.addProvider(m.Result, from)
	case *wire.Final:
		n.onFinal(m)
	case *wire.Verdict:
		// Verdicts are for the tracker.
	}
	return nil
}

// abandonStep drops the work of the step the node was on as it takes
// C_step = head from elsewhere. What belongs to the step it moves to
// stays: a node that catches up to the step just opened still trains
// the units it was dealt there, and one that has the step's Close
// already applies it.
func (n *Node) abandonStep(step uint64, head cid.Cid) {
	if o := n.open; o == nil || o.Step != step || !o.Base.Equals(head) {
		n.queue = nil
	}
	n.applying = nil // a result that comes back is ignored by its step
	if c := n.close; c != nil && c.Step == step && c.Base.Equals(head) {
		n.fetchIncluded(c.Included)
	} else {
		n.close = nil
	}
}

// onOpen starts a step: adopt its base if needed, then train my units.
func (n *Node) onOpen(o *wire.Open) {
	if n.open != nil && (o.Step < n.open.Step || (o.Step == n.open.Step && o.Attempt < n.open.Attempt)) {
		return // stale
	}
	n.learnExclusions(o.Excluded)
	repeat := n.open != nil && n.open.Step == o.Step && n.open.Attempt == o.Attempt
	if !repeat {
		n.redealt(o)
	}
	if o.Step < n.headStep {
		return
	}
	// A restarted tracker (a later epoch) or a group's new leader (a
	// higher term) may have lost what I sent.
	restarted := o.Epoch > n.epoch || o.Term > n.term
	n.open, n.epoch, n.term = o, max(n.epoch, o.Epoch), max(n.term, o.Term)
	if repeat {
		// The tracker republished the step. If it restarted since it
		// first opened it, it may have lost my updates: send them again.
		// (A republication for a newcomer or a peer behind, in the same
		// epoch, asks nothing of me.)
		if restarted {
			for _, u := range n.mine[o.Step] {
				if u.Attempt == o.Attempt {
					n.publish(u)
				}
			}
		}
	} else {
		n.queue = nil
		n.deal = &Deal{step: o.Step, attempt: o.Attempt, copies: n.assignments(o)}
		n.deals = n.deals.With(n.deal)
		for _, a := range n.deal.copies {
			if a.Peer == n.cfg.ID && n.cfg.Role == wire.RoleWorker {
				n.queue = append(n.queue, a)
			}
		}
		for _, c := range o.Checks {
			if c.Checker == n.cfg.ID {
				n.startCheck(c)
			}
			n.serveCheck(c)
		}
	}
	switch {
	case o.Step == n.headStep && o.Base.Equals(n.head):
	case n.applying != nil && n.applying.Step+1 == o.Step:
		// My own C_{o.Step} is being computed: Done compares it.
	default:
		n.adopt(o.Step, o.Base, nil)
	}
	n.progress()
}

// redealt handles an Open that deals again a step the tracker had
// closed: the step got no quorum of commits by its deadline, so its Close
// is void, and so is my C_{step+1} from it unless the round finalised
// it. I go back to the step's base.
func (n *Node) redealt(o *wire.Open) {
	if c := n.close; c != nil && c.Step == o.Step {
		n.close = nil
	}
	if a := n.applying; a != nil && a.Step == o.Step {
		n.applying = nil // a result that comes back is ignored by its step
	}
	if o.Step+1 != n.headStep || n.finals[o.Step] != nil {
		return
	}
	delete(n.commits, o.Step)
	n.event(wire.EventReopen, o.Step, "the tracker dealt step %d again: my C_%d = %s was not agreed; back to C_%d = %s", o.Step, n.headStep, n.head, o.Step, o.Base)
	n.headStep = o.Step // let adopt replace the head no quorum agreed on
	n.adopt(o.Step, o.Base, nil)
}

// learnExclusions takes an Open's list of excluded peers as the round's
// word on standing, replacing what an earlier Open said (the list is the
// tracker's whole ledger of exclusions, or its most recent part).
func (n *Node) learnExclusions(excluded []string) {
	if slices.Equal(excluded, n.excluded) {
		return
	}
	was := n.Excluded(n.cfg.ID)
	n.excluded = excluded // sorted and distinct: wire checks it
	if n.Excluded(n.cfg.ID) && !was {
		n.event(wire.EventExcluded, n.headStep, "the tracker excluded this peer from the round: its messages are ignored")
	}
}

// assignments returns the assignment of an Open's units.
func (n *Node) assignments(o *wire.Open) []round.Assignment {
	if n.cfg.Assignments != nil {
		return n.cfg.Assignments(o)
	}
	return assign(n.spec, o)
}

// dealtTo returns the peer the open step dealt a unit copy to, or "".
func (n *Node) dealtTo(unit uint32, replica uint8) string { return n.deal.peer(unit, replica) }

// keepsOwn reports whether the node keeps its head C_step rather than
// take id, which the tracker says C_step is: it does when it computed
// C_step itself, by applying the step's Close to its base (computation
// is deterministic, so it knows the right CID). The Final or Open that
// names another checkpoint is evidence against whoever committed it,
// and the node says so once (an event), and fetches nothing. A node
// that restarts has forgotten its commits and follows the tracker.
func (n *Node) keepsOwn(step uint64, id cid.Cid, said string) bool {
	cm := n.commits[step-1]
	if step == 0 || step != n.headStep || cm == nil || !cm.Result.Equals(n.head) || id.Equals(n.head) {
		return false
	}
	if !n.disowned.Equals(id) {
		n.disowned = id
		n.event(wire.EventMismatch, step-1, "my C_%d is %s, computed from the step's Close; the tracker %s %s: keeping mine (evidence against the committers of %s)", step, n.head, said, id, id)
	}
	return true
}

// adopt makes the node fetch checkpoint id and take it as C_step.
func (n *Node) adopt(step uint64, id cid.Cid, providers []string) {
	if step < n.headStep || (step == n.headStep && id.Equals(n.head)) {
		return
	}
	if n.keepsOwn(step, id, "names") {
		return
	}
	if n.has(id) {
		n.event(wire.EventCatchUp, step, "now at C_%d = %s", step, id)
		n.abandonStep(step, id)
		n.setHead(step, id)
		return
	}
	if n.catchUp.Defined() && n.catchTo > step {
		return
	}
	n.catchUp, n.catchTo = id, step
	n.fetch(id, FetchCheckpoint, providers)
}

// takes reports whether the core takes an update received from a peer,
// and so wants the payload it carries: one of a unit copy that the Open
// of its step and attempt, which the node holds or held recently, dealt
// to that peer. Validate has ignored the other updates already, unless a
// driver's own Validate does not ask the node's Dealt; takes asks it in
// any case. (The payload of one the core has seen is taken again if the
// store lost it: it is the same bytes, under the same CID.)
func (n *Node) takes(from string, u *wire.Update) bool {
	return n.Dealt(u.Step, u.Attempt, u.Unit, u.Replica) == from
}

func (n *Node) onUpdate(from string, u *wire.Update) {
	if u.Step+stepsKept < n.headStep {
		return
	}
	if o := n.open; o != nil && o.Step == u.Step && o.Attempt == u.Attempt && n.dealtTo(u.Unit, u.Replica) != from {
		return // not this peer's unit: no work is spent on it
	}
	m := n.seen[u.Step]
	if m == nil {
		m = map[cid.Cid]seenUpdate{}
		n.seen[u.Step] = m
	}
	if _, dup := m[u.Payload]; dup {
		return
	}
	meta := *u
	meta.Data = nil
	m[u.Payload] = seenUpdate{from: from, u: &meta}
	if len(u.Data) > 0 {
		n.keep(u.Payload)
	}
	n.confirm(u.Step)
	n.progress()
}

func (n *Node) onClose(c *wire.Close) {
	restarted := c.Epoch > n.epoch || c.Term > n.term
	n.epoch, n.term = max(n.epoch, c.Epoch), max(n.term, c.Term)
	if cm := n.commits[c.Step]; cm != nil && cm.Base.Equals(c.Base) {
		// The tracker republished a close I have applied. If it
		// restarted since, it may have lost my commit: commit again.
		if restarted {
			n.publish(cm)
		}
		return
	}
	if c.Step < n.headStep {
		return
	}
	if n.close != nil && n.close.Step == c.Step {
		return // a repeat of the close I am working on
	}
	n.close = c
	if n.open == nil || n.open.Step <= c.Step {
		n.queue = nil // the step is over: untrained units are too late
	}
	if c.Step == n.headStep && c.Base.Equals(n.head) {
		n.fetchIncluded(c.Included)
		n.crossChecks(c)
	} else if n.headStep == c.Step+1 {
		// Already past it (restart after commit): nothing to do.
		n.close = nil
	} else if !n.catchUp.Defined() {
		n.adopt(c.Step, c.Base, nil)
	}
	n.progress()
}

// crossChecks starts, for each replicated unit I computed whose partner
// agreed with me on the raw pseudo-gradient, a check of the partner's
// payload against its residual.
func (n *Node) crossChecks(c *wire.Close) {
	if n.cfg.Role != wire.RoleWorker {
		return
	}
	for _, mine := range n.mine[c.Step] {
		var partner *seenUpdate
		for _, s := range n.seen[c.Step] {
			if s.from != n.cfg.ID && s.u.Unit == mine.Unit && s.u.Attempt == mine.Attempt && s.u.Replica != mine.Replica {
				partner = &s
				break
			}
		}
		if partner == nil || !partner.u.Raw.Equals(mine.Raw) {
			continue // no pair to check, or a raw dispute the tracker settles
		}
		key := verifyKey{c.Step, mine.Unit}
		if n.verifies[key] != nil {
			continue
		}
		job := VerifyJob{Step: c.Step, Base: c.Base, Unit: mine.Unit, Updates: []Claim{{Peer: partner.from, Update: partner.u}}}
		n.verifies[key] = &pendingVerify{job: job}
		n.fetch(partner.u.Residual, FetchBlob, []string{partner.from})
		n.fetch(partner.u.Payload, FetchBlob, []string{partner.from})
	}
}

// startCheck starts a third computation of a disputed unit.
func (n *Node) startCheck(c wire.Check) {
	key := verifyKey{c.Step, c.Unit}
	if n.verifies[key] != nil {
		return
	}
	job := VerifyJob{Step: c.Step, Base: c.Base, Unit: c.Unit, Checked: true}
	// The claims are the updates of the unit that the peers the Check
	// names sent in its attempt: an update of another attempt, or from
	// anyone else, is not judged (it could only fill the verdict with
	// names the tracker ignores, or hold the check up by withholding its
	// residual).
	for _, s := range n.seen[c.Step] {
		if s.u.Unit == c.Unit && s.u.Attempt == c.Attempt && s.u.Base.Equals(c.Base) && slices.Contains(c.Peers, s.from) {
			job.Updates = append(job.Updates, Claim{Peer: s.from, Update: s.u})
		}
	}
	slices.SortFunc(job.Updates, func(a, b Claim) int {
		if a.Peer != b.Peer {
			if a.Peer < b.Peer {
				return -1
			}
			return 1
		}
		return compareCID(a.Update.Payload, b.Update.Payload)
	})
	n.verifies[key] = &pendingVerify{job: job, audit: len(c.Peers) == 1}
	n.fetch(c.Base, FetchCheckpoint, nil)
	for _, cl := range job.Updates {
		n.fetch(cl.Update.Residual, FetchBlob, []string{cl.Peer})
		n.fetch(cl.Update.Payload, FetchBlob, []string{cl.Peer})
	}
}

func (n *Node) onFinal(f *wire.Final) {
	n.finals[f.Step] = f
	n.addProviders(f.Checkpoint, f.Providers)
	next := f.Step + 1
	switch {
	case n.headStep > next:
		return
	case n.headStep == next && n.head.Equals(f.Checkpoint):
		n.ready.Events = append(n.ready.Events, Event{Kind: wire.EventFinal, Step: f.Step, Detail: n.agreedDetail()})
		return
	case n.headStep == next && n.keepsOwn(next, f.Checkpoint, "finalised"):
		return
	case n.headStep == next:
		n.event(wire.EventMismatch, f.Step, "my C_%d is %s, the round finalised %s: fetching it", next, n.head, f.Checkpoint)
		n.headStep = f.Step // let adopt replace the wrong head
		n.adopt(next, f.Checkpoint, f.Providers)
	case n.applying != nil && n.applying.Step == f.Step && n.applying.Base.Equals(f.Base):
		return // my own result is on its way; Done compares it
	default:
		n.adopt(next, f.Checkpoint, f.Providers)
	}
	n.progress()
}
