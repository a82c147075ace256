package tracker

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// t0 is the start of the fake clock.
var t0 = time.Unix(0, 0)

// cidOf returns a content CID named by s, for tests.
func cidOf(s string) cid.Cid { return content.Sum([]byte(s)) }

var genesis = cidOf("genesis")

// testSpec returns a small valid spec: one sample per work unit, units
// work units per step, a 60 s deadline (so a 6 s heartbeat and 18 s of
// liveness) and the given verification rate.
var rewrite = flag.Bool("rewrite", false, "rewrite testdata/state.json")

func testSpec(units int, rate float64) *round.Spec {
	s := round.Defaults()
	s.Model = round.Model{Arch: round.ArchGPT, Vocab: 256, Ctx: 8, Dim: 8, Layers: 1, Heads: 1}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 1, 1
	s.Inner.LR = 0.01
	s.TargetSamples = units
	s.Deadline = time.Minute
	s.VerificationRate = rate
	s.Seed = 7
	s.Trackers = []string{peerA}
	return s
}

// harness drives one Tracker with a fake clock. Workers in alive say
// Hello whenever the clock moves, so they stay live members.
type harness struct {
	auditSecret []byte // Config.AuditSecret
	t           testing.TB
	spec        *round.Spec
	store       Storage
	tr          *Tracker
	now         time.Time
	alive       map[string]wire.Role
	out         []wire.Msg // published since the last take
	// events are the tracker's events since the last takeEvents.
	events []Event
	// failed is the error of a failed save: the harness, like every
	// driver, then stops driving the tracker.
	failed error
	// spares, anchors and admit are Config.Spares, Anchors and Admit of
	// the trackers it builds.
	spares  float64
	anchors []string
	admit   func(peer string, token []byte, now time.Time) error
	// withheld are payloads the harness, as the tracker's driver,
	// cannot fetch: it never answers for those it fetches (stalled) or
	// reports that it gave up (lost). It holds every other at once.
	stalled, lost map[cid.Cid]bool
	// fetches counts the fetches the tracker asked for.
	fetches int
}

func newHarness(t testing.TB, spec *round.Spec, store Storage) *harness {
	t.Helper()
	if store == nil {
		store = &MemStorage{}
	}
	h := &harness{t: t, spec: spec, store: store, now: t0, alive: map[string]wire.Role{}}
	h.restart()
	return h
}

// restart builds a new Tracker from the harness's storage, as after a
// crash: everything in memory is lost.
func (h *harness) restart() {
	h.t.Helper()
	st, err := h.store.Load()
	if err != nil {
		h.t.Fatal(err)
	}
	tr, err := New(Config{Spec: h.spec, Genesis: genesis, Spares: h.spares, Anchors: h.anchors, Admit: h.admit, AuditSecret: h.auditSecret}, st, h.now)
	if err != nil {
		h.t.Fatal(err)
	}
	h.tr, h.out, h.failed = tr, nil, nil
	h.collect()
}

// join makes peers live members of the given role.
func (h *harness) join(role wire.Role, peers ...string) {
	h.t.Helper()
	for _, p := range peers {
		h.alive[p] = role
		h.hello(p, role)
	}
}

func (h *harness) hello(p string, role wire.Role) {
	h.t.Helper()
	step, head := h.tr.Head()
	if err := h.tr.Receive(h.now, p, &wire.Hello{Round: h.tr.Round(), Role: role, Step: step, Head: head, Time: unixTime(h.now)}); err != nil {
		h.t.Fatalf("hello from %s: %v", p, err)
	}
}

// tick advances the clock by d, has every live peer say Hello, and ticks.
func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	for _, p := range slices.Sorted(maps.Keys(h.alive)) {
		h.hello(p, h.alive[p])
	}
	if err := h.tr.Tick(h.now); err != nil {
		h.t.Fatalf("tick at %v: %v", h.now.Sub(t0), err)
	}
	if err := h.collect(); err != nil {
		h.t.Fatalf("tick at %v: %v", h.now.Sub(t0), err)
	}
}

// collect is the driver's part: it takes the tracker's Ready, persists
// its state and only then takes its messages and events, and fetches the
// payloads it asks for. After a failed save it drives the tracker no
// more and returns that error.
func (h *harness) collect() error {
	for {
		if h.failed != nil {
			return h.failed
		}
		rd := h.tr.Ready()
		if rd.State != nil {
			if err := h.store.Save(rd.State); err != nil {
				h.failed = fmt.Errorf("saving state: %w", err)
				return h.failed
			}
		}
		h.out = append(h.out, rd.Publish...)
		h.events = append(h.events, rd.Events...)
		if len(rd.Fetch) == 0 {
			return nil
		}
		for _, f := range rd.Fetch {
			h.fetches++
			if !h.stalled[f.Payload] {
				h.tr.Held(h.now, f.Payload, !h.lost[f.Payload])
			}
		}
	}
}

// takeEvents returns and forgets the tracker's events.
func (h *harness) takeEvents() []Event {
	h.collect()
	ev := h.events
	h.events = nil
	return ev
}

// settle lets a restarted tracker's members announce themselves again
// (the tracker decides nothing until they have had the time) and forgets
// what it published meanwhile.
func (h *harness) settle() {
	h.t.Helper()
	h.tick(2 * round.HeartbeatInterval(h.spec))
	h.take()
}

// take returns and forgets what the tracker published.
func (h *harness) take() []wire.Msg {
	h.collect()
	out := h.out
	h.out = nil
	return out
}

// receive hands m from peer to the tracker and collects what it publishes.
func (h *harness) receive(from string, m wire.Msg) error {
	if h.failed != nil {
		return h.failed
	}
	err := h.tr.Receive(h.now, from, m)
	if ferr := h.collect(); ferr != nil {
		return ferr
	}
	return err
}

// mustReceive is receive that fails the test on a refusal.
func (h *harness) mustReceive(from string, m wire.Msg) {
	h.t.Helper()
	if err := h.receive(from, m); err != nil {
		h.t.Fatalf("%s from %s refused: %v", m.Kind(), from, err)
	}
}

// current returns the open step's Open from the tracker's state.
func (h *harness) current() *wire.Open {
	h.t.Helper()
	if h.tr.st.Open == nil {
		h.t.Fatalf("no open step (phase %s)", h.tr.st.Phase)
	}
	return h.tr.st.Open
}

// deal returns who computes each copy of the open step's units.
func (h *harness) deal() map[unitCopy]string {
	o := h.current()
	out := map[unitCopy]string{}
	for _, a := range round.Assign(h.spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), h.spec.VerificationRate) {
		out[unitCopy{uint32(a.Unit), uint8(a.Replica)}] = a.Peer
	}
	return out
}

// replicated returns the replicated units of the open step, sorted.
func (h *harness) replicated() []uint32 {
	var out []uint32
	for k := range h.deal() {
		if k.replica == 1 {
			out = append(out, k.unit)
		}
	}
	slices.Sort(out)
	return out
}

// update makes the update of a unit copy for the open step, with a raw
// hash named by raw; the payload depends on the peer, unit and replica.
func (h *harness) update(peer string, unit uint32, replica uint8, raw string) *wire.Update {
	o := h.current()
	data := fmt.Appendf(nil, "%s/%d/%d/%d/%d", peer, o.Step, o.Attempt, unit, replica)
	return &wire.Update{Round: h.tr.Round(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: unit, Replica: replica,
		Samples: uint32(h.spec.UnitSamples()), Loss: 2.5, Raw: cidOf(raw), Residual: cidOf("residual/" + peer),
		Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
}

// sendAll sends every assigned copy's update, each with the raw "raw/u".
func (h *harness) sendAll() {
	h.t.Helper()
	deal := h.deal()
	keys := slices.SortedFunc(maps.Keys(deal), cmpUnitCopy)
	for _, k := range keys {
		h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
	}
}

func cmpUnitCopy(a, b unitCopy) int {
	return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.replica, b.replica))
}

