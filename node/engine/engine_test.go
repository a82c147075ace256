package engine_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/internal/testround"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden hashes in testdata")

var _ engine.Store = (*enginetest.MemStore)(nil)

// testSpec is the shared small round (testround.Spec) of 3 units a step,
// with an outer step with momentum, so that a step's result depends on
// the momenta its base restores.
func testSpec() *round.Spec { return testround.Spec(3) }

func trainText() []byte {
	train, _ := data.Builtin().Corpus(1<<18, 16<<10)
	return train
}

// run trains and applies steps of a round with one engine per peer,
// three units a step, and returns a line per unit and per step with the
// hashes the engines computed.
func run(t *testing.T, steps int) []string {
	t.Helper()
	return runSpec(t, testSpec(), steps)
}

// runSpec is run with another spec.
func runSpec(t *testing.T, spec *round.Spec, steps int) []string {
	t.Helper()
	train := trainText()
	store := enginetest.NewMemStore()
	peers := []string{"peer-a", "peer-b", "peer-c"}
	engines := map[string]*engine.ModelEngine{}
	for _, p := range peers {
		e, err := engine.NewModelEngine(spec, train, store)
		if err != nil {
			t.Fatal(err)
		}
		engines[p] = e
	}
	base, err := engines["peer-a"].Genesis()
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{fmt.Sprintf("genesis %s", base)}
	for s := range uint64(steps) {
		var included []wire.Included
		for u, p := range peers {
			r := engines[p].Run(node.TrainJob{Step: s, Base: base, Unit: uint32(u)})
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			lines = append(lines, fmt.Sprintf("step %d unit %d %s: raw %s payload %s residual %s loss %.6f", s, u, p, r.Update.Raw, r.Update.Payload, r.Update.Residual, r.Update.Loss))
			included = append(included, wire.Included{Peer: p, Unit: uint32(u), Payload: r.Update.Payload, Weight: r.Update.Samples})
		}
		wire.SortIncluded(included)
		var result cid.Cid
		for _, p := range peers {
			r := engines[p].Run(node.ApplyJob{Step: s, Base: base, Included: included})
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if result.Defined() && !r.Result.Equals(result) {
				t.Fatalf("step %d: %s applied to %s, another engine to %s", s, p, r.Result, result)
			}
			result = r.Result
		}
		lines = append(lines, fmt.Sprintf("step %d applied: %s", s, result))
		base = result
	}
	return lines
}

// TestGolden pins what the engine computes: every update's hashes and
// every checkpoint, over steps whose outer momenta carry over. Run with
// -rewrite after a deliberate change of the computation.
func TestGolden(t *testing.T) {
	got := strings.Join(run(t, 3), "\n") + "\n"
	path := filepath.Join("testdata", "golden.txt")
	if *rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the engine's hashes changed (run with -rewrite if that is intended):\ngot:\n%swant:\n%s", got, want)
	}
}

// TestPartialRule: with a sparse codec the engines pass the rule which
// elements each update sent, so mean:partial=true gives another result
// than the mean (it divides a coordinate by the weight of the updates that
// sent it, not by all), and every engine applies the same one.
func TestPartialRule(t *testing.T) {
	last := func(rule string) string {
		spec := testSpec()
		spec.Codec = "block-sign:chunk=64,every=4"
		spec.Aggregation = rule
		lines := runSpec(t, spec, 1)
		return lines[len(lines)-1]
	}
	mean, partial := last("mean"), last("mean:partial=true")
	if mean == partial {
		t.Errorf("mean and mean:partial=true give the same step: %s", mean)
	}
}

// TestVerify: a replica partner's update checks out against the engine's
// own computation of the unit; one encoded from another residual than it
// names, or with another raw hash, makes its sender bad.
func TestVerify(t *testing.T) {
	for _, decay := range []float64{0, 0.25} {
		t.Run(fmt.Sprintf("feedback decay %g", decay), func(t *testing.T) {
			spec := testSpec()
			spec.FeedbackDecay = decay
			testVerify(t, spec)
		})
	}
}

// TestFeedbackDecay: the residual an update names is the one its codec
// used, after the round's decay. With decay 1 every unit starts from a
// cleared residual, the zero residual of a fresh engine; without decay
// the second unit's residual holds what the first did not send.
func TestFeedbackDecay(t *testing.T) {
	for _, decay := range []float64{0, 1} {
		spec := testSpec()
		spec.Codec = "topk:chunk=64,k=4,values=int8"
		spec.FeedbackDecay = decay
		e, err := engine.NewModelEngine(spec, trainText(), enginetest.NewMemStore())
		if err != nil {
			t.Fatal(err)
		}
		base, err := e.Genesis()
		if err != nil {
			t.Fatal(err)
		}
		var res []cid.Cid
		for u := range uint32(2) {
			r := e.Run(node.TrainJob{Step: 0, Base: base, Unit: u})
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			res = append(res, r.Update.Residual)
		}
		if same := res[0].Equals(res[1]); same != (decay == 1) {
			t.Errorf("decay %g: residuals %s and %s of the first two units", decay, res[0], res[1])
		}
	}
}

