package node

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// checkBench is a checker node ("me") and a disputed unit: unit 0 of
// step 0, whose replicas in attempt 1 are an honest accuser and a liar
// (both dealt by an Open replicating every unit). Attempt 0 dealt the
// same unit to two peers whose IDs sort before both. Every peer's update
// carries its payload inline; its residual is fetched from it.
type checkBench struct {
	t      *testing.T
	n      *Node
	s      *round.Spec
	now    time.Time
	g      cid.Cid
	raw    cid.Cid
	bad    map[cid.Cid]bool        // payloads that do not follow from their residual
	claims map[string]*wire.Update // each peer's update of unit 0
	ready  Ready
}

const (
	sybilA  = "0sybil-a"
	sybilB  = "0sybil-b"
	accuser = "honest"
	liar    = "liar"
)

func newCheckBench(t *testing.T) *checkBench {
	t.Helper()
	_, s := testNode(t)
	s.VerificationRate = 1
	g := content.Sum([]byte("C0"))
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	b := &checkBench{t: t, n: n, s: s, now: time.Unix(1_800_000_000, 0), g: g, raw: content.Sum([]byte("raw of unit 0")),
		bad: map[cid.Cid]bool{}, claims: map[string]*wire.Update{}}
	// Attempt 0 deals unit 0 to the two peers that sort first; they send
	// updates that do not hold up.
	b.receive(trackerID, &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{sybilA, sybilB}, Units: 1})
	b.update(sybilA, 0, true)
	b.update(sybilB, 0, true)
	// Attempt 1 deals it to the accuser and the liar, whose raw hashes
	// agree; the liar's payload does not follow from its residual.
	b.receive(trackerID, &wire.Open{Round: s.ID(), Step: 0, Attempt: 1, Base: g, Members: []string{accuser, liar}, Units: 1})
	b.update(accuser, 1, false)
	b.update(liar, 1, true)
	b.ready = n.Ready()
	return b
}

func (b *checkBench) receive(from string, m wire.Msg) {
	b.t.Helper()
	if err := b.n.Receive(b.now, from, m); err != nil {
		b.t.Fatalf("%s from %s: %v", m.Kind(), from, err)
	}
}