// commit sends the Commit of the closed step from each peer.
func (h *harness) commit(result cid.Cid, peers ...string) {
	h.t.Helper()
	step, _ := h.tr.Step()
	for _, p := range peers {
		h.mustReceive(p, &wire.Commit{Round: h.tr.Round(), Step: step, Attempt: h.tr.st.Attempt, Base: h.tr.st.Base, Result: result})
	}
}

// readyHeld is a driver that holds every payload at once: it takes the
// tracker's Ready until no fetch is left, and returns the last.
func readyHeld(tr *Tracker, now time.Time) Ready {
	for {
		rd := tr.Ready()
		if len(rd.Fetch) == 0 {
			return rd
		}
		for _, f := range rd.Fetch {
			tr.Held(now, f.Payload, true)
		}
	}
}

// only returns the messages of one kind in ms.
func only[T wire.Msg](ms []wire.Msg) []T {
	var out []T
	for _, m := range ms {
		if x, ok := m.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func (h *harness) wantPhase(step uint64, phase Phase) {
	h.t.Helper()
	if s, p := h.tr.Step(); s != step || p != phase {
		h.t.Fatalf("tracker at step %d %s, want step %d %s", s, p, step, phase)
	}
}

// checkState checks that what the storage holds is a state DecodeState
// accepts: every decision the tracker made is well formed.
func (h *harness) checkState() {
	h.t.Helper()
	st, err := h.store.Load()
	if err != nil {
		h.t.Fatalf("stored state: %v", err)
	}
	if st == nil {
		h.t.Fatal("nothing stored")
	}
}

// finishStep sends every update of the open step, has all live workers
// commit result, and returns the Final.
func (h *harness) finishStep(result cid.Cid) *wire.Final {
	h.t.Helper()
	h.take()
	h.sendAll()
	h.wantPhase(h.current().Step, PhaseClosed)
	var workers []string
	for p, r := range h.alive {
		if r == wire.RoleWorker {
			workers = append(workers, p)
		}
	}
	slices.Sort(workers)
	h.commit(result, workers...)
	fs := only[*wire.Final](h.take())
	if len(fs) != 1 {
		h.t.Fatalf("%d Finals published, want 1", len(fs))
	}
	return fs[0]
}

func TestNoStepWithoutLiveWorker(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.tick(time.Second)
	h.wantPhase(0, PhaseIdle)
	if out := h.take(); len(out) != 0 {
		t.Fatalf("published %v with no member", out)
	}
	// An observer alone does not open a step.
	h.join(wire.RoleObserver, "o1")
	h.tick(time.Second)
	h.wantPhase(0, PhaseIdle)
	if opens := only[*wire.Open](h.take()); len(opens) != 0 {
		t.Fatalf("opened a step with only an observer: %v", opens)
	}
	// A worker that went silent is no member either.
	h.join(wire.RoleWorker, "w1")
	delete(h.alive, "w1")
	h.tick(round.Liveness(h.spec) + time.Second)
	h.wantPhase(0, PhaseIdle)
	if opens := only[*wire.Open](h.take()); len(opens) != 0 {
		t.Fatalf("opened a step for a departed worker: %v", opens)
	}
}

func TestMinMembers(t *testing.T) {
	tr, err := New(Config{Spec: testSpec(4, 0), Genesis: genesis, MinMembers: 2}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	hello := &wire.Hello{Round: tr.Round(), Role: wire.RoleWorker, Head: genesis, Time: unixTime(t0)}
	if err := tr.Receive(t0, "w1", hello); err != nil {
		t.Fatal(err)
	}
	if err := tr.Tick(t0); err != nil {
		t.Fatal(err)
	}
	if _, p := tr.Step(); p != PhaseIdle {
		t.Fatalf("opened with 1 of 2 members")
	}
	if err := tr.Receive(t0, "w2", hello); err != nil {
		t.Fatal(err)
	}
	if err := tr.Tick(t0); err != nil {
		t.Fatal(err)
	}
	if _, p := tr.Step(); p != PhaseOpen {
		t.Fatalf("did not open with 2 of 2 members")
	}
}

func TestOpenFirstStep(t *testing.T) {
	h := newHarness(t, testSpec(5, 0), nil)
	h.join(wire.RoleWorker, "w2", "w1")
	h.join(wire.RoleObserver, "o1")
	h.tick(0)
	h.wantPhase(0, PhaseOpen)
	opens := only[*wire.Open](h.take())
	if len(opens) != 1 {
		t.Fatalf("published %d Opens, want 1", len(opens))
	}
	want := &wire.Open{Round: h.spec.ID(), Step: 0, Attempt: 0, Base: genesis, Members: []string{"w1", "w2"}, Units: 5}
	if !reflect.DeepEqual(opens[0], want) {
		t.Fatalf("Open = %+v\nwant %+v", opens[0], want)
	}
	if err := wire.WellFormed(opens[0]); err != nil {
		t.Fatal(err)
	}
	ev := h.takeEvents()
	if len(ev) == 0 || ev[len(ev)-1].Kind != "open" {
		t.Errorf("events %v, want an open", ev)
	}
	h.checkState()
	// Ticking again does not open it twice.
	h.tick(time.Second)
	if opens := only[*wire.Open](h.take()); len(opens) != 0 {
		t.Fatalf("opened again: %v", opens)
	}
}

func TestUpdateFromAssignedPeersOnly(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.join(wire.RoleObserver, "o1")
	h.tick(0)
	deal := h.deal()
	owner := deal[unitCopy{0, 0}]
	other := "w1"
	if owner == "w1" {
		other = "w2"
	}
	for _, c := range []struct {
		name string
		from string
		m    func() *wire.Update
	}{
		{"other worker", other, func() *wire.Update { return h.update(other, 0, 0, "r") }},
		{"observer", "o1", func() *wire.Update { return h.update("o1", 0, 0, "r") }},
		{"stranger", "x", func() *wire.Update { return h.update("x", 0, 0, "r") }},
		{"unreplicated copy", owner, func() *wire.Update { return h.update(owner, 0, 1, "r") }},
		{"wrong attempt", owner, func() *wire.Update { u := h.update(owner, 0, 0, "r"); u.Attempt = 1; return u }},
		{"wrong base", owner, func() *wire.Update { u := h.update(owner, 0, 0, "r"); u.Base = cidOf("other"); return u }},
		{"wrong samples", owner, func() *wire.Update { u := h.update(owner, 0, 0, "r"); u.Samples = 2; return u }},
	} {
		if err := h.receive(c.from, c.m()); err == nil {
			t.Errorf("%s: update accepted", c.name)
		}
	}
	if n := len(h.tr.st.Updates); n != 0 {
		t.Fatalf("refused updates left %d in the state", n)
	}
	h.mustReceive(owner, h.update(owner, 0, 0, "r"))
	h.mustReceive(owner, h.update(owner, 0, 0, "r")) // a repeat is harmless
	if n := len(h.tr.st.Updates); n != 1 {
		t.Fatalf("%d updates in the state, want 1", n)
	}
	if h.tr.st.Updates[0].Data != nil {
		t.Errorf("the state keeps the update's data")
	}
	u := h.update(owner, 0, 0, "r")
	u.Data = append(u.Data, 'x')
	u.Payload, u.Size = content.Sum(u.Data), uint64(len(u.Data))
	if err := h.receive(owner, u); err == nil {
		t.Errorf("a second, different update for the same copy was accepted")
	}
}

func TestCloseAtTargetSamples(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	h.take()
	deal := h.deal()
	for u := range uint32(3) {
		h.mustReceive(deal[unitCopy{u, 0}], h.update(deal[unitCopy{u, 0}], u, 0, "r"))
	}
	h.wantPhase(0, PhaseOpen)
	h.mustReceive(deal[unitCopy{3, 0}], h.update(deal[unitCopy{3, 0}], 3, 0, "r"))
	h.wantPhase(0, PhaseClosed)
	closes := only[*wire.Close](h.take())
	if len(closes) != 1 {
		t.Fatalf("%d Closes, want 1", len(closes))
	}
	cl := closes[0]
	if err := wire.WellFormed(cl); err != nil {
		t.Fatal(err)
	}
	if len(cl.Included) != 4 {
		t.Fatalf("Close includes %d updates, want 4", len(cl.Included))
	}
	for _, in := range cl.Included {
		if deal[unitCopy{in.Unit, 0}] != in.Peer || in.Weight != 1 {
			t.Errorf("included %+v, but unit %d is %s's", in, in.Unit, deal[unitCopy{in.Unit, 0}])
		}
	}
	h.checkState()
}

func TestCloseWaitsForBothReplicas(t *testing.T) {
	h := newHarness(t, testSpec(2, 0.5), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	h.take()
	deal := h.deal()
	rep := h.replicated()
	if len(rep) != 1 {
		t.Fatalf("replicated units %v, want 1", rep)
	}
	r, n := rep[0], 1-rep[0]
	h.mustReceive(deal[unitCopy{n, 0}], h.update(deal[unitCopy{n, 0}], n, 0, "raw/n"))
	h.mustReceive(deal[unitCopy{r, 0}], h.update(deal[unitCopy{r, 0}], r, 0, "raw/r"))
	h.wantPhase(0, PhaseOpen) // the replicated unit is incomplete
	h.mustReceive(deal[unitCopy{r, 1}], h.update(deal[unitCopy{r, 1}], r, 1, "raw/r"))
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())[0]
	var units []uint32
	for _, in := range cl.Included {
		units = append(units, in.Unit)
		if in.Unit == r && in.Peer != deal[unitCopy{r, 0}] {
			t.Errorf("replicated unit included from %s, want replica 0's %s", in.Peer, deal[unitCopy{r, 0}])
		}
	}
	slices.Sort(units)
	if !slices.Equal(units, []uint32{0, 1}) {
		t.Fatalf("included units %v, want each unit once", units)
	}
	want := []Pair{{Unit: r, Raw: cidOf("raw/r").String(), Peers: [2]string{deal[unitCopy{r, 0}], deal[unitCopy{r, 1}]}, Samples: 1}}
	if !reflect.DeepEqual(h.tr.st.Verified, want) {
		t.Errorf("verified pairs %+v, want %+v", h.tr.st.Verified, want)
	}
}

func TestCloseAtDeadline(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	h.take()
	deal := h.deal()
	h.mustReceive(deal[unitCopy{2, 0}], h.update(deal[unitCopy{2, 0}], 2, 0, "r"))
	h.tick(h.spec.Deadline - time.Second)
	h.wantPhase(0, PhaseOpen)
	h.tick(time.Second)
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())
	if len(cl) != 1 || len(cl[0].Included) != 1 || cl[0].Included[0].Unit != 2 {
		t.Fatalf("Close at the deadline: %+v, want unit 2 alone", cl)
	}
	if !h.tr.st.ClosedAt.Equal(h.now) {
		t.Errorf("closed at %v, want %v", h.tr.st.ClosedAt, h.now)
	}
}

func TestReopenWithoutUpdates(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	first := only[*wire.Open](h.take())[0]
	h.tick(h.spec.Deadline)
	h.wantPhase(0, PhaseOpen)
	opens := only[*wire.Open](h.take())
	if len(opens) != 1 {
		t.Fatalf("%d Opens at the deadline, want 1", len(opens))
	}
	o := opens[0]
	if o.Step != 0 || o.Attempt != first.Attempt+1 || !slices.Equal(o.Members, first.Members) {
		t.Fatalf("reopened %+v, want step 0 attempt 1 with the same members", o)
	}
	if !h.tr.st.OpenedAt.Equal(h.now) {
		t.Errorf("reopened step opened at %v, want now", h.tr.st.OpenedAt)
	}
	if !slices.ContainsFunc(h.takeEvents(), func(e Event) bool { return e.Kind == "reopen" }) {
		t.Errorf("no reopen event")
	}
	// An update for the old attempt is refused; one for the new attempt is taken.
	deal := h.deal()
	old := h.update(deal[unitCopy{0, 0}], 0, 0, "r")
	old.Attempt = 0
	if err := h.receive(deal[unitCopy{0, 0}], old); err == nil {
		t.Errorf("update for the abandoned attempt accepted")
	}
	h.mustReceive(deal[unitCopy{0, 0}], h.update(deal[unitCopy{0, 0}], 0, 0, "r"))
}

func TestFinaliseOnMajority(t *testing.T) {
	h := newHarness(t, testSpec(3, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.take()
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())[0]
	good, bad := cidOf("C1"), cidOf("C1'")
	h.commit(good, "w1")
	h.commit(bad, "w2")
	h.wantPhase(0, PhaseClosed)
	h.tick(time.Second) // still no majority (2 of 3)
	h.wantPhase(0, PhaseClosed)
	h.commit(good, "w3")
	h.wantPhase(1, PhaseOpen)
	out := h.take()
	if len(out) != 2 {
		t.Fatalf("published %v, want a Final and an Open", out)
	}
	f, ok := out[0].(*wire.Final)
	if !ok {
		t.Fatalf("first message %T, want the Final", out[0])
	}
	want := &wire.Final{Round: h.spec.ID(), Step: 0, Base: genesis, Checkpoint: good, Providers: []string{"w1", "w3"}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Final = %+v\nwant %+v", f, want)
	}
	o, ok := out[1].(*wire.Open)
	if !ok || o.Step != 1 || !o.Base.Equals(good) || o.Attempt != 0 {
		t.Fatalf("second message %+v, want the Open of step 1 from %s", out[1], good)
	}
	if fs := h.tr.Finals(); len(fs) != 1 || fs[0] != f {
		t.Errorf("Finals() = %v", fs)
	}
	if _, head := h.tr.Head(); !head.Equals(good) {
		t.Errorf("head %s, want %s", head, good)
	}
	led := h.tr.Ledger()
	if led["w2"].Mismatches != 1 || led["w1"].Mismatches != 0 || led["w3"].Mismatches != 0 {
		t.Errorf("ledger mismatches: %+v", led)
	}
	units := 0
	for _, in := range cl.Included {
		e := led[in.Peer]
		if e.Units == 0 || e.Samples == 0 {
			t.Errorf("ledger of %s has no credit for unit %d: %+v", in.Peer, in.Unit, e)
		}
		units++
	}
	total := 0
	for _, e := range led {
		total += e.Units
	}
	if total != units {
		t.Errorf("ledger credits %d units, the Close included %d", total, units)
	}
	// A late commit that differs from the record is a mismatch too.
	h.mustReceive("w3", &wire.Commit{Round: h.spec.ID(), Step: 0, Base: genesis, Result: bad})
	if got := h.tr.Ledger()["w3"].Mismatches; got != 1 {
		t.Errorf("late differing commit: w3 has %d mismatches, want 1", got)
	}
	h.checkState()
}

// TestQuorumCountsObserversAndLiveVoters: in a closed round every live
// admitted member, worker or observer, has one vote.
func TestQuorumCountsObserversAndLiveVoters(t *testing.T) {
	spec := testSpec(2, 0)
	spec.Admission = round.AdmissionClosed
	h := newHarness(t, spec, nil)
	h.admit = func(string, []byte, time.Time) error { return nil }
	h.restart()
	h.settle()
	h.join(wire.RoleWorker, "w1", "w2")
	h.join(wire.RoleObserver, "o1", "o2")
	h.tick(0)
	h.sendAll()
	if q := h.tr.Quorum(h.now); q != 3 {
		t.Fatalf("quorum of 4 live members is %d, want 3", q)
	}
	c := cidOf("C1")
	h.commit(c, "w1", "o1")
	h.wantPhase(0, PhaseClosed)
	// w1 leaves: its commit no longer counts, nor does it count in the quorum.
	delete(h.alive, "w1")
	h.tick(round.Liveness(h.spec) + time.Second)
	if q := h.tr.Quorum(h.now); q != 2 {
		t.Fatalf("quorum of 3 live members is %d, want 2", q)
	}
	h.wantPhase(0, PhaseClosed)
	h.commit(c, "o2")
	h.wantPhase(1, PhaseOpen)
	f := only[*wire.Final](h.take())
	// The departed w1 is not named as a provider of the checkpoint.
	if len(f) != 1 || !slices.Equal(f[0].Providers, []string{"o1", "o2"}) {
		t.Fatalf("Final %+v, want providers o1, o2", f)
	}
}

// disputeHarness runs step 0 with the workers and one replicated unit
// whose replicas report different raw hashes. It returns the harness in
// the open step 1 and the dispute.
func disputeHarness(t *testing.T, workers ...string) (*harness, *Dispute) {
	t.Helper()
	h := newHarness(t, testSpec(3, 1.0/3), nil)
	h.join(wire.RoleWorker, workers...)
	h.tick(0)
	h.take()
	deal := h.deal()
	rep := h.replicated()
	if len(rep) != 1 {
		t.Fatalf("replicated units %v, want 1", rep)
	}
	r := rep[0]
	for k, p := range deal {
		raw := fmt.Sprintf("raw/%d", k.unit)
		if k.unit == r {
			raw = fmt.Sprintf("raw/%d/%s", k.unit, p) // the replicas disagree
		}
		h.mustReceive(p, h.update(p, k.unit, k.replica, raw))
	}
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())[0]
	for _, in := range cl.Included {
		if in.Unit == r {
			t.Fatalf("disputed unit %d included: %+v", r, cl.Included)
		}
	}
	if len(h.tr.st.Disputes) != 1 {
		t.Fatalf("disputes %+v, want 1", h.tr.st.Disputes)
	}
	d := *h.tr.st.Disputes[0]
	peers := [2]string{deal[unitCopy{r, 0}], deal[unitCopy{r, 1}]}
	slices.Sort(peers[:])
	if d.Step != 0 || d.Unit != r || d.Peers != peers || !d.Base.Equals(genesis) {
		t.Fatalf("dispute %+v, want step 0 unit %d between %v", d, r, peers)
	}
	if !slices.ContainsFunc(h.takeEvents(), func(e Event) bool { return e.Kind == "dispute" }) {
		t.Errorf("no dispute event")
	}
	h.commit(cidOf("C1"), workers...)
	h.wantPhase(1, PhaseOpen)
	return h, &d
}

func TestDisputeSettledByChecker(t *testing.T) {
	h, d := disputeHarness(t, "w1", "w2", "w3")
	opens := only[*wire.Open](h.take())
	if len(opens) != 1 {
		t.Fatalf("%d Opens, want 1", len(opens))
	}
	if len(disputeChecks(opens[0].Checks)) != 1 {
		t.Fatalf("Open of step 1 has checks %+v, want 1 of a dispute", opens[0].Checks)
	}
	c := disputeChecks(opens[0].Checks)[0]
	if c.Step != 0 || c.Unit != d.Unit || !c.Base.Equals(genesis) || c.Checker == d.Peers[0] || c.Checker == d.Peers[1] {
		t.Fatalf("check %+v, want step 0 unit %d from a third member (replicas %v)", c, d.Unit, d.Peers)
	}
	if c.Attempt != 0 || !slices.Equal(c.Peers, d.Peers[:]) {
		t.Fatalf("check %+v judges the updates of %v in attempt %d, want the replicas' %v in attempt 0", c, c.Peers, c.Attempt, d.Peers)
	}
	// The checker computed what replica 0 (sorted) did.
	v := &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: d.Unit, Checked: true, Raw: mustCID(t, d.Raws[0])}
	for _, p := range []string{d.Peers[0], d.Peers[1], "o9"} {
		if err := h.receive(p, v); err == nil {
			t.Errorf("checked verdict from %s, which is not the checker, accepted", p)
		}
	}
	// Names in Bad that are not the dispute's peers are ignored.
	v.Bad = []string{"0-not-a-replica", "o9"}
	h.mustReceive(c.Checker, v)
	led := h.tr.Ledger()
	for _, p := range v.Bad {
		if led[p].Excluded {
			t.Errorf("%s, named by a checker but no replica of the dispute, was excluded", p)
		}
	}
	liar, honest := d.Peers[1], d.Peers[0]
	if e := led[liar]; !e.Excluded || e.Reason == "" || e.ExcludedAt != 1 {
		t.Errorf("ledger of %s: %+v, want excluded at step 1 with a reason", liar, e)
	}
	if led[honest].Excluded {
		t.Errorf("%s excluded, but its raw matched the checker's", honest)
	}
	if led[c.Checker].Checks != 1 {
		t.Errorf("checker credited with %d checks, want 1", led[c.Checker].Checks)
	}
	if ds := disputeList(h.tr.st.Disputes); len(ds) != 0 {
		t.Errorf("dispute not settled: %+v", ds)
	}
	if !slices.ContainsFunc(h.takeEvents(), func(e Event) bool { return e.Kind == "exclude" && e.Peer == liar }) {
		t.Errorf("no exclude event for %s", liar)
	}
	// A second verdict finds nothing to settle.
	if err := h.receive(c.Checker, v); err == nil {
		t.Errorf("a second checked verdict was accepted")
	}

	// The excluded peer's messages are ignored: by Validate, except its
	// hello, which the tracker refuses.
	hello := &wire.Hello{Round: h.spec.ID(), Role: wire.RoleWorker, Step: 1, Head: cidOf("C1"), Time: unixTime(h.now)}
	commit := &wire.Commit{Round: h.spec.ID(), Step: 1, Base: cidOf("C1"), Result: cidOf("C2")}
	if r, err := wire.Validate(h.tr, liar, commit); r != wire.Ignore || err == nil {
		t.Errorf("Validate of an excluded peer's commit: %s, %v; want ignore", r, err)
	}
	if err := h.receive(liar, hello); err == nil {
		t.Errorf("hello from an excluded peer accepted")
	}
	// It is no longer dealt units: not in the members of the next step.
	if slices.Contains(h.tr.Members(wire.RoleWorker, h.now), liar) {
		t.Errorf("excluded %s is still a member", liar)
	}
	delete(h.alive, liar)
	h.tick(h.spec.Deadline) // step 1 got nothing: it is dealt again
	opens = only[*wire.Open](h.take())
	if len(opens) != 1 || opens[0].Attempt != 1 {
		t.Fatalf("published %v, want the Open of attempt 1", opens)
	}
	if slices.Contains(opens[0].Members, liar) {
		t.Errorf("Open %+v deals units to the excluded %s", opens[0], liar)
	}
	if !slices.Equal(opens[0].Excluded, []string{liar}) {
		t.Errorf("Open %+v lists %v as excluded, want %s alone", opens[0], opens[0].Excluded, liar)
	}
	h.checkState()
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDisputeWholeStep covers a step in which every unit is disputed, so
// that nothing can be included and the step is dealt again: the dispute
// of the current step must wait for the step to be finalised before it is
// checked (a Check names an earlier step), and a unit disputed again in
// the next attempt is checked once.
func TestDisputeWholeStep(t *testing.T) {
	h := newHarness(t, testSpec(1, 1), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.take()
	for attempt := range uint32(2) {
		deal := h.deal()
		if h.current().Attempt != attempt {
			t.Fatalf("attempt %d, want %d", h.current().Attempt, attempt)
		}
		for k, p := range deal {
			h.mustReceive(p, h.update(p, k.unit, k.replica, "raw/"+p))
		}
		h.wantPhase(0, PhaseOpen) // dealt again at once
		h.checkState()
		opens := only[*wire.Open](h.take())
		if len(opens) != 1 || opens[0].Attempt != attempt+1 || len(opens[0].Checks) != 0 {
			t.Fatalf("after a wholly disputed attempt %d: %+v, want attempt %d without checks", attempt, opens, attempt+1)
		}
	}
	if n := len(h.tr.st.Disputes); n != 2 {
		t.Fatalf("%d disputes, want 2", n)
	}
	// Attempt 2 agrees; step 0 is finalised and step 1 checks unit 0 of step 0.
	h.finishStep(cidOf("C1"))
	h.wantPhase(1, PhaseOpen)
	h.checkState()
	o := h.current()
	if cs := disputeChecks(o.Checks); len(cs) != 1 || cs[0].Step != 0 || cs[0].Unit != 0 {
		t.Fatalf("Open of step 1 checks %+v, want unit 0 of step 0 once", o.Checks)
	}
	if err := wire.WellFormed(o); err != nil {
		t.Fatal(err)
	}
}

// TestCheckerKeptWhileLive checks that an unsettled dispute keeps its
// checker from step to step while that checker stays live, so a third
// computation that takes longer than a step still counts.
func TestCheckerKeptWhileLive(t *testing.T) {
	h, d := disputeHarness(t, "w1", "w2", "w3", "w4")
	c := disputeChecks(h.current().Checks)[0]
	for range 4 {
		h.finishStep(cidOf(fmt.Sprintf("C%d", h.current().Step+1)))
		cs := disputeChecks(h.current().Checks)
		if len(cs) != 1 || !reflect.DeepEqual(cs[0], c) {
			t.Fatalf("step %d checks %+v, want %+v again", h.current().Step, cs, c)
		}
	}
	v := &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: d.Unit, Checked: true, Raw: mustCID(t, d.Raws[1])}
	h.mustReceive(c.Checker, v)
	if !h.tr.Excluded(d.Peers[0]) || h.tr.Excluded(d.Peers[1]) {
		t.Errorf("checked verdict for replica 1 excluded %v", h.tr.Ledger())
	}
}

func TestReplicaAccusation(t *testing.T) {
	h := newHarness(t, testSpec(3, 1.0/3), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.take()
	r := h.replicated()[0]
	deal := h.deal()
	a, b := deal[unitCopy{r, 0}], deal[unitCopy{r, 1}]
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	// The replicas agreed on the raw hash; a says b's payload is bad.
	raw := cidOf(fmt.Sprintf("raw/%d", r))
	bad := &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Raw: raw, Bad: []string{b}}
	var third string
	for _, p := range []string{"w1", "w2", "w3"} {
		if p != a && p != b {
			third = p
		}
	}
	if err := h.receive(third, bad); err == nil {
		t.Errorf("accusation from %s, not a replica, accepted", third)
	}
	h.mustReceive(a, bad)
	if len(h.tr.st.Disputes) != 1 || h.tr.st.Disputes[0].Accuser != a {
		t.Fatalf("disputes %+v, want one accused by %s", h.tr.st.Disputes, a)
	}
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	c := disputeChecks(h.current().Checks)
	if len(c) != 1 || c[0].Checker != third {
		t.Fatalf("checks %+v, want one for %s", c, third)
	}
	// The checker reproduces b's payload: a lied.
	h.mustReceive(third, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: r, Checked: true, Raw: raw})
	if !h.tr.Excluded(a) || h.tr.Excluded(b) {
		t.Errorf("after a false accusation: %+v", h.tr.Ledger())
	}
}

func TestValidate(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	round := h.spec.ID()
	other := cidOf("another round")
	open := &wire.Open{Round: round, Step: 0, Base: genesis, Members: []string{"w1"}, Units: 2}
	closeMsg := &wire.Close{Round: round, Step: 0, Base: genesis, Included: []wire.Included{{Peer: "w1", Unit: 0, Payload: cidOf("p"), Weight: 1}}}
	final := &wire.Final{Round: round, Step: 0, Base: genesis, Checkpoint: cidOf("C1")}
	hello := &wire.Hello{Round: round, Role: wire.RoleWorker, Head: genesis, Time: unixTime(h.now)}
	commit := &wire.Commit{Round: round, Step: 0, Base: genesis, Result: cidOf("C1")}
	for _, c := range []struct {
		name string
		from string
		m    wire.Msg
		want wire.Result
	}{
		{"open from the tracker", peerA, open, wire.Accept},
		{"open from a worker", "w1", open, wire.Reject},
		{"close from a worker", "w1", closeMsg, wire.Reject},
		{"final from a worker", "w1", final, wire.Reject},
		{"close from the tracker", peerA, closeMsg, wire.Accept},
		{"final from the tracker", peerA, final, wire.Accept},
		{"commit from the tracker", peerA, commit, wire.Reject},
		{"hello from the tracker", peerA, hello, wire.Accept},
		{"hello", "w1", hello, wire.Accept},
		{"hello for another round", "w1", &wire.Hello{Round: other, Role: wire.RoleWorker, Time: 1}, wire.Ignore},
		{"open for another round", peerA, &wire.Open{Round: other, Base: genesis, Members: []string{"w1"}, Units: 1}, wire.Ignore},
		{"open of another round from a worker", "w1", &wire.Open{Round: other, Base: genesis, Members: []string{"w1"}, Units: 1}, wire.Ignore},
		{"malformed", "w1", &wire.Hello{Round: round, Role: 9}, wire.Reject},
		{"commit far ahead", "w1", &wire.Commit{Round: round, Step: 5, Base: genesis, Result: genesis}, wire.Ignore},
	} {
		r, err := wire.Validate(h.tr, c.from, c.m)
		if r != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, r, err, c.want)
		}
		if (r == wire.Accept) != (err == nil) {
			t.Errorf("%s: result %s with error %v", c.name, r, err)
		}
		if c.want != wire.Accept {
			if err := h.tr.Receive(h.now, c.from, c.m); err == nil {
				t.Errorf("%s: Receive accepted it", c.name)
			}
		}
	}
}

