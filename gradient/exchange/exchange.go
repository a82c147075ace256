// Package exchange measures how much communication a training method needs
// and what it costs in quality: K workers in one process (no network)
// train the same model on the same data with the same token budget, either
// synchronously (fp32 gradients averaged every step) or DiLoCo style (H
// inner AdamW steps, a compressed pseudo-gradient with error feedback, an
// aggregation rule and an outer Nesterov step), optionally with some
// workers Byzantine. Every run is deterministic: the same configuration
// gives the same table.
//
// A sparse codec's update reaches the rule as a sparse vector, so that
// mean:partial=true can average a coordinate over the workers that sent
// it: under the plain mean, a coordinate one worker of eight sent moves by
// an eighth of its value. Error feedback can decay (Method.Decay): a
// worker restarts every outer step from the global parameters and learns
// again, in its next pseudo-gradient, much of what it has not yet sent, so
// a residual kept whole counts that part twice.
package exchange

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/aggregate"
	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/gradient/data"
)

// Config is what every method of one experiment shares.
type Config struct {
	Model         string  // zoo preset
	Workers       int     // K
	Steps         int     // inner steps per worker (the token budget: Workers*Steps*Batch sequences)
	Batch         int     // sequences per worker per step
	LR            float32 // peak inner learning rate (AdamW)
	OuterLR       float32 // DiLoCo outer learning rate
	OuterMomentum float32 // DiLoCo outer Nesterov momentum
	Seed          uint64
	EvalBatches   int
}

// DefaultConfig is the configuration `shoal bench exchange` uses.
func DefaultConfig() Config {
	return Config{Model: "gpt-tiny", Workers: 8, Steps: 800, Batch: 4, LR: 6e-3, OuterLR: 0.7, OuterMomentum: 0.5, Seed: 1, EvalBatches: 16}
}

// QuickConfig is DefaultConfig scaled down for tests and smoke runs (the
// whole table in a few minutes on two cores): 4 workers × 100 steps and 4
// evaluation batches. Its figures show that every method runs, not how
// the methods compare at full budget.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Workers, c.Steps, c.EvalBatches = 4, 100, 4
	return c
}

// Method is one row of the experiment.
type Method struct {
	Name      string
	Sync      bool   // synchronous data parallel: fp32 gradients averaged every step
	H         int    // inner steps per outer step (DiLoCo)
	Codec     string // codec spec (DiLoCo)
	Rule      string // aggregation rule spec (DiLoCo; default "mean")
	Byzantine int    // workers 0..Byzantine-1 are Byzantine
	Attack    string // "sign-flip" (−10× their honest update) or "noise" (random, 10× the honest norm)
	// Decay weakens error feedback: before each encoding a worker's
	// residual is multiplied by 1-Decay (0 keeps it whole, 1 drops it).
	Decay float32
	// Local keeps what a worker has not sent in its own parameters
	// rather than adding it to the next pseudo-gradient: the worker
	// resumes from global - residual.
	Local bool
}

// Row is the measured outcome of a method.
type Row struct {
	Method
	BytesPerWorker int64   // bytes an honest worker sent over the run
	EvalLoss       float64 // final held-out loss
	Seconds        float64
}

