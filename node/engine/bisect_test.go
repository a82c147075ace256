package engine_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/trace"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// dispute is a disputed unit: an honest replica's update and a liar's,
// their engines and a referee's, over one store (which stands for the
// fetches between them).
type dispute struct {
	spec             *round.Spec
	store            *enginetest.MemStore
	base             cid.Cid
	honest, liar     *engine.ModelEngine
	referee          *engine.ModelEngine
	honestU, liarU   *wire.Update
	honestT, liarT   trace.Trace
	honestID, liarID string
}

func newDispute(t testing.TB, spec *round.Spec, deviate int) *dispute {
	t.Helper()
	d := &dispute{spec: spec, store: enginetest.NewMemStore(), honestID: "peer-h", liarID: "peer-l"}
	mk := func() *engine.ModelEngine {
		e, err := engine.NewModelEngine(spec, trainText(), d.store)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	d.honest, d.liar, d.referee = mk(), mk(), mk()
	base, err := d.honest.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	d.base = base
	d.liar.Deviate(deviate)
	rh := d.honest.Run(node.TrainJob{Step: 0, Base: base, Unit: 0})
	rl := d.liar.Run(node.TrainJob{Step: 0, Base: base, Unit: 0, Replica: 1})
	if rh.Err != nil || rl.Err != nil {
		t.Fatal(rh.Err, rl.Err)
	}
	d.honestU, d.liarU = rh.Update, rl.Update
	d.honestT, d.liarT = d.traceOf(t, d.honestU), d.traceOf(t, d.liarU)
	return d
}

func (d *dispute) traceOf(t testing.TB, u *wire.Update) trace.Trace {
	t.Helper()
	b, err := d.store.Blob(u.Trace)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Unmarshal(b, d.spec.InnerSteps+1)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// check runs the referee's job on the dispute between the honest update
// and liar (the liar's own, or another lie).
func (d *dispute) check(full bool, liar *wire.Update) node.Result {
	claims := []node.Claim{{Peer: d.honestID, Update: d.honestU}, {Peer: d.liarID, Update: liar}}
	slices.SortFunc(claims, func(a, b node.Claim) int {
		if a.Peer < b.Peer {
			return -1
		}
		return 1
	})
	return d.referee.Run(node.VerifyJob{Step: 0, Base: d.base, Unit: 0, Checked: true, Full: full, Updates: claims})
}

// materialise runs the honest disputant's StateJob.
func (d *dispute) materialise(t testing.TB, liar *wire.Update) cid.Cid {
	t.Helper()
	r := d.honest.Run(node.StateJob{Step: 0, Base: d.base, Unit: 0, Own: d.honestU.Trace, Other: liar.Trace})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r.Result
}

// settle runs the check, serving the state it asks for as the honest
// disputant would, and returns the verdict and the referee's inner steps.
// wantNeed is the state the referee must ask for, unless the store holds
// it already.
func (d *dispute) settle(t testing.TB, liar *wire.Update, wantNeed cid.Cid) (*wire.Verdict, uint64) {
	t.Helper()
	if wantNeed.Defined() && d.store.HasBlob(wantNeed) {
		wantNeed = cid.Undef
	}
	before := d.referee.InnerSteps()
	r := d.check(false, liar)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if !r.Need.Equals(wantNeed) {
		t.Fatalf("the referee asked for %v, want %v", r.Need, wantNeed)
	}
	if r.Need.Defined() {
		if got := d.materialise(t, liar); !got.Equals(r.Need) {
			t.Fatalf("the honest disputant materialised %v, the referee needs %v", got, r.Need)
		}
		if r = d.check(false, liar); r.Err != nil || r.Need.Defined() {
			t.Fatalf("with the state in the store: %v, need %v", r.Err, r.Need)
		}
	}
	return r.Verdict, d.referee.InnerSteps() - before
}

// TestDisputeBisectsToFirstDifferingStep: a liar whose training goes
// wrong at inner step j (and who traces what it computed) is convicted by
// a referee that recomputes inner step j alone, from the state after
// j-1 steps that the honest disputant materialises; the bisection finds
// exactly step j, and the honest replica is never blamed.
func TestDisputeBisectsToFirstDifferingStep(t *testing.T) {
	spec := testSpec()
	for j := 1; j <= spec.InnerSteps; j++ {
		t.Run(fmt.Sprintf("j=%d", j), func(t *testing.T) {
			d := newDispute(t, spec, j)
			if d.honestU.Raw.Equals(d.liarU.Raw) {
				t.Fatal("the liar's pseudo-gradient is the honest one")
			}
			leaf0 := d.honestT[0]
			if got := trace.Divergence(leaf0, []trace.Trace{d.honestT, d.liarT}); got != j {
				t.Fatalf("the traces first differ at leaf %d, want %d", got, j)
			}
			want := cid.Undef
			if j > 1 {
				want = d.honestT[j-1].CID()
			}
			v, steps := d.settle(t, d.liarU, want)
			if !slices.Equal(v.Bad, []string{d.liarID}) || !v.Raw.Equals(d.honestU.Raw) {
				t.Errorf("verdict bad %v raw %s, want [%s] and the honest raw %s", v.Bad, v.Raw, d.liarID, d.honestU.Raw)
			}
			if steps != 1 {
				t.Errorf("the referee took %d inner steps, want 1", steps)
			}
		})
	}
}

// TestDisputeBisectionLies: lies that do not change the training are
// caught too, and an honest replica is not blamed. A pseudo-gradient
// that does not follow from an honest trace is caught against the agreed
// final state (no inner step recomputed); a forged trace (the honest
// training, one leaf changed) at the forged leaf; a trace of another
// length outright; an honest replica accused of a bad payload passes.
func TestDisputeBisectionLies(t *testing.T) {
	spec := testSpec()
	h := spec.InnerSteps
	d := newDispute(t, spec, 0)
	honestLiar := *d.liarU // the liar trained honestly

	rawLie := honestLiar
	rawLie.Raw = rawLie.Residual
	v, steps := d.settle(t, &rawLie, d.honestT[h].CID())
	if !slices.Equal(v.Bad, []string{d.liarID}) || !v.Raw.Equals(d.honestU.Raw) || steps != 0 {
		t.Errorf("a raw lie: bad %v raw %s after %d inner steps, want [%s], the honest raw, 0 steps", v.Bad, v.Raw, steps, d.liarID)
	}

	forged := slices.Clone(d.liarT)
	forged[3][0] ^= 1
	tid, _ := d.store.PutBlob(forged.Marshal())
	traceLie := honestLiar
	traceLie.Trace = tid
	v, steps = d.settle(t, &traceLie, d.honestT[2].CID())
	if !slices.Equal(v.Bad, []string{d.liarID}) || steps != 1 {
		t.Errorf("a forged leaf 3: bad %v after %d inner steps, want [%s] after 1", v.Bad, steps, d.liarID)
	}

	short, _ := d.store.PutBlob(d.liarT[:h].Marshal())
	shortLie := honestLiar
	shortLie.Trace = short
	v, _ = d.settle(t, &shortLie, d.honestT[h].CID())
	if !slices.Equal(v.Bad, []string{d.liarID}) || !v.Raw.Equals(d.honestU.Raw) {
		t.Errorf("a short trace: bad %v raw %s, want [%s] and the honest raw", v.Bad, v.Raw, d.liarID)
	}

	// Both trained honestly (the liar's residual is its own): a check
	// blames no one.
	v, steps = d.settle(t, &honestLiar, d.honestT[h].CID())
	if len(v.Bad) != 0 || !v.Raw.Equals(d.honestU.Raw) || steps != 0 {
		t.Errorf("two honest replicas: bad %v raw %s after %d steps", v.Bad, v.Raw, steps)
	}
}

// TestDisputeFallsBackToFull: a checked job marked Full, or one whose
// updates have no trace, recomputes every inner step and reaches the
// verdict the bisection reaches.
func TestDisputeFallsBackToFull(t *testing.T) {
	spec := testSpec()
	d := newDispute(t, spec, 2)
	before := d.referee.InnerSteps()
	r := d.check(true, d.liarU)
	if r.Err != nil || r.Need.Defined() {
		t.Fatal(r.Err, r.Need)
	}
	if !slices.Equal(r.Verdict.Bad, []string{d.liarID}) || !r.Verdict.Raw.Equals(d.honestU.Raw) {
		t.Errorf("full: bad %v raw %s", r.Verdict.Bad, r.Verdict.Raw)
	}
	if got := d.referee.InnerSteps() - before; got != uint64(spec.InnerSteps) {
		t.Errorf("full: %d inner steps, want %d", got, spec.InnerSteps)
	}
	untraced := *d.liarU
	untraced.Trace = cid.Undef
	r = d.check(false, &untraced)
	if r.Err != nil || r.Need.Defined() || !slices.Equal(r.Verdict.Bad, []string{d.liarID}) {
		t.Errorf("untraced: %v need %v verdict %+v", r.Err, r.Need, r.Verdict)
	}
}

// disputeSpec is the round of the dispute benchmark: gpt-tiny, h inner
// steps a unit.
func disputeSpec(h int) *round.Spec {
	s := testSpec()
	cfg, _ := gradient.Preset("gpt-tiny")
	s.Model = round.Model{Arch: cfg.Arch, Vocab: cfg.Vocab, Ctx: cfg.Ctx, Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads, Seed: 7}
	s.InnerSteps = h
	s.TargetSamples = 3 * s.InnerSteps * s.Batch
	return s
}

// BenchmarkDispute is a referee's cost of settling one dispute over a
// unit of gpt-tiny with H = 50 inner steps, the liar going wrong halfway:
// full recomputes the unit (what a check did before traces), bisect
// recomputes the one inner step the traces first differ on, from the
// state the honest disputant materialised (its cost, not counted).
func BenchmarkDispute(b *testing.B) {
	const h = 50
	d := newDispute(b, disputeSpec(h), h/2)
	d.materialise(b, d.liarU)
	for _, mode := range []string{"full", "bisect"} {
		b.Run(fmt.Sprintf("H=%d/%s", h, mode), func(b *testing.B) {
			before := d.referee.InnerSteps()
			n := 0
			for b.Loop() {
				r := d.check(mode == "full", d.liarU)
				if r.Err != nil || r.Need.Defined() || !slices.Equal(r.Verdict.Bad, []string{d.liarID}) {
					b.Fatal(r.Err, r.Need, r.Verdict)
				}
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(n), "ms/dispute")
			b.ReportMetric(float64(d.referee.InnerSteps()-before)/float64(n), "inner-steps/dispute")
		})
	}
}