// TestTrackerIDCanonical checks that a spec naming its tracker in another
// form than base58btc still knows the tracker's messages.
func TestTrackerIDCanonical(t *testing.T) {
	s := testSpec(2, 0)
	s.Trackers = []string{peerACID}
	tr, err := New(Config{Spec: s, Genesis: genesis}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TrackerID() != peerA {
		t.Errorf("TrackerID() = %s, want %s", tr.TrackerID(), peerA)
	}
}

// TestRestartOpen rebuilds the tracker from its storage while a step is
// open: it resumes at the same step with what it had saved and announces
// the step again.
func TestRestartOpen(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	h.finishStep(cidOf("C1"))
	deal := h.deal()
	u := h.update(deal[unitCopy{1, 0}], 1, 0, "r")
	h.mustReceive(deal[unitCopy{1, 0}], u)
	h.tick(time.Second) // saves the update
	h.take()
	open := h.current()
	finals := slices.Clone(h.tr.Finals())
	openedAt := h.tr.st.OpenedAt

	h.restart()
	h.wantPhase(1, PhaseOpen)
	if !reflect.DeepEqual(h.tr.Finals(), finals) {
		t.Fatalf("Finals after restart %v, want %v", h.tr.Finals(), finals)
	}
	reopened := *open
	reopened.Epoch = 1 // the same step, in the restarted tracker's epoch
	if !reflect.DeepEqual(h.tr.st.Open, &reopened) || !h.tr.st.OpenedAt.Equal(openedAt) {
		t.Fatalf("Open after restart %+v at %v, want %+v at %v", h.tr.st.Open, h.tr.st.OpenedAt, open, openedAt)
	}
	h.tick(time.Second)
	out := h.take()
	if len(out) != 2 || !reflect.DeepEqual(out[0], finals[0]) || !reflect.DeepEqual(out[1], &reopened) {
		t.Fatalf("first tick after restart published %v, want the last Final and the Open", out)
	}
	h.settle()
	// The saved update is known: a repeat is no new update.
	h.mustReceive(deal[unitCopy{1, 0}], u)
	if n := len(h.tr.st.Updates); n != 1 {
		t.Fatalf("%d updates after a repeat, want 1", n)
	}
	// The rest of the step completes it once.
	for k, p := range deal {
		if k.unit != 1 {
			h.mustReceive(p, h.update(p, k.unit, k.replica, "r"))
		}
	}
	h.wantPhase(1, PhaseClosed)
	h.commit(cidOf("C2"), "w1", "w2")
	h.wantPhase(2, PhaseOpen)
	if n := len(h.tr.Finals()); n != 2 {
		t.Fatalf("%d Finals, want 2", n)
	}
}

// TestRestartClosed rebuilds the tracker while a step is closed, with one
// commit in: the step is finalised once, when the quorum is reached.
func TestRestartClosed(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	c1 := cidOf("C1")
	h.commit(c1, "w1")
	h.tick(time.Second)
	h.take()
	cl := h.tr.st.Close
	open := h.tr.st.Open

	h.restart()
	h.wantPhase(0, PhaseClosed)
	if h.tr.st.Commits["w1"] != c1.String() {
		t.Fatalf("commits after restart: %v", h.tr.st.Commits)
	}
	h.tick(time.Second)
	out := h.take()
	// They go out again in the tracker's new epoch, which asks the
	// workers to send their commits again.
	open2, cl2 := *open, *cl
	open2.Epoch, cl2.Epoch = 1, 1
	if len(out) != 2 || !reflect.DeepEqual(out[0], &open2) || !reflect.DeepEqual(out[1], &cl2) {
		t.Fatalf("first tick after restart published %v, want the Open and the Close of epoch 1", out)
	}
	h.settle()
	h.commit(c1, "w1") // a repeat changes nothing
	h.wantPhase(0, PhaseClosed)
	h.commit(c1, "w2")
	h.wantPhase(1, PhaseOpen)
	if fs := only[*wire.Final](h.take()); len(fs) != 1 {
		t.Fatalf("%d Finals published, want 1", len(fs))
	}
	// Rebuilt again just after the Final, a late commit finalises nothing.
	h.restart()
	h.wantPhase(1, PhaseOpen)
	h.tick(time.Second)
	h.mustReceive("w3", &wire.Commit{Round: h.spec.ID(), Step: 0, Base: genesis, Result: c1})
	if n := len(h.tr.Finals()); n != 1 {
		t.Fatalf("%d Finals after a late commit, want 1", n)
	}
	if fs := only[*wire.Final](h.take()); len(fs) != 1 || fs[0].Step != 0 {
		t.Fatalf("published Finals %v, want only the republished one of step 0", fs)
	}
}

func TestRestartOtherRound(t *testing.T) {
	other, err := New(Config{Spec: testSpec(2, 0), Genesis: genesis}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Spec: testSpec(3, 0), Genesis: genesis}, other.Ready().State, t0)
	if err == nil || !strings.Contains(err.Error(), "holds round") {
		t.Fatalf("New on another round's state: %v", err)
	}
}

