package exchange

import (
	"math"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/gradient/codec"
)

func smallConfig() Config {
	return Config{Model: "mlp", Workers: 4, Steps: 50, Batch: 4, LR: 6e-3, OuterLR: 0.7, OuterMomentum: 0.5, Seed: 1, EvalBatches: 2}
}

// TestMethods runs every row of the experiment on a small model: each
// completes, a compressed method sends fewer bytes than fp32 at the same H,
// and the loss is finite.
func TestMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("trains every method")
	}
	c := smallConfig()
	c.Batch = 1 // every method, each cheaply: the test checks they run and what they send, not how well
	d := BuiltinData()
	bytes := map[string]int64{}
	for _, m := range Methods(c.Workers) {
		if !m.Sync && m.H > c.Steps {
			continue // the bench skips it too
		}
		r, err := Run(c, m, d)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if math.IsNaN(r.EvalLoss) || r.BytesPerWorker <= 0 {
			t.Errorf("%s: loss %v bytes %d", m.Name, r.EvalLoss, r.BytesPerWorker)
		}
		bytes[m.Name] = r.BytesPerWorker
	}
	if !(bytes["diloco H=50 block-sign"] < bytes["diloco H=50 sign"] && bytes["diloco H=50 topk:values=2bit, mean:partial=true, decay 0.5"] == bytes["diloco H=50 topk:values=2bit"]) {
		t.Errorf("sparse byte counts out of order: %v", bytes)
	}
	if !(bytes["diloco H=50 topk:values=2bit"] < bytes["diloco H=50 fp16"] && bytes["diloco H=50 fp16"] < bytes["diloco H=50 fp32"] && bytes["diloco H=50 fp32"] < bytes["diloco H=10 fp32"] && bytes["diloco H=10 fp32"] < bytes["sync fp32"]) {
		t.Errorf("byte counts out of order: %v", bytes)
	}
}