// Methods returns the experiment's rows: the synchronous baseline, DiLoCo
// at H=10 and H=50 with raw fp32, DiLoCo H=50 with each codec, sign at
// H=100, the sparse codecs with partial averaging and decaying or local
// error feedback, and a quarter of the workers Byzantine under the mean
// and under each robust rule (fp32), and under the partial mean and
// partial norm clipping (top-k with 2-bit values).
func Methods(workers int) []Method {
	ms := []Method{
		{Name: "sync fp32", Sync: true},
		{Name: "diloco H=10 fp32", H: 10, Codec: "fp32"},
		{Name: "diloco H=50 fp32", H: 50, Codec: "fp32"},
	}
	for _, c := range []string{"fp16", "bf16", "int8", "topk:values=fp16", "topk:values=int8", "topk:values=2bit", "sign", "dct-topk"} {
		ms = append(ms, Method{Name: "diloco H=50 " + c, H: 50, Codec: c})
	}
	// Fewer outer steps cost more than compression does: sign at H=100
	// halves the bytes of sign at H=50 and loses far more.
	ms = append(ms, Method{Name: "diloco H=100 sign", H: 100, Codec: "sign"})
	// Sparse updates: averaging each coordinate over the workers that sent
	// it, decaying the error feedback (or keeping the residual in the
	// worker's parameters), each alone and together; block-sign.
	for _, x := range []struct {
		c, r  string
		decay float32
		local bool
	}{
		{"topk:values=2bit", "mean:partial=true", 0, false},
		{"topk:values=2bit", "mean", 0.5, false},
		{"topk:values=2bit", "mean:partial=true", 0.5, false},
		{"topk:values=2bit", "mean:partial=true", 0.25, false},
		{"topk:values=2bit", "mean:partial=true", 0.75, false},
		{"topk:values=2bit", "mean", 0, true},
		{"topk:values=2bit", "mean:partial=true", 0, true},
		{"block-sign", "mean", 0, false},
		{"block-sign", "mean", 0.5, false},
		{"block-sign", "mean:partial=true", 0, false},
		{"block-sign", "mean:partial=true", 0.5, false},
		{"block-sign", "mean", 0, true},
		{"block-sign", "mean:partial=true", 0, true},
	} {
		ms = append(ms, sparseMethod(x.c, x.r, x.decay, x.local, 0, ""))
	}
	if workers >= 4 {
		byz := workers / 4
		for _, attack := range []string{"sign-flip", "noise"} {
			for _, rule := range []string{"mean", "median", "trimmed-mean:trim=0.25", "norm-clip", "centered-clip"} {
				ms = append(ms, Method{Name: fmt.Sprintf("diloco H=50 fp32, %d byzantine %s, %s", byz, attack, rule),
					H: 50, Codec: "fp32", Rule: rule, Byzantine: byz, Attack: attack})
			}
		}
		for _, attack := range []string{"sign-flip", "noise"} {
			for _, rule := range []string{"mean:partial=true", "norm-clip:partial=true", "norm-clip:partial=true,screen=true"} {
				ms = append(ms, sparseMethod("topk:values=2bit", rule, 0.25, false, byz, attack))
			}
		}
	}
	return ms
}

// sparseMethod is a DiLoCo H=50 row of a sparse codec, named after what
// differs from the defaults: "diloco H=50 CODEC[, RULE][, decay D][, local
// residual][, B byzantine ATTACK]".
func sparseMethod(codecSpec, rule string, decay float32, local bool, byz int, attack string) Method {
	name := "diloco H=50 " + codecSpec
	if rule != "mean" {
		name += ", " + rule
	}
	if decay != 0 {
		name += fmt.Sprintf(", decay %g", decay)
	}
	if local {
		name += ", local residual"
	}
	if byz > 0 {
		name += fmt.Sprintf(", %d byzantine %s", byz, attack)
	}
	return Method{Name: name, H: 50, Codec: codecSpec, Rule: rule, Decay: decay, Local: local, Byzantine: byz, Attack: attack}
}

// Data is an experiment's training and evaluation text.
type Data struct {
	Train, Eval []byte
	Floor       float64 // best possible loss, 0 if unknown
}

// BuiltinData returns the built-in task's default corpus.
func BuiltinData() Data {
	t := data.Builtin()
	tr, ev := t.Corpus(data.BuiltinTrainBytes, data.BuiltinEvalBytes)
	return Data{Train: tr, Eval: ev, Floor: t.EntropyRate()}
}

func (c Config) validate(m Method) error {
	switch {
	case c.Workers < 1 || c.Steps < 1 || c.Batch < 1 || c.EvalBatches < 1:
		return errors.New("exchange: workers, steps, batch and eval batches must be positive")
	case !m.Sync && (m.H < 1 || m.H > c.Steps):
		return fmt.Errorf("exchange: %s: H must be in [1, steps]", m.Name)
	case m.Byzantine < 0 || m.Byzantine >= c.Workers:
		return fmt.Errorf("exchange: %s: byzantine workers must be fewer than workers", m.Name)
	}
	return nil
}

func (c Config) schedule() gradient.Schedule {
	return gradient.Schedule{Peak: c.LR, Warmup: min(c.Steps/10, 100), Total: c.Steps, MinFrac: 0.1}
}

// sampleWorker fills tok with worker k's batch of its step s: every method
// sees the same sequences.
func (c Config) sampleWorker(tok []int32, d Data, ctx, k, s int) {
	data.Sample(tok, d.Train, c.Seed, uint64(k+1), uint64(s), c.Batch, ctx)
}

// Run trains one method and evaluates it.
func Run(c Config, m Method, d Data) (Row, error) {
	if err := c.validate(m); err != nil {
		return Row{}, err
	}
	start := time.Now()
	var row Row
	var err error
	if m.Sync {
		row, err = runSync(c, m, d)
	} else {
		row, err = runDiLoCo(c, m, d)
	}
	row.Seconds = time.Since(start).Seconds()
	return row, err
}