// failingStorage fails every Save after the first n.
type failingStorage struct {
	MemStorage
	n int
}

var errDiskFull = errors.New("disk full")

func (f *failingStorage) Save(s *State) error {
	if f.Saves() >= f.n {
		return errDiskFull
	}
	return f.MemStorage.Save(s)
}

// TestSaveFailureStops checks the tracker's side of "persist before
// publish": the Ready that announces a decision carries the state that
// holds it, so a driver whose save fails publishes nothing; and the
// decision is not forgotten by the tracker.
func TestSaveFailureStops(t *testing.T) {
	store := &failingStorage{n: 2} // New's and the Open's
	h := newHarness(t, testSpec(1, 0), store)
	h.join(wire.RoleWorker, "w1")
	h.tick(0)
	h.wantPhase(0, PhaseOpen)
	h.take()
	err := h.receive("w1", h.update("w1", 0, 0, "r"))
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Receive of the closing update: %v, want the save error", err)
	}
	if out := h.take(); len(out) != 0 {
		t.Errorf("published %v though the Close was not saved", out)
	}
	for range 2 {
		if err := h.receive("w1", &wire.Hello{Round: h.tr.Round(), Role: wire.RoleWorker, Time: unixTime(h.now)}); !errors.Is(err, errDiskFull) {
			t.Fatalf("driving on after a failed save: %v, want the save error", err)
		}
	}
	h.wantPhase(0, PhaseClosed)
}

