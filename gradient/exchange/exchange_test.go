package exchange

import (
	"math"
	"testing"
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
	d := BuiltinData()
	bytes := map[string]int64{}
	for _, m := range Methods(c.Workers) {
		r, err := Run(c, m, d)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if math.IsNaN(r.EvalLoss) || r.BytesPerWorker <= 0 {
			t.Errorf("%s: loss %v bytes %d", m.Name, r.EvalLoss, r.BytesPerWorker)
		}
		bytes[m.Name] = r.BytesPerWorker
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