func newModel(c Config) (gradient.Model, error) {
	cfg, err := gradient.Preset(c.Model)
	if err != nil {
		return nil, err
	}
	cfg.Seed = c.Seed
	return gradient.New(cfg)
}

func evaluate(c Config, m gradient.Model, d Data) float64 {
	ctx := m.Config().Ctx
	return gradient.Evaluate(m, data.EvalBatches(d.Eval, c.Batch, ctx, c.EvalBatches), c.Batch)
}

// runSync is data-parallel training: each step every worker computes the
// gradient of its batch and they are averaged (fp32), which equals one step
// on the union batch; every worker sends 4 bytes per parameter per step.
func runSync(c Config, m Method, d Data) (Row, error) {
	model, err := newModel(c)
	if err != nil {
		return Row{}, err
	}
	ctx := model.Config().Ctx
	tr := gradient.NewTrainer(model, gradient.DefaultAdamW(), c.schedule())
	w := c.Batch * (ctx + 1)
	tok := make([]int32, c.Workers*w)
	for s := 0; s < c.Steps; s++ {
		for k := 0; k < c.Workers; k++ {
			c.sampleWorker(tok[k*w:(k+1)*w], d, ctx, k, s)
		}
		if st := tr.Step(tok, c.Workers*c.Batch); math.IsNaN(float64(st.Loss)) {
			return Row{}, fmt.Errorf("exchange: %s diverged at step %d", m.Name, s)
		}
	}
	return Row{Method: m, BytesPerWorker: int64(c.Steps) * 4 * int64(gradient.NumParams(model)), EvalLoss: evaluate(c, model, d)}, nil
}

type worker struct {
	model    gradient.Model
	tr       *gradient.Trainer
	residual [][]float32
	delta    []float32
	tok      []int32
	bytes    int64
}

func runDiLoCo(c Config, m Method, d Data) (Row, error) {
	global, err := newModel(c)
	if err != nil {
		return Row{}, err
	}
	cd, err := codec.Parse(m.Codec)
	if err != nil {
		return Row{}, err
	}
	ruleSpec := m.Rule
	if ruleSpec == "" {
		ruleSpec = "mean"
	}
	rule, err := aggregate.Parse(ruleSpec)
	if err != nil {
		return Row{}, err
	}
	gp := global.Params()
	specs := make([]codec.TensorSpec, len(gp))
	for i, p := range gp {
		specs[i] = codec.TensorSpec{Name: p.Name, Shape: p.Shape()}
	}
	workers := make([]*worker, c.Workers)
	for k := range workers {
		wm, err := newModel(c)
		if err != nil {
			return Row{}, err
		}
		wk := &worker{model: wm, tr: gradient.NewTrainer(wm, gradient.DefaultAdamW(), c.schedule())}
		for _, p := range gp {
			wk.residual = append(wk.residual, make([]float32, p.Size()))
		}
		workers[k] = wk
	}
	outer := gradient.NewOuter(gp, c.OuterLR, c.OuterMomentum)
	base := gradient.Flatten(nil, gp)
	agg := make([]float32, len(base))
	noise := newNoise(c.Seed)
	for s0 := 0; s0 < c.Steps; s0 += m.H {
		h := min(m.H, c.Steps-s0)
		contribs := make([]aggregate.Contribution, c.Workers)
		errs := make([]error, c.Workers)
		// Workers are independent within an outer step: run them
		// concurrently, each writing only its own slot.
		parallel(c.Workers, func(k int) {
			contribs[k], errs[k] = workerRound(c, m, d, workers[k], k, s0, h, gp, base, cd, specs)
		})
		if err := errors.Join(errs...); err != nil {
			return Row{}, err
		}
		for k := 0; k < m.Byzantine; k++ {
			// A round decodes every payload with the round's codec, so an
			// attacker's update reaches the rule in the codec's form (for
			// a sparse codec, only as many elements as an honest one
			// sends): encode it, without error feedback.
			c, err := contribution(cd, specs, attack(m.Attack, contribs[k].Dense, noise), nil, gp)
			if err != nil {
				return Row{}, fmt.Errorf("exchange: %s: byzantine worker %d: %v", m.Name, k, err)
			}
			contribs[k].Dense, contribs[k].Sparse, contribs[k].ID = c.Dense, c.Sparse, c.ID
		}
		if _, err := rule.Aggregate(agg, aggregate.Canonical(contribs)); err != nil {
			return Row{}, fmt.Errorf("exchange: %s: %v", m.Name, err)
		}
		outer.Step(gp, agg)
		base = gradient.Flatten(base, gp)
	}
	honest := workers[len(workers)-1]
	return Row{Method: m, BytesPerWorker: honest.bytes, EvalLoss: evaluate(c, global, d)}, nil
}