// TestReadyPersistsDecisions checks that every Ready that publishes a
// decision (an Open, Close or Final not published before) carries the
// state, through steps, a dispute and a restart.
func TestReadyPersistsDecisions(t *testing.T) {
	store := &MemStorage{}
	h := newHarness(t, testSpec(3, 1.0/3), store)
	seen := map[string]bool{}
	var check func(rd Ready)
	check = func(rd Ready) {
		t.Helper()
		for _, m := range rd.Publish {
			var key string
			switch m := m.(type) {
			case *wire.Open:
				key = fmt.Sprintf("open %d/%d", m.Step, m.Attempt)
			case *wire.Close:
				key = fmt.Sprintf("close %d", m.Step)
			case *wire.Final:
				key = fmt.Sprintf("final %d", m.Step)
			default:
				continue
			}
			if !seen[key] && rd.State == nil {
				t.Fatalf("%s published without the state that holds it", key)
			}
			seen[key] = true
		}
		if rd.State != nil {
			if err := store.Save(rd.State); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range rd.Fetch {
			h.tr.Held(h.now, f.Payload, true)
			check(h.tr.Ready())
		}
	}
	drive := func(from string, m wire.Msg) {
		t.Helper()
		if err := h.tr.Receive(h.now, from, m); err != nil {
			t.Fatalf("%s from %s: %v", m.Kind(), from, err)
		}
		check(h.tr.Ready())
	}
	hello := func() {
		for _, p := range []string{"w1", "w2", "w3"} {
			step, head := h.tr.Head()
			drive(p, &wire.Hello{Round: h.tr.Round(), Role: wire.RoleWorker, Step: step, Head: head, Time: unixTime(h.now)})
		}
	}
	for step := range 3 {
		hello()
		if err := h.tr.Tick(h.now); err != nil {
			t.Fatal(err)
		}
		check(h.tr.Ready())
		deal := h.deal()
		for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
			drive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
		}
		for _, p := range []string{"w1", "w2", "w3"} {
			drive(p, &wire.Commit{Round: h.tr.Round(), Step: uint64(step), Base: h.tr.st.Base, Result: cidOf(fmt.Sprint("C", step+1))})
		}
		h.now = h.now.Add(time.Second)
		if step == 1 {
			h.restart() // persisted by collect; the new epoch republishes what it had decided
			h.now = h.now.Add(2 * round.HeartbeatInterval(h.spec))
		}
	}
	if n := len(h.tr.Finals()); n != 3 {
		t.Fatalf("%d steps finalised, want 3", n)
	}
}

