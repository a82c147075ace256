package tracker

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestAdaptiveLiarIsAudited: a worker that lies only on the units the
// Open did not replicate (the only ones where, before the step closes, it
// can know that no replica will contradict it) is still caught: the
// updates of a finalised step are audited with the spec's verification
// rate, by a choice made from the Close, and a third computation of an
// audited unit excludes the liar. The round's seed is fixed, so the test
// is deterministic; TestAuditsOfTheClose checks the rate itself.
func TestAdaptiveLiarIsAudited(t *testing.T) {
	h := newHarness(t, testSpec(8, 0.25), nil)
	workers := []string{"liar", "w1", "w2", "w3"}
	h.join(wire.RoleWorker, workers...)
	h.tick(0)
	honest := func(step uint64, unit uint32) string { return fmt.Sprintf("raw/%d/%d", step, unit) }
	lies, audits := 0, 0
	const steps = 40
	for range steps {
		o := h.current()
		// The checkers the Open names compute the units honestly (but
		// an earlier verdict may have excluded the liar, whose own
		// verdicts then carry no standing).
		for _, c := range o.Checks {
			if len(c.Peers) == 1 {
				audits++
			}
			if h.tr.Excluded(c.Checker) {
				continue
			}
			h.mustReceive(c.Checker, &wire.Verdict{Round: h.tr.Round(), Step: c.Step, Unit: c.Unit, Checked: true, Raw: cidOf(honest(c.Step, c.Unit))})
		}
		if h.tr.Excluded("liar") {
			break
		}
		deal := h.deal()
		replicated := map[uint32]bool{}
		for k := range deal {
			if k.replica == 1 {
				replicated[k.unit] = true
			}
		}
		for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
			p, raw := deal[k], honest(o.Step, k.unit)
			if p == "liar" && !replicated[k.unit] {
				raw = "a lie/" + raw
				lies++
			}
			h.mustReceive(p, h.update(p, k.unit, k.replica, raw))
		}
		h.wantPhase(o.Step, PhaseClosed)
		h.commit(cidOf(fmt.Sprintf("C%d", o.Step+1)), workers...)
		h.wantPhase(o.Step+1, PhaseOpen)
	}
	led := h.tr.Ledger()
	if !led["liar"].Excluded {
		t.Fatalf("a liar on %d unreplicated units in %d steps was never caught (%d audits asked)", lies, steps, audits)
	}
	if !strings.Contains(led["liar"].Reason, "third computation") {
		t.Errorf("the liar was excluded for %q, want its pseudo-gradient contradicted by a third computation", led["liar"].Reason)
	}
	for _, p := range workers[1:] {
		if led[p].Excluded {
			t.Errorf("honest %s excluded: %s", p, led[p].Reason)
		}
	}
	t.Logf("caught at step %d after %d lies; %d audits asked", led["liar"].ExcludedAt, lies, audits)
}

// TestAuditsOfTheClose: the audited updates are a pure function of the
// spec and the Close (a restarted tracker's Close, of another epoch, and
// a Close decoded from the wire give the same), and each update is
// audited with the verification rate r, so that a liar on k updates
// escapes with probability (1−r)^k whatever it knows when it sends them.
func TestAuditsOfTheClose(t *testing.T) {
	const r = 0.2
	s := testSpec(10, r)
	closeOf := func(step uint64, n int) *wire.Close {
		c := &wire.Close{Round: s.ID(), Step: step, Base: genesis}
		for i := range n {
			c.Included = append(c.Included, wire.Included{Peer: fmt.Sprintf("w%03d", i), Unit: uint32(i),
				Payload: content.Sum(fmt.Appendf(nil, "payload %d/%d", step, i)), Weight: 1})
		}
		wire.SortIncluded(c.Included)
		return c
	}
	c := closeOf(3, 50)
	want := wire.Audits(s, c)
	again := *c
	again.Epoch = 7
	b, err := wire.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := wire.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]wire.Included{"again": wire.Audits(s, c), "another epoch": wire.Audits(s, &again),
		"decoded": wire.Audits(s, decoded.(*wire.Close))} {
		if !slices.Equal(got, want) {
			t.Errorf("%s: audits %v, want %v", name, got, want)
		}
	}
	// The rate, and the escape probability of k lies.
	const closes, per, k = 4000, 10, 5
	picked, escaped := 0, 0
	for i := range closes {
		a := wire.Audits(s, closeOf(uint64(i), per))
		picked += len(a)
		// The liar is the author of the first k updates.
		caught := slices.ContainsFunc(a, func(in wire.Included) bool { return in.Peer < fmt.Sprintf("w%03d", k) })
		if !caught {
			escaped++
		}
	}
	rate := float64(picked) / (closes * per)
	if sd := math.Sqrt(r * (1 - r) / (closes * per)); math.Abs(rate-r) > 4*sd {
		t.Errorf("audited fraction %.4f, want %.2f ± %.4f", rate, r, 4*sd)
	}
	esc, want5 := float64(escaped)/closes, math.Pow(1-r, k)
	if sd := math.Sqrt(want5 * (1 - want5) / closes); math.Abs(esc-want5) > 4*sd {
		t.Errorf("a liar on %d updates escaped %.4f of the time, want (1−r)^k = %.4f ± %.4f", k, esc, want5, 4*sd)
	}
	t.Logf("audited fraction %.4f (r = %.2f); escape with %d lies %.4f ((1−r)^k = %.4f)", rate, r, k, esc, want5)
	for _, rr := range []float64{0, 1} {
		s := testSpec(10, rr)
		if got := len(wire.Audits(s, c)); got != int(rr)*len(c.Included) {
			t.Errorf("rate %v audits %d of %d updates", rr, got, len(c.Included))
		}
	}
}