// workerRound runs worker k's inner steps s0..s0+h-1 from the global
// parameters and returns its contribution: the decoded transmission of an
// honest worker, or the raw pseudo-gradient of a Byzantine one (which the
// caller replaces by the attack).
func workerRound(c Config, m Method, d Data, wk *worker, k, s0, h int, gp []gradient.Param, base []float32, cd codec.Codec, specs []codec.TensorSpec) (aggregate.Contribution, error) {
	wp := wk.model.Params()
	gradient.CopyParams(wp, gp)
	if m.Local && k >= m.Byzantine {
		// The worker resumes from the global parameters minus what it
		// learned but has not sent (pseudo-gradients point downhill, so
		// its own parameters were global - residual): its next
		// pseudo-gradient then holds the residual already, and it does
		// not learn again what it already learned.
		for i, p := range wp {
			for j, r := range wk.residual[i] {
				p.Data[j] -= r
			}
			clear(wk.residual[i])
		}
	}
	ctx := wk.model.Config().Ctx
	if len(wk.tok) == 0 {
		wk.tok = make([]int32, c.Batch*(ctx+1))
	}
	for s := s0; s < s0+h; s++ {
		c.sampleWorker(wk.tok, d, ctx, k, s)
		if st := wk.tr.Step(wk.tok, c.Batch); math.IsNaN(float64(st.Loss)) {
			return aggregate.Contribution{}, fmt.Errorf("exchange: %s: worker %d diverged at step %d", m.Name, k, s)
		}
	}
	wk.delta = gradient.PseudoGradient(wk.delta, base, wp)
	out := aggregate.Contribution{Peer: fmt.Sprintf("worker-%03d", k), Weight: float64(h * c.Batch), Dense: wk.delta}
	if k < m.Byzantine {
		return out, nil // the caller replaces it by the attack
	}
	codec.DecayResidual(wk.residual, m.Decay)
	enc, err := contribution(cd, specs, wk.delta, wk.residual, gp)
	if err != nil {
		return aggregate.Contribution{}, fmt.Errorf("exchange: %s: worker %d: %v", m.Name, k, err)
	}
	wk.bytes += enc.bytes
	out.Dense, out.Sparse, out.ID = enc.Dense, enc.Sparse, enc.ID
	return out, nil
}

// encoded is an update as the rule receives it, after encoding and
// decoding: dense, or sparse for a codec that sends only some elements, so
// that a rule can tell a coordinate that was not sent from a zero.
type encoded struct {
	Dense  []float32
	Sparse *aggregate.Sparse
	ID     string // SHA-256 of the decoded update, dense, as hex
	bytes  int64  // length of the encoding
}

// contribution encodes update (with error feedback into residual, if it
// is non-nil) and decodes it as a round would.
func contribution(cd codec.Codec, specs []codec.TensorSpec, update []float32, residual [][]float32, gp []gradient.Param) (encoded, error) {
	enc, err := cd.Encode(splitTensors(update, gp), residual)
	if err != nil {
		return encoded{}, err
	}
	dec, index, sparse, err := codec.DecodeSupport(cd, enc, codec.Limits{Expect: specs})
	if err != nil {
		return encoded{}, fmt.Errorf("decoding: %v", err)
	}
	dense := joinTensors(dec, len(update))
	sum := sha256.Sum256(f32bytes(dense))
	out := encoded{ID: hex.EncodeToString(sum[:]), bytes: int64(len(enc))}
	if !sparse {
		out.Dense = dense
		return out, nil
	}
	out.Sparse = &aggregate.Sparse{Len: len(dense), Index: index, Value: make([]float32, len(index))}
	for i, j := range index {
		out.Sparse.Value[i] = dense[j]
	}
	return out, nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// splitTensors views a flat update as the codec's named tensors.
func splitTensors(flat []float32, ps []gradient.Param) []codec.Tensor {
	ts := make([]codec.Tensor, len(ps))
	off := 0
	for i, p := range ps {
		ts[i] = codec.Tensor{Name: p.Name, Shape: p.Shape(), Data: flat[off : off+p.Size()]}
		off += p.Size()
	}
	return ts
}

func joinTensors(ts []codec.Tensor, n int) []float32 {
	out := make([]float32, 0, n)
	for _, t := range ts {
		out = append(out, t.Data...)
	}
	return out
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}