// TestExcludedCommitDoesNotCount checks that the commit of a peer
// excluded after it committed does not count towards the quorum.
func TestExcludedCommitDoesNotCount(t *testing.T) {
	h, d := disputeHarness(t, "w1", "w2", "w3")
	c := h.current().Checks[0]
	liar := d.Peers[1]
	h.sendAll()
	h.wantPhase(1, PhaseClosed)
	h.commit(cidOf("bogus"), liar)
	h.mustReceive(c.Checker, &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: d.Unit, Checked: true, Raw: mustCID(t, d.Raws[0])})
	if !h.tr.Excluded(liar) {
		t.Fatal("not excluded")
	}
	delete(h.alive, liar)
	// Two live members remain, so a quorum is 2: the liar and one
	// accomplice must not finalise.
	var accomplice string
	for _, p := range []string{"w1", "w2", "w3"} {
		if p != liar {
			accomplice = p
			break
		}
	}
	h.commit(cidOf("bogus"), accomplice)
	h.tick(time.Second)
	h.wantPhase(1, PhaseClosed)
}

// TestArrivalOrder checks that what a step includes does not depend on
// the order in which its updates arrive, when they all arrive in time.
func TestArrivalOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var want *wire.Close
	for i := range 20 {
		h := newHarness(t, testSpec(6, 0.5), nil)
		h.join(wire.RoleWorker, "w1", "w2", "w3", "w4")
		h.tick(0)
		h.take()
		deal := h.deal()
		keys := slices.SortedFunc(maps.Keys(deal), cmpUnitCopy)
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys {
			h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
		}
		cl := only[*wire.Close](h.take())
		if len(cl) != 1 {
			t.Fatalf("seed %d, run %d: %d Closes, want 1", seed, i, len(cl))
		}
		if want == nil {
			want = cl[0]
		} else if !reflect.DeepEqual(cl[0], want) {
			t.Fatalf("seed %d, run %d: order %v gives\n%+v\nwant %+v", seed, i, keys, cl[0], want)
		}
	}
}

