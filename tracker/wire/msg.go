package wire

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
)

// Kind is the type of a message.
type Kind uint8

// The message kinds.
const (
	KindHello   Kind = 1 // a peer announces itself and its head (also its heartbeat)
	KindOpen    Kind = 2 // the tracker opens an outer step
	KindUpdate  Kind = 3 // a worker's compressed update for a work unit
	KindClose   Kind = 4 // the tracker closes a step: the updates to aggregate
	KindCommit  Kind = 5 // a peer's result of applying a closed step
	KindFinal   Kind = 6 // the tracker finalises a step's checkpoint
	KindVerdict Kind = 7 // a peer's check of a replicated unit
)

var kindNames = [...]string{KindHello: "hello", KindOpen: "open", KindUpdate: "update", KindClose: "close",
	KindCommit: "commit", KindFinal: "final", KindVerdict: "verdict"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Role is what a peer does in a round.
type Role uint8

const (
	RoleWorker   Role = 1 // trains work units
	RoleObserver Role = 2 // follows, applies and commits every step, but trains nothing
)

func (r Role) String() string {
	switch r {
	case RoleWorker:
		return "worker"
	case RoleObserver:
		return "observer"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Limits on what a message may hold, so that decoding hostile bytes is
// bounded. MaxMembers bounds the members of a step (and so the peers one
// step can include); the gossip layer may impose a smaller message size.
const (
	MaxMembers     = 1 << 16
	MaxUnits       = 1 << 20
	MaxPeerLen     = round.MaxPeerIDLen
	MaxInline      = 64 << 20 // the largest payload carried inside an Update
	MaxProviders   = 16
	MaxChecks      = 1 << 10
	MaxExcluded    = 1 << 10
	MaxBad         = 2
	MaxCheckPeers  = 2 // the peers a Check judges: a dispute's two replicas, or an audit's author
	MaxAttempt     = 1 << 16
	MaxToken       = 1 << 10
	maxMessageSize = MaxInline + 1<<12
)

// Msg is a protocol message: one of *Hello, *Open, *Update, *Close,
// *Commit, *Final and *Verdict.
type Msg interface {
	Kind() Kind
	// RoundID returns the round the message belongs to.
	RoundID() cid.Cid
	// StepNum returns the outer step the message is about.
	StepNum() uint64
	check() error
	encode(e *wireEncoder)
	decode(d *wireDecoder)
}

// Hello announces a peer to the tracker and the other peers, with the last
// checkpoint it holds. Peers send it when they join and then periodically:
// it is also the heartbeat from which the tracker derives membership.
type Hello struct {
	Round cid.Cid
	Role  Role
	Step  uint64  // the step of the peer's head checkpoint
	Head  cid.Cid // the peer's head checkpoint
	// Token is the access token a closed round requires (signed by its
	// tracker for this peer); empty in an open round.
	Token []byte
	// Time is the sender's clock when it sent the Hello, in unix seconds
	// (never 0): the tracker hears a Hello only while it is recent and
	// newer than the last it heard from the peer, so that a Hello
	// replayed later does not keep a departed peer counted.
	Time uint64
}

// Open starts outer step Step from checkpoint Base. Every peer derives the
// step's work assignment from it: Assign(spec.Seed, Step·MaxAttempt+Attempt,
// Members, Units, spec.VerificationRate). Checks asks peers to settle
// disputes of earlier steps by a third computation; Excluded tells them
// whom the round no longer hears.
type Open struct {
	Round   cid.Cid
	Step    uint64
	Attempt uint32 // 0, then 1, 2, … when a step is reopened because it got no update
	// Epoch is the tracker's incarnation: 0 when the round starts, one
	// more at every restart from its stored state. A step's Open or Close
	// seen again in a later epoch tells peers that the tracker may have
	// lost what they sent for it, and they send it again; a repeat in the
	// same epoch (republished for a newcomer or a peer behind) does not.
	Epoch   uint32
	Base    cid.Cid  // C_Step, the checkpoint the step starts from
	Members []string // the workers the units are dealt to; sorted, distinct
	Units   uint32
	Checks  []Check // sorted by (Step, Unit)
	// Excluded lists the peers the tracker has excluded from the round
	// (caught lying), the most recent MaxExcluded of them if there are
	// more; sorted, distinct, none of them a member. Peers take it as the
	// round's word on standing: they ignore these peers' messages (but
	// their Hellos) and do not relay them.
	Excluded []string
	// Term is the raft term of the group member that published the Open
	// (0 for a round with one tracker, which has no group): peers follow
	// the member with the highest term they have seen and ignore the
	// Opens and Closes of lower terms, a deposed leader's. It is not part
	// of the tracker's decision: a new leader publishes the same Open
	// with its own term.
	Term uint64
}

// Check asks Checker to compute unit Unit of step Step from Base and to
// judge the updates of it that Peers sent in attempt Attempt: the two
// replicas of a disputed unit, or the author of an audited one. The
// checker judges those updates and no others (see Verdict).
type Check struct {
	Step    uint64
	Unit    uint32
	Base    cid.Cid
	Checker string
	Attempt uint32
	Peers   []string // 1 to MaxCheckPeers, sorted, distinct, the Checker not among them
}

// AssignStep returns the step number that Assign is called with for a step
// and attempt, so that a reopened step deals its units afresh.
func AssignStep(step uint64, attempt uint32) uint64 { return step*MaxAttempt + uint64(attempt) }

// Update is a worker's result for one work unit: the compressed
// pseudo-gradient and what a verifier needs to check it.
type Update struct {
	Round    cid.Cid
	Step     uint64
	Attempt  uint32
	Base     cid.Cid
	Unit     uint32
	Replica  uint8
	Samples  uint32  // sequences the unit trained on
	Loss     float32 // mean training loss over the unit
	Raw      cid.Cid // the hash of the raw pseudo-gradient: equal for honest replicas
	Residual cid.Cid // the error-feedback state the codec used, served on request
	Payload  cid.Cid // the encoded update: the CID of Data
	Size     uint64  // length of the encoded update
	Data     []byte  // the encoded update when small enough to ride along; else empty
	// Trace names the blob of the worker's state hashes after each inner
	// step (package gradient/trace), which lets a dispute be settled by
	// recomputing one inner step; undefined when the engine keeps none.
	Trace cid.Cid
}

// Included is one update a Close includes.
type Included struct {
	Peer    string
	Unit    uint32
	Payload cid.Cid
	Weight  uint32 // samples
}

// Close ends step Step: the updates to aggregate, in canonical order (by
// peer, then payload CID bytes), each at most once.
type Close struct {
	Round    cid.Cid
	Step     uint64
	Epoch    uint32 // as in Open
	Base     cid.Cid
	Included []Included
	// AuditKey, when set (AuditKeySize bytes), is the tracker's secret
	// for this step, revealed only now: it enters the hash that picks
	// the step's audits (see Audits), so no worker, not even the last
	// to send, could compute that pick before the Close.
	AuditKey []byte
	Term     uint64 // as in Open
}

// AuditKeySize is the length of a Close's AuditKey.
const AuditKeySize = 32

// Commit is a peer's result of step Step: the checkpoint C_{Step+1} it got
// by applying the Close of Step to Base.
type Commit struct {
	Round  cid.Cid
	Step   uint64
	Base   cid.Cid
	Result cid.Cid
	// Attempt is the attempt of the step whose Close was applied: a step
	// without a quorum by its deadline is dealt again, and a commit of
	// the earlier attempt's Close must not count for the later one's.
	Attempt uint32
}

// Final records that C_{Step+1} = Checkpoint: a quorum of commits agreed on
// it. Providers lists peers that committed it (and so hold it).
type Final struct {
	Round      cid.Cid
	Step       uint64
	Base       cid.Cid
	Checkpoint cid.Cid
	Providers  []string // sorted, distinct
}

// Verdict is a peer's judgement of the updates of a replicated unit: the
// hash of the raw pseudo-gradient it computed itself, and the peers whose
// payload it could not reproduce from their residual. A replica sends one
// about its partner after the step closes; a checker sends one when a
// Check names it (Checked is then true), and then Bad names only peers of
// the Check (the tracker ignores any other name).
type Verdict struct {
	Round   cid.Cid
	Step    uint64
	Unit    uint32
	Checked bool
	Raw     cid.Cid
	Bad     []string // sorted, distinct
	// Withheld lists the peers whose residual or payload the sender could
	// not fetch, so that it could not judge their update (sorted,
	// distinct, none of them in Bad): a checker's of the Check's peers, a
	// replica's of its partner (the tracker then audits the partner).
	Withheld []string
}

func (m *Hello) Kind() Kind   { return KindHello }
func (m *Open) Kind() Kind    { return KindOpen }
func (m *Update) Kind() Kind  { return KindUpdate }
func (m *Close) Kind() Kind   { return KindClose }
func (m *Commit) Kind() Kind  { return KindCommit }
func (m *Final) Kind() Kind   { return KindFinal }
func (m *Verdict) Kind() Kind { return KindVerdict }

func (m *Hello) RoundID() cid.Cid   { return m.Round }
func (m *Open) RoundID() cid.Cid    { return m.Round }
func (m *Update) RoundID() cid.Cid  { return m.Round }
func (m *Close) RoundID() cid.Cid   { return m.Round }
func (m *Commit) RoundID() cid.Cid  { return m.Round }
func (m *Final) RoundID() cid.Cid   { return m.Round }
func (m *Verdict) RoundID() cid.Cid { return m.Round }

func (m *Hello) StepNum() uint64   { return m.Step }
func (m *Open) StepNum() uint64    { return m.Step }
func (m *Update) StepNum() uint64  { return m.Step }
func (m *Close) StepNum() uint64   { return m.Step }
func (m *Commit) StepNum() uint64  { return m.Step }
func (m *Final) StepNum() uint64   { return m.Step }
func (m *Verdict) StepNum() uint64 { return m.Step }

// MessageError is a message that breaks the format or its rules. Field
// names the offending part.
type MessageError struct {
	Kind  Kind
	Field string
	Msg   string
}

func (e *MessageError) Error() string {
	if e.Kind == 0 {
		return "message: " + e.Field + ": " + e.Msg
	}
	return e.Kind.String() + " message: " + e.Field + ": " + e.Msg
}

// ErrMessage is wrapped by every MessageError, for errors.Is.
var ErrMessage = errors.New("malformed message")

func (e *MessageError) Unwrap() error { return ErrMessage }

func msgErr(k Kind, field, format string, args ...any) error {
	return &MessageError{Kind: k, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func checkPeer(k Kind, field, p string) error {
	if p == "" || len(p) > MaxPeerLen {
		return msgErr(k, field, "peer ID must be 1 to %d bytes, got %d", MaxPeerLen, len(p))
	}
	return nil
}

func checkCID(k Kind, field string, c cid.Cid, required bool) error {
	if !c.Defined() {
		if required {
			return msgErr(k, field, "missing")
		}
		return nil
	}
	if err := content.Check(c); err != nil {
		return msgErr(k, field, "%v", err)
	}
	return nil
}

// checkSortedPeers checks that ps are valid, sorted and distinct.
// The field's name is formatted only for an error: an Open lists every
// member, and this runs for each message a peer receives.
func checkSortedPeers(k Kind, field string, ps []string) error {
	for i, p := range ps {
		if p == "" || len(p) > MaxPeerLen {
			return checkPeer(k, fmt.Sprintf("%s[%d]", field, i), p)
		}
		if i > 0 && ps[i-1] >= p {
			return msgErr(k, fmt.Sprintf("%s[%d]", field, i), "not sorted or repeated")
		}
	}
	return nil
}

func (m *Hello) check() error {
	if err := checkCID(KindHello, "round", m.Round, true); err != nil {
		return err
	}
	if m.Role != RoleWorker && m.Role != RoleObserver {
		return msgErr(KindHello, "role", "unknown role %d", m.Role)
	}
	if len(m.Token) > MaxToken {
		return msgErr(KindHello, "token", "%d bytes is over the limit of %d", len(m.Token), MaxToken)
	}
	if m.Time == 0 {
		return msgErr(KindHello, "time", "missing")
	}
	return checkCID(KindHello, "head", m.Head, false)
}

func (m *Open) check() error {
	if err := checkCID(KindOpen, "round", m.Round, true); err != nil {
		return err
	}
	if err := checkCID(KindOpen, "base", m.Base, true); err != nil {
		return err
	}
	if m.Attempt >= MaxAttempt {
		return msgErr(KindOpen, "attempt", "%d is not below %d", m.Attempt, MaxAttempt)
	}
	if len(m.Members) == 0 || len(m.Members) > MaxMembers {
		return msgErr(KindOpen, "members", "need 1 to %d, got %d", MaxMembers, len(m.Members))
	}
	if err := checkSortedPeers(KindOpen, "members", m.Members); err != nil {
		return err
	}
	if m.Units == 0 || m.Units > MaxUnits {
		return msgErr(KindOpen, "units", "need 1 to %d, got %d", MaxUnits, m.Units)
	}
	if len(m.Checks) > MaxChecks {
		return msgErr(KindOpen, "checks", "at most %d, got %d", MaxChecks, len(m.Checks))
	}
	for i, c := range m.Checks {
		f := fmt.Sprintf("checks[%d]", i)
		if c.Step >= m.Step {
			return msgErr(KindOpen, f+".step", "%d is not before the open step %d", c.Step, m.Step)
		}
		if c.Unit >= MaxUnits {
			return msgErr(KindOpen, f+".unit", "%d is not below %d", c.Unit, MaxUnits)
		}
		if err := checkCID(KindOpen, f+".base", c.Base, true); err != nil {
			return err
		}
		if err := checkPeer(KindOpen, f+".checker", c.Checker); err != nil {
			return err
		}
		if c.Attempt >= MaxAttempt {
			return msgErr(KindOpen, f+".attempt", "%d is not below %d", c.Attempt, MaxAttempt)
		}
		if len(c.Peers) == 0 || len(c.Peers) > MaxCheckPeers {
			return msgErr(KindOpen, f+".peers", "need 1 to %d, got %d", MaxCheckPeers, len(c.Peers))
		}
		if err := checkSortedPeers(KindOpen, f+".peers", c.Peers); err != nil {
			return err
		}
		if slices.Contains(c.Peers, c.Checker) {
			return msgErr(KindOpen, f+".checker", "%s is one of the peers it checks", c.Checker)
		}
		if i > 0 && cmpCheck(m.Checks[i-1], c) >= 0 {
			return msgErr(KindOpen, f, "not sorted or repeated")
		}
	}
	if len(m.Excluded) > MaxExcluded {
		return msgErr(KindOpen, "excluded", "at most %d, got %d", MaxExcluded, len(m.Excluded))
	}
	if err := checkSortedPeers(KindOpen, "excluded", m.Excluded); err != nil {
		return err
	}
	for i, p := range m.Excluded {
		if _, member := slices.BinarySearch(m.Members, p); member {
			return msgErr(KindOpen, fmt.Sprintf("excluded[%d]", i), "%s is a member of the step", p)
		}
	}
	return nil
}

// SortChecks sorts checks into their canonical order, by step and unit.
func SortChecks(cs []Check) { slices.SortFunc(cs, cmpCheck) }

func cmpCheck(a, b Check) int {
	return cmp.Or(cmp.Compare(a.Step, b.Step), cmp.Compare(a.Unit, b.Unit))
}

func (m *Update) check() error {
	for _, f := range []struct {
		name string
		c    cid.Cid
	}{{"round", m.Round}, {"base", m.Base}, {"raw", m.Raw}, {"residual", m.Residual}, {"payload", m.Payload}} {
		if err := checkCID(KindUpdate, f.name, f.c, true); err != nil {
			return err
		}
	}
	if err := checkCID(KindUpdate, "trace", m.Trace, false); err != nil {
		return err
	}
	switch {
	case m.Attempt >= MaxAttempt:
		return msgErr(KindUpdate, "attempt", "%d is not below %d", m.Attempt, MaxAttempt)
	case m.Unit >= MaxUnits:
		return msgErr(KindUpdate, "unit", "%d is not below %d", m.Unit, MaxUnits)
	case m.Replica > 1:
		return msgErr(KindUpdate, "replica", "must be 0 or 1, got %d", m.Replica)
	case m.Samples == 0:
		return msgErr(KindUpdate, "samples", "must be positive")
	case math.IsNaN(float64(m.Loss)) || math.IsInf(float64(m.Loss), 0):
		return msgErr(KindUpdate, "loss", "not finite")
	case m.Size == 0:
		return msgErr(KindUpdate, "size", "must be positive")
	case len(m.Data) > MaxInline:
		return msgErr(KindUpdate, "data", "%d bytes is over the inline limit of %d", len(m.Data), MaxInline)
	case len(m.Data) != 0 && uint64(len(m.Data)) != m.Size:
		return msgErr(KindUpdate, "data", "%d bytes, but size says %d", len(m.Data), m.Size)
	}
	if len(m.Data) != 0 && !content.Sum(m.Data).Equals(m.Payload) {
		return msgErr(KindUpdate, "data", "does not hash to the payload CID %s", m.Payload)
	}
	return nil
}

// cmpIncluded is the canonical order of included updates.
func cmpIncluded(a, b Included) int {
	return cmp.Or(strings.Compare(a.Peer, b.Peer), strings.Compare(a.Payload.KeyString(), b.Payload.KeyString()))
}

// SortIncluded puts included updates in canonical order.
func SortIncluded(in []Included) { slices.SortFunc(in, cmpIncluded) }

func (m *Close) check() error {
	if err := checkCID(KindClose, "round", m.Round, true); err != nil {
		return err
	}
	if err := checkCID(KindClose, "base", m.Base, true); err != nil {
		return err
	}
	if len(m.Included) == 0 || len(m.Included) > MaxUnits {
		return msgErr(KindClose, "included", "need 1 to %d updates, got %d", MaxUnits, len(m.Included))
	}
	if n := len(m.AuditKey); n != 0 && n != AuditKeySize {
		return msgErr(KindClose, "audit_key", "need 0 or %d bytes, got %d", AuditKeySize, n)
	}
	for i, in := range m.Included {
		f := fmt.Sprintf("included[%d]", i)
		if err := checkPeer(KindClose, f+".peer", in.Peer); err != nil {
			return err
		}
		if in.Unit >= MaxUnits {
			return msgErr(KindClose, f+".unit", "%d is not below %d", in.Unit, MaxUnits)
		}
		if err := checkCID(KindClose, f+".payload", in.Payload, true); err != nil {
			return err
		}
		if in.Weight == 0 {
			return msgErr(KindClose, f+".weight", "must be positive")
		}
		if i > 0 && cmpIncluded(m.Included[i-1], in) >= 0 {
			return msgErr(KindClose, f, "not in canonical order or repeated")
		}
	}
	return nil
}

func (m *Commit) check() error {
	if err := checkCID(KindCommit, "round", m.Round, true); err != nil {
		return err
	}
	if err := checkCID(KindCommit, "base", m.Base, true); err != nil {
		return err
	}
	if m.Attempt >= MaxAttempt {
		return msgErr(KindCommit, "attempt", "%d is not below %d", m.Attempt, MaxAttempt)
	}
	return checkCID(KindCommit, "result", m.Result, true)
}

func (m *Final) check() error {
	if err := checkCID(KindFinal, "round", m.Round, true); err != nil {
		return err
	}
	if err := checkCID(KindFinal, "base", m.Base, true); err != nil {
		return err
	}
	if err := checkCID(KindFinal, "checkpoint", m.Checkpoint, true); err != nil {
		return err
	}
	if len(m.Providers) > MaxProviders {
		return msgErr(KindFinal, "providers", "at most %d, got %d", MaxProviders, len(m.Providers))
	}
	return checkSortedPeers(KindFinal, "providers", m.Providers)
}

func (m *Verdict) check() error {
	if err := checkCID(KindVerdict, "round", m.Round, true); err != nil {
		return err
	}
	if err := checkCID(KindVerdict, "raw", m.Raw, true); err != nil {
		return err
	}
	if m.Unit >= MaxUnits {
		return msgErr(KindVerdict, "unit", "%d is not below %d", m.Unit, MaxUnits)
	}
	if len(m.Bad) > MaxBad {
		return msgErr(KindVerdict, "bad", "at most %d peers, got %d", MaxBad, len(m.Bad))
	}
	if err := checkSortedPeers(KindVerdict, "bad", m.Bad); err != nil {
		return err
	}
	if len(m.Withheld) > MaxCheckPeers {
		return msgErr(KindVerdict, "withheld", "at most %d peers, got %d", MaxCheckPeers, len(m.Withheld))
	}
	if err := checkSortedPeers(KindVerdict, "withheld", m.Withheld); err != nil {
		return err
	}
	for i, p := range m.Withheld {
		if slices.Contains(m.Bad, p) {
			return msgErr(KindVerdict, fmt.Sprintf("withheld[%d]", i), "%s is also bad", p)
		}
	}
	return nil
}

// WellFormed reports whether m is a well-formed message: every field in
// range, lists sorted and distinct, CIDs of the kinds the protocol uses.
func WellFormed(m Msg) error { return m.check() }