// update makes peer send its update of unit 0 in an attempt.
func (b *checkBench) update(peer string, attempt uint32, bad bool) {
	b.t.Helper()
	replica := uint8(2)
	for r := range uint8(2) {
		if b.n.Dealt(0, attempt, 0, r) == peer {
			replica = r
		}
	}
	if replica == 2 {
		b.t.Fatalf("attempt %d did not deal unit 0 to %s", attempt, peer)
	}
	data := []byte(fmt.Sprintf("payload of %s", peer))
	u := &wire.Update{Round: b.s.ID(), Step: 0, Attempt: attempt, Base: b.g, Unit: 0, Replica: replica, Samples: 20, Raw: b.raw,
		Residual: content.Sum([]byte("residual of " + peer)), Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
	b.receive(peer, u)
	b.claims[peer] = u
	if bad {
		b.bad[u.Payload] = true
	}
}

// openCheck opens step 1 asking the node to check unit 0 of step 0,
// attempt 1, and returns what the node asked for.
func (b *checkBench) openCheck() Ready {
	b.t.Helper()
	c := wire.Check{Step: 0, Unit: 0, Base: b.g, Checker: "me", Attempt: 1, Peers: []string{accuser, liar}}
	b.receive(trackerID, &wire.Open{Round: b.s.ID(), Step: 1, Base: content.Sum([]byte("C1")), Members: []string{accuser, liar}, Units: 2,
		Checks: []wire.Check{c}})
	return b.n.Ready()
}

// serve answers the fetch of peer's residual.
func (b *checkBench) serve(peer string, ok bool) Ready {
	b.n.Fetched(b.now, b.claims[peer].Residual, ok)
	return b.n.Ready()
}

// judge is the engine's verdict on a VerifyJob, as ModelEngine forms it:
// the claims it cannot reproduce, in the job's order, at most MaxBad.
func (b *checkBench) judge(j VerifyJob) *wire.Verdict {
	v := &wire.Verdict{Raw: b.raw}
	for _, cl := range j.Updates {
		if b.bad[cl.Update.Payload] && !slices.Contains(v.Bad, cl.Peer) && len(v.Bad) < wire.MaxBad {
			v.Bad = append(v.Bad, cl.Peer)
		}
	}
	slices.Sort(v.Bad)
	return v
}

func checkJob(r Ready) (VerifyJob, bool) {
	for _, j := range r.Jobs {
		if v, ok := j.(VerifyJob); ok && v.Checked {
			return v, true
		}
	}
	return VerifyJob{}, false
}

func claimPeers(j VerifyJob) []string {
	var out []string
	for _, cl := range j.Updates {
		out = append(out, cl.Peer)
	}
	return out
}

// TestCheckIgnoresForeignUpdates: a check's job holds only the updates
// that the peers its Check names sent in the Check's attempt. Updates of
// the same unit from another attempt, by peers that are not the
// dispute's replicas, do not enter it, and their senders withholding
// their residuals does not hold the check up.
func TestCheckIgnoresForeignUpdates(t *testing.T) {
	b := newCheckBench(t)
	r := b.openCheck()
	for _, f := range r.Fetches {
		for _, p := range []string{sybilA, sybilB} {
			if f.CID.Equals(b.claims[p].Residual) {
				t.Errorf("the check fetches the residual of %s, whose update is of another attempt", p)
			}
		}
	}
	// The sybils never serve theirs; the replicas do.
	b.n.Fetched(b.now, b.claims[sybilA].Residual, false)
	b.serve(accuser, true)
	r = b.serve(liar, true)
	j, ok := checkJob(r)
	if !ok {
		t.Fatalf("with both replicas' residuals here, no check started (jobs %+v)", r.Jobs)
	}
	if got := claimPeers(j); !slices.Equal(got, []string{accuser, liar}) {
		t.Fatalf("the check judges %v, want the replicas [%s %s]", got, accuser, liar)
	}
	for _, cl := range j.Updates {
		if cl.Update.Attempt != 1 {
			t.Errorf("the check judges an update of attempt %d, want attempt 1", cl.Update.Attempt)
		}
	}
}

// TestAccuserNotFramedBySortOrder: the engine names at most MaxBad peers
// in a verdict, in the job's order. Bad updates from peers whose IDs
// sort first (sent in another attempt, and served) must not fill those
// slots: the verdict names the liar, so the tracker excludes it and not
// the honest accuser.
func TestAccuserNotFramedBySortOrder(t *testing.T) {
	b := newCheckBench(t)
	b.openCheck()
	b.n.Fetched(b.now, b.claims[sybilA].Residual, true)
	b.n.Fetched(b.now, b.claims[sybilB].Residual, true)
	b.serve(accuser, true)
	r := b.serve(liar, true)
	j, ok := checkJob(r)
	if !ok {
		t.Fatalf("with every residual here, no check started (jobs %+v)", r.Jobs)
	}
	b.n.Done(b.now, Result{Job: j, Verdict: b.judge(j)})
	r = b.n.Ready()
	var v *wire.Verdict
	for _, m := range r.Publish {
		if m, ok := m.(*wire.Verdict); ok {
			v = m
		}
	}
	if v == nil || !v.Checked {
		t.Fatalf("the check published %v, want a checked verdict", r.Publish)
	}
	if !slices.Equal(v.Bad, []string{liar}) {
		t.Fatalf("the verdict names %v as bad, want the liar alone: the accuser would be excluded for a false accusation", v.Bad)
	}
}

// TestWithheldResidualLosesDispute: a replica that never serves its
// residual to the checker cannot block the check: after WithheldTries
// failed fetches the check runs on what it has and its verdict names the
// withholder, which the tracker then excludes if it is still in the
// round (see the tracker's TestWithholderExcludedWhileLive).
func TestWithheldResidualLosesDispute(t *testing.T) {
	b := newCheckBench(t)
	b.openCheck()
	b.serve(accuser, true)
	every := round.HeartbeatInterval(b.s)
	var j VerifyJob
	started := false
	for try := range WithheldTries {
		if _, ok := checkJob(b.n.Ready()); ok {
			t.Fatalf("the check started after %d failed fetches of the liar's residual, before giving up on it", try)
		}
		r := b.serve(liar, false)
		if j, started = checkJob(r); started {
			if try != WithheldTries-1 {
				t.Fatalf("the check started after %d failed tries, want %d", try+1, WithheldTries)
			}
			break
		}
		b.now = b.now.Add(every)
		b.n.Tick(b.now)
		r = b.n.Ready()
		if !slices.ContainsFunc(r.Fetches, func(f Fetch) bool { return f.CID.Equals(b.claims[liar].Residual) }) {
			t.Fatalf("try %d: the residual's fetch was not retried (fetches %+v)", try+1, r.Fetches)
		}
	}
	if !started {
		t.Fatalf("after %d failed fetches of the liar's residual the check still waits", WithheldTries)
	}
	if got := claimPeers(j); !slices.Equal(got, []string{accuser}) {
		t.Fatalf("the check judges %v, want the accuser alone", got)
	}
	b.n.Done(b.now, Result{Job: j, Verdict: b.judge(j)})
	r := b.n.Ready()
	i := slices.IndexFunc(r.Publish, func(m wire.Msg) bool { return m.Kind() == wire.KindVerdict })
	if i < 0 {
		t.Fatalf("the check published %v, want its verdict", r.Publish)
	}
	if v := r.Publish[i].(*wire.Verdict); !v.Checked || len(v.Bad) != 0 || !slices.Equal(v.Withheld, []string{liar}) {
		t.Fatalf("the verdict is %+v, want a checked verdict naming the liar as withholding", v)
	}
	// The fetch is not retried any more.
	b.now = b.now.Add(every)
	b.n.Tick(b.now)
	if r := b.n.Ready(); slices.ContainsFunc(r.Fetches, func(f Fetch) bool { return f.CID.Equals(b.claims[liar].Residual) }) {
		t.Fatal("the withheld residual is still fetched after the check gave up on it")
	}
}

// TestAuditsWithinRetention: the tracker asks for an audit of step s in
// the Opens of steps up to s+tracker.AuditSteps; a node at that step
// must still hold the updates of step s that the check judges.
func TestAuditsWithinRetention(t *testing.T) {
	if tracker.AuditSteps > stepsKept {
		t.Fatalf("the tracker asks for audits up to %d steps late, but a node keeps the updates of %d steps", tracker.AuditSteps, stepsKept)
	}
}

// TestAuditWaitsForOwnUnits: an audit (a Check of one author) runs only
// once the node has no unit of the open step left to train, so that it
// does not make the node's own units miss the step's deadline; a dispute
// between replicas is checked at once.
func TestAuditWaitsForOwnUnits(t *testing.T) {
	for _, audit := range []bool{false, true} {
		t.Run(fmt.Sprintf("audit %v", audit), func(t *testing.T) {
			b := newCheckBench(t)
			peers := []string{accuser, liar}
			if audit {
				peers = []string{liar}
			}
			c1 := content.Sum([]byte("C1"))
			c := wire.Check{Step: 0, Unit: 0, Base: b.g, Checker: "me", Attempt: 1, Peers: peers}
			b.receive(trackerID, &wire.Open{Round: b.s.ID(), Step: 1, Base: c1, Members: []string{accuser, liar, "me"}, Units: 3, Checks: []wire.Check{c}})
			b.n.Ready()
			b.serve(accuser, true)
			r := b.serve(liar, true)
			if _, ok := checkJob(r); ok == audit {
				t.Fatalf("with units of its own to train, the node started the check %v, want %v", ok, !audit)
			}
			if !audit {
				return
			}
			// The step closes: the node's units are too late, and the
			// audit runs.
			b.receive(trackerID, &wire.Close{Round: b.s.ID(), Step: 1, Base: c1, Included: []wire.Included{{Peer: accuser, Unit: 0, Payload: b.g, Weight: 20}}})
			if _, ok := checkJob(b.n.Ready()); !ok {
				t.Fatal("the audit did not start once the step closed")
			}
		})
	}
}

// TestCrossCheckWithheldAsksAudit: a replica whose partner, agreeing on
// the raw hash, never serves its residual does not wait forever, nor
// accuse it (the partner may have left): after WithheldTries failed
// fetches it names the partner as withholding, which asks the tracker to
// audit the partner's update. A partner that lies on its payload cannot
// dodge the cross-check by withholding its residual.
func TestCrossCheckWithheldAsksAudit(t *testing.T) {
	_, s := testNode(t)
	s.VerificationRate = 1
	g := content.Sum([]byte("C0"))
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	receive := func(from string, m wire.Msg) {
		t.Helper()
		if err := n.Receive(now, from, m); err != nil {
			t.Fatalf("%s from %s: %v", m.Kind(), from, err)
		}
	}
	receive(trackerID, &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{"me", "partner"}, Units: 1})
	job, ok := n.Ready().Jobs[0].(TrainJob)
	if !ok {
		t.Fatal("the Open did not start my unit's training")
	}
	raw := content.Sum([]byte("raw of unit 0"))
	mine := []byte("my payload")
	n.Done(now, Result{Job: job, Update: &wire.Update{Samples: 20, Raw: raw, Residual: content.Sum([]byte("my residual")),
		Payload: content.Sum(mine), Size: uint64(len(mine)), Data: mine}})
	n.Ready()
	theirs := []byte("the partner's payload")
	pu := &wire.Update{Round: s.ID(), Step: 0, Base: g, Unit: 0, Replica: 1 - job.Replica, Samples: 20, Raw: raw,
		Residual: content.Sum([]byte("the partner's residual")), Payload: content.Sum(theirs), Size: uint64(len(theirs)), Data: theirs}
	receive("partner", pu)
	receive(trackerID, &wire.Close{Round: s.ID(), Step: 0, Base: g, Included: []wire.Included{{Peer: "me", Unit: 0, Payload: content.Sum(mine), Weight: 20}}})
	r := n.Ready()
	if !slices.ContainsFunc(r.Fetches, func(f Fetch) bool { return f.CID.Equals(pu.Residual) }) {
		t.Fatalf("the Close did not start the cross-check's fetch of the partner's residual: %+v", r.Fetches)
	}
	var v *wire.Verdict
	for try := range WithheldTries {
		n.Fetched(now, pu.Residual, false)
		for _, m := range n.Ready().Publish {
			if m, ok := m.(*wire.Verdict); ok {
				if try != WithheldTries-1 {
					t.Fatalf("a verdict after %d failed tries, want %d", try+1, WithheldTries)
				}
				v = m
			}
		}
		now = now.Add(round.HeartbeatInterval(s))
		n.Tick(now)
		n.Ready()
	}
	if v == nil {
		t.Fatalf("after %d failed fetches of the partner's residual the replica said nothing", WithheldTries)
	}
	if v.Checked || len(v.Bad) != 0 || !slices.Equal(v.Withheld, []string{"partner"}) || !v.Raw.Equals(raw) {
		t.Fatalf("the verdict is %+v, want one naming the partner as withholding, accusing no one", v)
	}
	if err := wire.WellFormed(v); err != nil {
		t.Fatal(err)
	}
}