// fakeView is a View at a given step.
type fakeView struct {
	step     uint64
	excluded map[string]bool
}

func (v fakeView) Round() cid.Cid            { return testSpec(2, 0).ID() }
func (v fakeView) TrackerID() string         { return peerA }
func (v fakeView) Head() (uint64, cid.Cid)   { return v.step, genesis }
func (v fakeView) Excluded(peer string) bool { return v.excluded[peer] }

// TestValidateSteps checks which steps a viewer at step 5 takes messages
// about.
func TestValidateSteps(t *testing.T) {
	v := fakeView{step: 5, excluded: map[string]bool{"x": true}}
	round := v.Round()
	upd := func(step uint64) wire.Msg {
		return &wire.Update{Round: round, Step: step, Base: genesis, Samples: 1, Raw: genesis, Residual: genesis, Payload: genesis, Size: 1}
	}
	for _, c := range []struct {
		name string
		from string
		m    wire.Msg
		want wire.Result
	}{
		{"update of step 3", "w1", upd(3), wire.Ignore},
		{"update of step 4", "w1", upd(4), wire.Accept},
		{"update of step 6", "w1", upd(6), wire.Accept},
		{"update of step 7", "w1", upd(7), wire.Ignore},
		{"update from the tracker", peerA, upd(5), wire.Reject},
		{"update from an excluded peer", "x", upd(5), wire.Ignore},
		{"commit of step 2", "w1", &wire.Commit{Round: round, Step: 2, Base: genesis, Result: genesis}, wire.Ignore},
		{"commit of step 3", "w1", &wire.Commit{Round: round, Step: 3, Base: genesis, Result: genesis}, wire.Accept},
		{"commit of step 7", "w1", &wire.Commit{Round: round, Step: 7, Base: genesis, Result: genesis}, wire.Ignore},
		{"replica verdict of step 2", "w1", &wire.Verdict{Round: round, Step: 2, Raw: genesis}, wire.Ignore},
		// A dispute stays open until a checker settles it, however long ago.
		{"checked verdict of step 0", "w1", &wire.Verdict{Round: round, Step: 0, Checked: true, Raw: genesis}, wire.Accept},
		{"checked verdict of step 7", "w1", &wire.Verdict{Round: round, Step: 7, Checked: true, Raw: genesis}, wire.Ignore},
		{"open of an old step", peerA, &wire.Open{Round: round, Step: 1, Base: genesis, Members: []string{"a"}, Units: 1}, wire.Accept},
	} {
		if r, err := wire.Validate(v, c.from, c.m); r != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, r, err, c.want)
		}
	}
}