// TestStaleAuditsDropped: an audit that found no checker within
// AuditSteps steps (here the author is the only worker) is dropped, so
// audits do not pile up.
func TestStaleAuditsDropped(t *testing.T) {
	h := newHarness(t, testSpec(6, 0.5), nil)
	h.join(wire.RoleWorker, "w1")
	h.tick(0)
	seen := 0
	for range 3 * AuditSteps {
		h.sendAll()
		h.commit(cidOf(fmt.Sprintf("C%d", h.current().Step+1)), "w1")
		step, _ := h.tr.Step()
		for _, d := range h.tr.st.Disputes {
			if !d.Audit {
				t.Fatalf("dispute %+v, want audits only", d)
			}
			seen++
			if d.Step+AuditSteps < step {
				t.Fatalf("at step %d an audit of step %d is still kept", step, d.Step)
			}
		}
		if len(h.current().Checks) != 0 {
			t.Fatalf("checks %+v, but there is no worker but the author", h.current().Checks)
		}
	}
	if seen == 0 {
		t.Fatal("no audit was ever recorded")
	}
}

// TestWithholderExcludedWhileLive: a checker that could not fetch an
// accused replica's residual names it as withholding. The tracker
// excludes it if it has been in the round all the while since the
// checker was asked (it withholds what would clear or convict it); if it
// left meanwhile, even if it is back, neither it nor its accuser is
// judged, and the dispute is closed either way rather than held forever.
func TestWithholderExcludedWhileLive(t *testing.T) {
	for _, c := range []struct{ left, back bool }{{false, false}, {true, false}, {true, true}} {
		left := c.left
		t.Run(fmt.Sprintf("left %v back %v", c.left, c.back), func(t *testing.T) {
			h := newHarness(t, testSpec(3, 1.0/3), nil)
			h.join(wire.RoleWorker, "w1", "w2", "w3")
			h.tick(0)
			r := h.replicated()[0]
			deal := h.deal()
			a, b := deal[unitCopy{r, 0}], deal[unitCopy{r, 1}]
			h.sendAll()
			raw := cidOf(fmt.Sprintf("raw/%d", r))
			h.mustReceive(a, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Raw: raw, Bad: []string{b}})
			h.commit(cidOf("C1"), "w1", "w2", "w3")
			cs := disputeChecks(h.current().Checks)
			if len(cs) != 1 {
				t.Fatalf("checks %+v, want the accusation's", h.current().Checks)
			}
			if left {
				delete(h.alive, b)
				h.tick(round.Liveness(h.spec) + time.Second)
			}
			if c.back {
				h.join(wire.RoleWorker, b)
			}
			h.mustReceive(cs[0].Checker, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Checked: true, Raw: raw, Withheld: []string{b}})
			if got := h.tr.Excluded(b); got == left {
				t.Errorf("the withholder, left %v, excluded %v", left, got)
			}
			if h.tr.Excluded(a) {
				t.Errorf("the accuser was excluded: %+v", h.tr.Ledger()[a])
			}
			if ds := disputeList(h.tr.st.Disputes); len(ds) != 0 {
				t.Errorf("the dispute is still open: %+v", ds)
			}
		})
	}
}

// BenchmarkAudits is the tracker's cost of picking the audits of a Close
// of 1,000 included updates, once per finalised step.
func BenchmarkAudits(b *testing.B) {
	s := testSpec(1000, 0.05)
	c := &wire.Close{Round: s.ID(), Step: 9, Base: genesis}
	for i := range 1000 {
		c.Included = append(c.Included, wire.Included{Peer: fmt.Sprintf("12D3KooW%044d", i), Unit: uint32(i),
			Payload: content.Sum(fmt.Appendf(nil, "payload %d", i)), Weight: 800})
	}
	wire.SortIncluded(c.Included)
	picked := 0
	for b.Loop() {
		picked = len(wire.Audits(s, c))
	}
	b.ReportMetric(float64(picked), "audits")
}