// TestDeterministic: the same configuration gives the same loss, bit for
// bit, although workers run concurrently.
func TestDeterministic(t *testing.T) {
	c := smallConfig()
	c.Steps = 20
	d := BuiltinData()
	m := Method{Name: "topk", H: 5, Codec: "topk:chunk=256,k=8,values=int8", Rule: "median", Byzantine: 1, Attack: "noise"}
	a, err := Run(c, m, d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(c, m, d)
	if err != nil {
		t.Fatal(err)
	}
	if math.Float64bits(a.EvalLoss) != math.Float64bits(b.EvalLoss) || a.BytesPerWorker != b.BytesPerWorker {
		t.Errorf("two runs differ: %v/%d and %v/%d", a.EvalLoss, a.BytesPerWorker, b.EvalLoss, b.BytesPerWorker)
	}
}

// TestByzantine: one of four workers sending −10× its update ruins the
// mean, while the median stays near the clean run (within 10%: with four
// workers the median averages only the two middle values of each
// coordinate, so it is noisier than the mean of the three honest ones).
func TestByzantine(t *testing.T) {
	c := smallConfig()
	d := BuiltinData()
	run := func(m Method) float64 {
		r, err := Run(c, m, d)
		if err != nil {
			t.Fatal(err)
		}
		return r.EvalLoss
	}
	clean := run(Method{Name: "clean", H: 10, Codec: "fp32", Rule: "median"})
	mean := run(Method{Name: "mean", H: 10, Codec: "fp32", Rule: "mean", Byzantine: 1, Attack: "sign-flip"})
	median := run(Method{Name: "median", H: 10, Codec: "fp32", Rule: "median", Byzantine: 1, Attack: "sign-flip"})
	t.Logf("clean %.4f, attacked mean %.4f, attacked median %.4f", clean, mean, median)
	if !(mean > clean*1.2) || !(median < clean*1.1) {
		t.Errorf("clean %.4f, attacked mean %.4f, attacked median %.4f: want the mean degraded and the median within 10%%", clean, mean, median)
	}
}

func TestValidate(t *testing.T) {
	c := smallConfig()
	d := BuiltinData()
	for _, m := range []Method{
		{Name: "h too big", H: 51, Codec: "fp32"},
		{Name: "all byzantine", H: 5, Codec: "fp32", Byzantine: 4},
		{Name: "bad codec", H: 5, Codec: "zip"},
		{Name: "bad rule", H: 5, Codec: "fp32", Rule: "mode"},
	} {
		if _, err := Run(c, m, d); err == nil {
			t.Errorf("%s: want an error", m.Name)
		}
	}
}

// TestContribution: a sparse codec's update reaches the rule as a sparse
// vector listing exactly the sent elements, with the decoded values, and
// a dense codec's as a dense one; the byte count is the encoding's.
func TestContribution(t *testing.T) {
	c := smallConfig()
	model, err := newModel(c)
	if err != nil {
		t.Fatal(err)
	}
	gp := model.Params()
	specs := make([]codec.TensorSpec, len(gp))
	n := 0
	for i, p := range gp {
		specs[i] = codec.TensorSpec{Name: p.Name, Shape: p.Shape()}
		n += p.Size()
	}
	update := make([]float32, n)
	nz := newNoise(7)
	for i := range update {
		update[i] = nz.normal()
	}
	for _, spec := range []string{"fp32", "sign", "block-sign", "topk:chunk=64,k=4,values=2bit"} {
		cd, err := codec.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		e, err := contribution(cd, specs, update, nil, gp)
		if err != nil {
			t.Fatal(spec, err)
		}
		want, err := cd.Encode(splitTensors(update, gp), nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.bytes != int64(len(want)) {
			t.Errorf("%s: %d bytes, want %d", spec, e.bytes, len(want))
		}
		dec, err := cd.Decode(want, codec.Limits{Expect: specs})
		if err != nil {
			t.Fatal(err)
		}
		flat := joinTensors(dec, n)
		sparse := spec == "block-sign" || strings.HasPrefix(spec, "topk")
		if (e.Sparse != nil) != sparse || (e.Dense != nil) == sparse {
			t.Fatalf("%s: sparse %v, dense %v", spec, e.Sparse != nil, e.Dense != nil)
		}
		got := e.Dense
		if sparse {
			if len(e.Sparse.Index) == 0 || len(e.Sparse.Index) >= n/2 || e.Sparse.Len != n {
				t.Fatalf("%s: %d of %d elements listed", spec, len(e.Sparse.Index), n)
			}
			got = make([]float32, n)
			for k, j := range e.Sparse.Index {
				got[j] = e.Sparse.Value[k]
			}
		}
		for j := range flat {
			if math.Float32bits(got[j]) != math.Float32bits(flat[j]) {
				t.Fatalf("%s: element %d is %g, decoded %g", spec, j, got[j], flat[j])
			}
		}
	}
}

// TestFeedbackOptions: decaying the residual and keeping it in the
// worker's parameters each change the result (they take effect), and
// each run is deterministic.
func TestFeedbackOptions(t *testing.T) {
	c := smallConfig()
	c.Steps = 20
	d := BuiltinData()
	loss := func(m Method) float64 {
		a, err := Run(c, m, d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(c, m, d)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(a.EvalLoss) != math.Float64bits(b.EvalLoss) {
			t.Fatalf("%s: two runs differ: %v and %v", m.Name, a.EvalLoss, b.EvalLoss)
		}
		return a.EvalLoss
	}
	base := Method{Name: "plain", H: 5, Codec: "topk:chunk=256,k=8,values=2bit", Rule: "mean:partial=true"}
	decay, local := base, base
	decay.Name, decay.Decay = "decay", 0.5
	local.Name, local.Local = "local", true
	p, dl, l := loss(base), loss(decay), loss(local)
	if p == dl || p == l || dl == l {
		t.Errorf("losses %v (plain), %v (decay 0.5), %v (local residual): want three different results", p, dl, l)
	}
}