// TestClosedRound: in a closed round only peers whose token the admission
// check accepts become members; a refused peer is recorded with the
// reason, its other messages are ignored by Validate, and a later hello
// with a good token admits it.
func TestClosedRound(t *testing.T) {
	spec := testSpec(2, 0)
	spec.Admission = round.AdmissionClosed
	admit := func(peer string, token []byte, _ time.Time) error {
		if string(token) != "ok:"+peer {
			return errors.New("token does not name this peer")
		}
		return nil
	}
	tr, err := New(Config{Spec: spec, Genesis: genesis, Admit: admit}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	step, head := tr.Head()
	hello := func(p string, token string) error {
		return tr.Receive(t0, p, &wire.Hello{Round: tr.Round(), Role: wire.RoleWorker, Step: step, Head: head, Token: []byte(token), Time: unixTime(t0)})
	}
	if err := hello("w1", "ok:w1"); err != nil {
		t.Fatalf("admitted peer refused: %v", err)
	}
	if err := hello("w2", "ok:w1"); err == nil || !strings.Contains(err.Error(), "no valid access token") {
		t.Fatalf("peer with another's token: %v", err)
	}
	if err := hello("w3", ""); err == nil {
		t.Fatal("peer without a token admitted")
	}
	if got := tr.Members(wire.RoleWorker, t0); !slices.Equal(got, []string{"w1"}) {
		t.Fatalf("members %v, want [w1]", got)
	}
	refused := tr.Refused()
	if len(refused) != 2 || !strings.Contains(refused["w2"], "does not name this peer") {
		t.Fatalf("refused %v", refused)
	}
	var evs []string
	for _, ev := range tr.Ready().Events {
		if ev.Kind == "refused" {
			evs = append(evs, ev.Peer)
		}
	}
	if !slices.Equal(evs, []string{"w2", "w3"}) {
		t.Fatalf("refusal events for %v, want [w2 w3]", evs)
	}
	// Refusing the same peer again for the same reason adds no event.
	_ = hello("w3", "")
	for _, ev := range tr.Ready().Events {
		t.Errorf("repeated refusal logged again: %+v", ev)
	}
	if err := hello("w2", "ok:w2"); err != nil {
		t.Fatalf("peer with its own token refused: %v", err)
	}
	if got := tr.Members(wire.RoleWorker, t0); !slices.Equal(got, []string{"w1", "w2"}) {
		t.Fatalf("members %v, want [w1 w2]", got)
	}
	// Without an admission check a closed round admits nobody.
	tr2, err := New(Config{Spec: spec, Genesis: genesis}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Receive(t0, "w1", &wire.Hello{Round: tr2.Round(), Role: wire.RoleWorker, Head: genesis, Token: []byte("ok:w1"), Time: unixTime(t0)}); err == nil {
		t.Fatal("closed round without an admission check admitted a peer")
	}
}

// TestQuorumFollowsLiveness: the live count behind the quorum follows
// members that fall silent, come back and change role, without a
// commit or a Tick in between; a quorum that shrinks while commits wait
// finalises at the next Tick.
func TestQuorumFollowsLiveness(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3", "w4")
	h.tick(0)
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	if q := h.tr.Quorum(h.now); q != 3 {
		t.Fatalf("quorum of 4 is %d, want 3", q)
	}
	// w3 and w4 fall silent: no Hello, only time passes.
	delete(h.alive, "w3")
	delete(h.alive, "w4")
	h.now = h.now.Add(round.Liveness(h.spec) / 2)
	h.hello("w1", wire.RoleWorker)
	h.hello("w2", wire.RoleWorker)
	h.now = h.now.Add(round.Liveness(h.spec)/2 + time.Second)
	if q := h.tr.Quorum(h.now); q != 2 {
		t.Fatalf("quorum after two fell silent is %d, want 2", q)
	}
	// w3 comes back, as an observer.
	h.hello("w3", wire.RoleObserver)
	if q := h.tr.Quorum(h.now); q != 2 {
		t.Fatalf("quorum of 3 is %d, want 2", q)
	}
	h.hello("w4", wire.RoleWorker)
	if q := h.tr.Quorum(h.now); q != 3 {
		t.Fatalf("quorum of 4 after two came back is %d, want 3", q)
	}
	// Two commits wait for a third; then w3 and w4 leave for good and
	// the quorum of two is there at the next Tick, with no new commit.
	c := cidOf("C1")
	h.commit(c, "w1", "w2")
	h.wantPhase(0, PhaseClosed)
	h.tick(round.Liveness(h.spec) + time.Second)
	h.wantPhase(1, PhaseOpen)
	if f := only[*wire.Final](h.take()); len(f) != 1 || !f[0].Checkpoint.Equals(c) {
		t.Fatalf("no Final of C1 after the quorum shrank: %+v", f)
	}
}

// TestSpareUnits: with workers to spare, a step deals a quarter more
// units than its target and closes once the target's worth is complete,
// without the slowest worker's unit; without workers to spare, or with
// no spares configured, it deals the target's units.
func TestSpareUnits(t *testing.T) {
	workers := []string{"w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"}
	h := &harness{t: t, spec: testSpec(4, 0), store: &MemStorage{}, now: t0, alive: map[string]wire.Role{}, spares: 0.25}
	h.restart()
	h.join(wire.RoleWorker, workers...)
	h.tick(0)
	h.take()
	if u := h.current().Units; u != 5 {
		t.Fatalf("8 workers, target of 4 units, spares 0.25: dealt %d units, want 5", u)
	}
	deal := h.deal()
	slow := deal[unitCopy{2, 0}]
	for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
		if k.unit != 2 {
			h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
		}
	}
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())
	if len(cl) != 1 || len(cl[0].Included) != 4 || slices.ContainsFunc(cl[0].Included, func(in wire.Included) bool { return in.Peer == slow }) {
		t.Fatalf("Close %+v, want the 4 units that came, without %s's", cl, slow)
	}
	if err := h.receive(slow, h.update(slow, 2, 0, "raw/2")); err == nil {
		t.Fatal("a spare unit that came after the close was accepted")
	}

	for _, c := range []struct {
		workers int
		spares  float64
		want    int
	}{{8, 0, 4}, {4, 0.25, 4}, {5, 0.5, 5}, {8, 0.5, 6}, {100, 1, 8}} {
		if got := DealtUnits(testSpec(4, 0), c.workers, c.spares); got != c.want {
			t.Errorf("DealtUnits(target 4 units, %d workers, spares %v) = %d, want %d", c.workers, c.spares, got, c.want)
		}
	}
	if _, err := New(Config{Spec: testSpec(4, 0), Genesis: genesis, Spares: 1.5}, nil, t0); err == nil {
		t.Error("spares of 1.5 accepted")
	}
}

// TestForgetsSilentMembers: a member silent for longer than ForgetAfter
// is forgotten (its ledger entry stays); a live one is kept, and the
// forgotten one becomes a member again with its next Hello.
func TestForgetsSilentMembers(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	h.sendAll()
	h.commit(cidOf("C1"), "w1", "w2")
	delete(h.alive, "w2")
	h.tick(ForgetAfter / 2)
	if n := len(h.tr.Peers(h.now)); n != 2 {
		t.Fatalf("%d peers known half an hour into w2's silence, want 2", n)
	}
	h.tick(ForgetAfter/2 + time.Minute)
	ps := h.tr.Peers(h.now)
	if len(ps) != 1 || ps[0].ID != "w1" {
		t.Fatalf("peers after w2's long silence: %+v, want w1 alone", ps)
	}
	if e, ok := h.tr.Ledger()["w2"]; !ok || e.Units == 0 {
		t.Fatalf("w2's ledger entry was lost: %+v", h.tr.Ledger())
	}
	h.join(wire.RoleWorker, "w2")
	if n := len(h.tr.Peers(h.now)); n != 2 {
		t.Fatalf("w2 said hello again and %d peers are known, want 2", n)
	}
}

// sampleState returns a state with every part filled in, from a tracker
// driven through a step, a dispute and a commit.
func sampleState(tb testing.TB) *State {
	tb.Helper()
	h := newHarness(tb, testSpec(3, 1.0/3), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	deal := h.deal()
	r := h.replicated()[0]
	for k, p := range deal {
		raw := "raw"
		if k.unit == r {
			raw = "raw/" + p
		}
		h.mustReceive(p, h.update(p, k.unit, k.replica, raw))
	}
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	h.sendAll()
	h.commit(cidOf("C2"), "w1")
	h.tick(time.Second)
	st, err := h.store.Load()
	if err != nil {
		tb.Fatal(err)
	}
	audits := slices.IndexFunc(st.Disputes, func(d *Dispute) bool { return d.Audit })
	if st.Phase != PhaseClosed || len(st.Finals) != 1 || len(st.Disputes)-len(disputeList(st.Disputes)) == 0 || len(disputeList(st.Disputes)) != 1 || audits < 0 || len(st.Commits) != 1 || len(st.Ledger) == 0 {
		tb.Fatalf("sample state is missing parts: %+v", st)
	}
	return st
}

// TestSampleState checks sampleState against testdata/state.json, which
// other packages' tests (boltstore) read; -rewrite rewrites it.
func TestSampleState(t *testing.T) {
	got, err := EncodeState(sampleState(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "state.json")
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("sample state changed; if that is right, rewrite %s with -rewrite\ngot  %s\nwant %s", path, got, want)
	}
}

// Peer IDs for tests.
const (
	peerA    = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"
	peerACID = "bafzaajaiaejcaunrthxxaibd2gjfu7ohy72b3ln3j2qfqyqbwylvy5voa2bgjp6v" // peerA as a libp2p-key CID
	peerB    = "12D3KooWPhE3uLopstLtMMJpRoK2NaCvW3FMs4grT9PuWjZB945h"
)

// unixTime is a Hello's time (wire.Hello.Time) sent at now: its unix
// seconds, and at least 1 (the fake clock starts at the epoch).
func unixTime(now time.Time) uint64 { return uint64(max(now.Unix(), 1)) }

// disputeChecks returns the checks of disputes between replicas, leaving
// out the audits (a check of one author).
func disputeChecks(cs []wire.Check) []wire.Check {
	return slices.DeleteFunc(slices.Clone(cs), func(c wire.Check) bool { return len(c.Peers) != 2 })
}

// disputeList returns the disputes between replicas, leaving out the
// audits.
func disputeList(ds []*Dispute) []*Dispute {
	return slices.DeleteFunc(slices.Clone(ds), func(d *Dispute) bool { return d.Audit })
}