func testVerify(t *testing.T, spec *round.Spec) {
	train := trainText()
	store := enginetest.NewMemStore()
	a, err := engine.NewModelEngine(spec, train, store)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := engine.NewModelEngine(spec, train, store)
	base, err := a.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	// b has encoded a unit before, so its residual is not a's.
	if r := b.Run(node.TrainJob{Step: 0, Base: base, Unit: 1}); r.Err != nil {
		t.Fatal(r.Err)
	}
	ra := a.Run(node.TrainJob{Step: 0, Base: base, Unit: 0})
	rb := b.Run(node.TrainJob{Step: 0, Base: base, Unit: 0, Replica: 1})
	if ra.Err != nil || rb.Err != nil {
		t.Fatal(ra.Err, rb.Err)
	}
	if !ra.Update.Raw.Equals(rb.Update.Raw) || ra.Update.Payload.Equals(rb.Update.Payload) {
		t.Fatalf("replicas: raw %s and %s (want equal), payloads %s and %s (want different)", ra.Update.Raw, rb.Update.Raw, ra.Update.Payload, rb.Update.Payload)
	}
	verdict := func(checked bool, u *wire.Update) *wire.Verdict {
		t.Helper()
		// A checked job recomputes every inner step here (Full): the
		// bisection of traces has its own tests (bisect_test.go).
		r := a.Run(node.VerifyJob{Step: 0, Base: base, Unit: 0, Checked: checked, Full: checked, Updates: []node.Claim{{Peer: "peer-b", Update: u}}})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Verdict
	}
	for _, checked := range []bool{false, true} {
		if v := verdict(checked, rb.Update); len(v.Bad) != 0 || !v.Raw.Equals(ra.Update.Raw) {
			t.Errorf("checked %v: an honest partner's update got %+v", checked, v)
		}
		lie := *rb.Update
		lie.Residual = ra.Update.Residual
		if v := verdict(checked, &lie); len(v.Bad) != 1 || v.Bad[0] != "peer-b" {
			t.Errorf("checked %v: an update naming another residual got %+v", checked, v)
		}
		lie = *rb.Update
		lie.Raw = lie.Payload
		if v := verdict(checked, &lie); len(v.Bad) != 1 {
			t.Errorf("checked %v: an update with another raw hash got %+v", checked, v)
		}
	}
}

// TestApplyReportsLeftOut: an apply under norm-clip's screen names the
// peer whose update it left out, a sign-flipped copy of an honest one.
func TestApplyReportsLeftOut(t *testing.T) {
	spec := testSpec()
	spec.Codec = "fp32"
	spec.Aggregation = "norm-clip:screen=true"
	train, store := trainText(), enginetest.NewMemStore()
	var included []wire.Included
	var base cid.Cid
	var first *wire.Update
	for u, p := range []string{"peer-a", "peer-b", "peer-c"} {
		e, err := engine.NewModelEngine(spec, train, store)
		if err != nil {
			t.Fatal(err)
		}
		if base, err = e.Genesis(); err != nil {
			t.Fatal(err)
		}
		r := e.Run(node.TrainJob{Step: 0, Base: base, Unit: uint32(u)})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if first == nil {
			first = r.Update
		}
		included = append(included, wire.Included{Peer: p, Unit: uint32(u), Payload: r.Update.Payload, Weight: r.Update.Samples})
	}
	// The flipped copy: peer-a's pseudo-gradient (fp32, so the payload
	// holds it exactly after the header), times -10, encoded afresh.
	b, err := store.Blob(first.Payload)
	if err != nil {
		t.Fatal(err)
	}
	flipper, _ := engine.NewModelEngine(spec, train, store)
	delta := decodeFP32(t, b)
	for i := range delta {
		delta[i] *= -10
	}
	fu, err := flipper.Encode(delta, 1)
	if err != nil {
		t.Fatal(err)
	}
	included = append(included, wire.Included{Peer: "peer-z", Unit: 3, Payload: fu.Payload, Weight: fu.Samples})
	wire.SortIncluded(included)
	r := flipper.Run(node.ApplyJob{Step: 0, Base: base, Included: included})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(r.LeftOut) != 1 || r.LeftOut[0] != "peer-z" {
		t.Fatalf("left out %v, want peer-z", r.LeftOut)
	}
}

// decodeFP32 decodes an fp32 payload into one flat vector.
func decodeFP32(t *testing.T, b []byte) []float32 {
	t.Helper()
	c, err := codec.Parse("fp32")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Decode(b, codec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for _, x := range ts {
		out = append(out, x.Data...)
	}
	return out
}