// TestWithheldPartnerAudited: a replica that could not fetch its
// agreeing partner's residual says so (Verdict.Withheld); the tracker
// audits the partner's update, with the raw hash the pair agreed on, and
// a checker that finds the partner's payload bad has it excluded. The
// replica that asked accuses no one and is never at risk.
func TestWithheldPartnerAudited(t *testing.T) {
	h := newHarness(t, testSpec(3, 1.0/3), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	r := h.replicated()[0]
	deal := h.deal()
	a, b := deal[unitCopy{r, 0}], deal[unitCopy{r, 1}]
	h.sendAll()
	raw := cidOf(fmt.Sprintf("raw/%d", r))
	h.mustReceive(a, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Raw: cidOf("not what the pair agreed on"), Withheld: []string{b}})
	var audit *Dispute
	for _, d := range h.tr.st.Disputes {
		if d.Audit && d.Unit == r {
			audit = d
		}
	}
	if audit == nil || audit.Peers != [2]string{b, ""} || audit.Raws[0] != raw.String() || audit.Accuser != "" {
		t.Fatalf("disputes %+v, want an audit of %s's update with the pair's raw hash", h.tr.st.Disputes, b)
	}
	if err := h.receive(a, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Raw: raw, Withheld: []string{a}}); err == nil {
		t.Error("a replica's verdict naming itself as withholding was accepted")
	}
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	var check *wire.Check
	for _, c := range h.current().Checks {
		if c.Unit == r && slices.Equal(c.Peers, []string{b}) {
			check = &c
		}
	}
	if check == nil {
		t.Fatalf("checks %+v, want one of %s's update of unit %d", h.current().Checks, b, r)
	}
	h.mustReceive(check.Checker, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Checked: true, Raw: raw, Bad: []string{b}})
	if !h.tr.Excluded(b) || h.tr.Excluded(a) {
		t.Fatalf("after the audit found %s's payload bad: %+v", b, h.tr.Ledger())
	}
}

// TestLastSenderCannotPredictAudits: with an audit secret, each Close
// carries a key derived from it (the same after a restart), and the
// audits it picks cannot be told from the Close without its key: a
// worker that sends last and so knows every other update of the step
// guesses whether its own update will be audited no better than chance.
// Without the key the guess is always right.
func TestLastSenderCannotPredictAudits(t *testing.T) {
	const r = 0.2
	s := testSpec(10, r)
	h := newHarness(t, s, nil)
	h.auditSecret = []byte("the operator's secret, 32 bytes!")
	h.restart()
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(time.Minute) // past the restarted tracker's quiet time
	o := h.current()
	for k, p := range h.deal() {
		h.mustReceive(p, h.update(p, k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
	}
	h.wantPhase(o.Step, PhaseClosed)
	cl := h.tr.st.Close
	if len(cl.AuditKey) != wire.AuditKeySize {
		t.Fatalf("the Close's audit key has %d bytes, want %d", len(cl.AuditKey), wire.AuditKeySize)
	}
	key := slices.Clone(cl.AuditKey)
	h.restart()
	if got := h.tr.auditKey(o.Step, o.Attempt); !slices.Equal(got, key) {
		t.Errorf("after a restart the tracker derives audit key %x for step %d, before %x", got, o.Step, key)
	}
	if slices.Equal(h.tr.auditKey(o.Step+1, 0), key) || slices.Equal(h.tr.auditKey(o.Step, o.Attempt+1), key) {
		t.Error("another step or attempt gets the same audit key")
	}
	if _, err := New(Config{Spec: s, Genesis: genesis, AuditSecret: []byte("short")}, nil, t0); err == nil {
		t.Error("a 5-byte audit secret was accepted")
	}

	// The last sender's guess: the audits of the Close it can compute,
	// which is the Close but for its key.
	tr := h.tr
	const closes, per = 4000, 10
	right, picked := 0, 0
	for i := range closes {
		c := &wire.Close{Round: s.ID(), Step: uint64(i), Base: genesis}
		for j := range per {
			c.Included = append(c.Included, wire.Included{Peer: fmt.Sprintf("w%03d", j), Unit: uint32(j),
				Payload: content.Sum(fmt.Appendf(nil, "payload %d/%d", i, j)), Weight: 1})
		}
		wire.SortIncluded(c.Included)
		guess := slices.ContainsFunc(wire.Audits(s, c), func(in wire.Included) bool { return in.Peer == "w000" })
		c.AuditKey = tr.auditKey(uint64(i), 0)
		got := wire.Audits(s, c)
		picked += len(got)
		if guess == slices.ContainsFunc(got, func(in wire.Included) bool { return in.Peer == "w000" }) {
			right++
		}
	}
	// Independent picks agree with probability r² + (1−r)².
	chance := r*r + (1-r)*(1-r)
	frac := float64(right) / closes
	if sd := math.Sqrt(chance * (1 - chance) / closes); math.Abs(frac-chance) > 4*sd {
		t.Errorf("the last sender guessed its audit right %.4f of the time, want chance %.4f ± %.4f", frac, chance, 4*sd)
	}
	rate := float64(picked) / (closes * per)
	if sd := math.Sqrt(r * (1 - r) / (closes * per)); math.Abs(rate-r) > 4*sd {
		t.Errorf("with keys, audited fraction %.4f, want %.2f ± %.4f", rate, r, 4*sd)
	}
	t.Logf("guessed right %.4f (chance %.4f); audited %.4f", frac, chance, rate)
}
