package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/aggregate"
	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/trace"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// ModelEngine is the node.Engine that trains the round's model for real.
// Given the same checkpoint, unit and round, two ModelEngines compute the
// same pseudo-gradient bit for bit on any machine (the kernels are
// deterministic), which is what replication compares.
//
// The engine's own state is the error-feedback residual of its codec,
// which carries over from one unit to the next, and the pseudo-gradients
// of its recent units, kept for checking a replica partner.
type ModelEngine struct {
	spec  *round.Spec
	round cid.Cid
	store Store
	train []byte // the training text

	cfg   gradient.ModelConfig
	codec codec.Codec
	rule  aggregate.Rule
	model gradient.Model
	// objective is what the inner steps minimise: the model's loss, or,
	// in a round with a teacher, the distillation's (its parameters are
	// the model's).
	objective gradient.Model
	specs     []codec.TensorSpec
	inner     gradient.AdamWConfig

	residual [][]float32
	recent   []recentDelta // own pseudo-gradients, newest last
	tok      []int32
	unitData func(step uint64, unit uint32) ([]byte, error)

	trainer *gradient.Trainer // reused from unit to unit (Restart)

	tokenize  func([]byte) []int32 // the round's tokenizer; nil: one token per byte
	tokenized []tokenizedText      // the last texts tokenized
	hasher    trace.Hasher
	steps     uint64 // inner steps taken
	deviate   int    // the inner step a test makes the engine get wrong, if not 0
}

// SetData makes the engine train each unit on the text data returns for
// it (a dataset's shard) instead of the text it was made with.
func (e *ModelEngine) SetData(data func(step uint64, unit uint32) ([]byte, error)) { e.unitData = data }

// SetTokenizer makes the engine train on the tokens tokenize makes of
// each unit's text (the round's tokenizer) instead of one token per byte.
// tokenize must be deterministic: replicas compare what they compute.
func (e *ModelEngine) SetTokenizer(tokenize func(text []byte) []int32) {
	e.tokenize = tokenize
	e.tokenized = nil
}

// tokenizedText is a text's tokens, kept for the next unit on it.
type tokenizedText struct {
	sum [32]byte
	ids []int32
}

// tokensOf returns the tokens of text, from the last few texts tokenized
// if it is one of them (a worker's units share a text or a few shards).
func (e *ModelEngine) tokensOf(text []byte) []int32 {
	sum := sha256.Sum256(text)
	for _, t := range e.tokenized {
		if t.sum == sum {
			return t.ids
		}
	}
	ids := e.tokenize(text)
	e.tokenized = append(e.tokenized, tokenizedText{sum, ids})
	if len(e.tokenized) > 4 {
		e.tokenized = e.tokenized[1:]
	}
	return ids
}

type recentDelta struct {
	raw   cid.Cid
	delta []float32
}

// keepDeltas bounds how many of its own pseudo-gradients an engine keeps,
// and recentBytes the memory they take: an engine of a large model keeps
// none and computes a unit again to check a replica partner.
const (
	keepDeltas  = node.Retention
	recentBytes = 256 << 20
)

// NewModel returns the model a round trains, initialised from its seed
// (the engine loads checkpoints into it). For a round of an adapter, the
// frozen base's weights come from its checkpoint, which store must hold
// (ErrNoBase if it does not: fetch it, then try again).
func NewModel(spec *round.Spec, store Store) (gradient.Model, error) {
	m, err := gradient.New(ModelConfig(spec))
	if err != nil {
		return nil, fmt.Errorf("engine: the round's model: %w", err)
	}
	if a, ok := m.(gradient.Adapted); ok {
		base := spec.Adapter.Base
		if !store.HasCheckpoint(base) {
			return nil, fmt.Errorf("%w: the adapter's base %s", ErrNoBase, base)
		}
		if err := load(store, base, a.Frozen(), nil); err != nil {
			return nil, fmt.Errorf("engine: the adapter's base: %w", err)
		}
	}
	return m, nil
}

// ErrNoBase says the store lacks a checkpoint the round reads: its
// adapter's base or its teacher.
var ErrNoBase = errors.New("engine: the store lacks a checkpoint the round reads")

// loadTeacher builds the model of a round's teacher from its checkpoint,
// whose metadata names its configuration.
func loadTeacher(store Store, id cid.Cid) (gradient.Model, error) {
	if !store.HasCheckpoint(id) {
		return nil, fmt.Errorf("%w: the teacher %s", ErrNoBase, id)
	}
	c, err := store.Checkpoint(id)
	if err != nil {
		return nil, fmt.Errorf("engine: the teacher: %w", err)
	}
	var cfg gradient.ModelConfig
	if err := json.Unmarshal([]byte(c.Meta[checkpoint.MetaConfig]), &cfg); err != nil {
		return nil, fmt.Errorf("engine: the teacher %s names no model configuration (%s metadata): %v", id, checkpoint.MetaConfig, err)
	}
	if cfg.Adapter != nil {
		return nil, fmt.Errorf("engine: the teacher %s is an adapter, not a whole model: fold it into its base first", id)
	}
	m, err := gradient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("engine: the teacher %s: %w", id, err)
	}
	for _, p := range m.Params() {
		t, ok := c.Tensor(p.Name)
		if !ok || !slices.Equal(t.Shape, p.Shape()) {
			return nil, fmt.Errorf("engine: the teacher %s lacks %s of shape %v", id, p.Name, p.Shape())
		}
		copy(p.Data, t.Data)
	}
	return m, nil
}

// NewModelEngine returns an engine for a round that trains on train (the
// built-in task's training text, or a dataset's) and keeps its content in
// store. For a round of an adapter, store must hold the base (NewModel).
func NewModelEngine(spec *round.Spec, train []byte, store Store) (*ModelEngine, error) {
	cfg := ModelConfig(spec)
	m, err := NewModel(spec, store)
	if err != nil {
		return nil, err
	}
	if train != nil {
		if err := data.CheckSize(train, cfg.Ctx); err != nil {
			return nil, fmt.Errorf("engine: training data: %w", err)
		}
	}
	cd, err := codec.Parse(spec.Codec)
	if err != nil {
		return nil, fmt.Errorf("engine: codec: %w", err)
	}
	rule, err := aggregate.Parse(spec.Aggregation)
	if err != nil {
		return nil, fmt.Errorf("engine: aggregation: %w", err)
	}
	obj := m
	if t := spec.Teacher; t != nil {
		teacher, err := loadTeacher(store, t.Checkpoint)
		if err != nil {
			return nil, err
		}
		if obj, err = gradient.Distill(m, teacher, gradient.DistillConfig{Temperature: float32(t.Temperature), Mix: float32(t.Mix)}); err != nil {
			return nil, fmt.Errorf("engine: teacher %s: %w", t.Checkpoint, err)
		}
	}
	e := &ModelEngine{spec: spec, round: spec.ID(), store: store, train: train, cfg: cfg, codec: cd, rule: rule, model: m, objective: obj,
		inner: gradient.AdamWConfig{Beta1: float32(spec.Inner.Beta1), Beta2: float32(spec.Inner.Beta2),
			Eps: float32(spec.Inner.Eps), WeightDecay: float32(spec.Inner.WeightDecay), ClipNorm: float32(spec.Inner.ClipNorm)}}
	for _, p := range m.Params() {
		e.specs = append(e.specs, codec.TensorSpec{Name: p.Name, Shape: p.Shape()})
		e.residual = append(e.residual, make([]float32, p.Size()))
	}
	return e, nil
}

// ModelConfig returns the model configuration a round spec names: the
// adapter's, for a round of one.
func ModelConfig(s *round.Spec) gradient.ModelConfig {
	m := s.Model
	c := gradient.ModelConfig{Arch: m.Arch, Vocab: m.Vocab, Ctx: m.Ctx, Dim: m.Dim, Layers: m.Layers,
		Heads: m.Heads, Hidden: m.Hidden, Window: m.Window, Seed: m.Seed}
	if a := s.Adapter; a != nil {
		c.Adapter = &gradient.AdapterConfig{Rank: a.Rank, Alpha: float32(a.Alpha), Targets: slices.Clone(a.Targets), Base: a.Base.String()}
	}
	return c
}

// Model returns the engine's model, which holds the parameters of the
// last checkpoint it loaded.
func (e *ModelEngine) Model() gradient.Model { return e.model }

// Genesis makes C_0 from the model's seed (or names the round's initial
// checkpoint) and stores it.
func (e *ModelEngine) Genesis() (cid.Cid, error) {
	if e.spec.InitCheckpoint.Defined() {
		return e.spec.InitCheckpoint, nil
	}
	m, err := gradient.New(e.cfg) // an adapter's parameters need no base
	if err != nil {
		return cid.Undef, err
	}
	ps := m.Params()
	momenta := make([][]float32, len(ps))
	for i, p := range ps {
		momenta[i] = make([]float32, p.Size())
	}
	return e.store.PutCheckpoint(e.checkpointOf(0, ps, momenta))
}

// checkpointOf builds the checkpoint of C_step from parameters and outer
// momenta (shared, not copied).
func (e *ModelEngine) checkpointOf(step uint64, ps []gradient.Param, momenta [][]float32) *checkpoint.Checkpoint {
	js, _ := json.Marshal(e.cfg)
	c := &checkpoint.Checkpoint{Meta: map[string]string{
		checkpoint.MetaConfig: string(js),
		checkpoint.MetaRound:  e.round.String(),
		checkpoint.MetaStep:   strconv.FormatUint(step, 10),
	}}
	for i, p := range ps {
		c.Tensors = append(c.Tensors,
			checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data},
			checkpoint.Tensor{Name: checkpoint.MomentumName(p.Name), Shape: p.Shape(), Data: momenta[i]})
	}
	return c
}

// load reads checkpoint id's parameters into ps and, if momenta is not
// nil, its outer momenta into momenta (a buffer per parameter, of its
// size), a chunk at a time when the store can. A checkpoint that holds no
// optimizer state at all (a base model imported to fine-tune) starts the
// outer optimizer afresh: its momenta are zero.
func (e *ModelEngine) load(id cid.Cid, ps []gradient.Param, momenta [][]float32) error {
	return load(e.store, id, ps, momenta)
}

func load(store Store, id cid.Cid, ps []gradient.Param, momenta [][]float32) error {
	where := make(map[string]int, 2*len(ps)) // i: ps[i]; -1-i: its momentum
	for i, p := range ps {
		where[p.Name] = i
		if momenta != nil {
			where[checkpoint.MomentumName(p.Name)] = -1 - i
		}
	}
	state := false
	err := loadCheckpoint(store, id, func(name string, shape []int) ([]float32, error) {
		state = state || checkpoint.IsState(name)
		i, ok := where[name]
		if !ok {
			return nil, nil
		}
		delete(where, name)
		dst := momenta
		if i >= 0 {
			dst = nil
		} else {
			i = -1 - i
		}
		if !slices.Equal(shape, ps[i].Shape()) {
			return nil, fmt.Errorf("shape %v, the model's %v", shape, ps[i].Shape())
		}
		if dst == nil {
			return ps[i].Data, nil
		}
		return dst[i], nil
	})
	if err != nil {
		return err
	}
	for name, i := range where {
		if i < 0 && !state {
			clear(momenta[-1-i])
			continue
		}
		return fmt.Errorf("checkpoint %s: %s missing", id, name)
	}
	return nil
}

// Run does a job.
func (e *ModelEngine) Run(j node.Job) node.Result {
	switch j := j.(type) {
	case node.TrainJob:
		u, err := e.trainJob(j)
		return node.Result{Job: j, Update: u, Err: err}
	case node.ApplyJob:
		id, left, err := e.apply(j)
		return node.Result{Job: j, Result: id, LeftOut: left, Err: err}
	case node.VerifyJob:
		if j.Checked && !j.Full {
			v, need, err := e.bisect(j)
			if !errors.Is(err, errNoBisect) {
				return node.Result{Job: j, Verdict: v, Need: need, Err: err}
			}
		}
		v, err := e.verify(j)
		return node.Result{Job: j, Verdict: v, Err: err}
	case node.StateJob:
		id, err := e.materialise(j)
		return node.Result{Job: j, Result: id, Err: err}
	}
	return node.Result{Job: j, Err: fmt.Errorf("engine: unknown job %T", j)}
}

// UnitStream returns the data stream of a work unit: every unit of the
// round samples its own sequences.
func UnitStream(step uint64, unit uint32) uint64 { return step<<20 | uint64(unit) }

// Delta trains unit of step from base and returns the raw pseudo-gradient
// θ(base) − θ_local, flat in parameter order, and the mean training loss.
func (e *ModelEngine) Delta(base cid.Cid, step uint64, unit uint32) ([]float32, float32, error) {
	delta, loss, _, err := e.trainUnit(base, step, unit, false)
	return delta, loss, err
}

// trainUnit trains unit of step from base and returns the raw pseudo-gradient,
// the mean training loss and, if traced, the unit's trace.
func (e *ModelEngine) trainUnit(base cid.Cid, step uint64, unit uint32, traced bool) ([]float32, float32, trace.Trace, error) {
	r, err := e.startUnit(base, step, unit)
	if err != nil {
		return nil, 0, nil, err
	}
	start := gradient.Flatten(nil, e.model.Params())
	h := e.spec.InnerSteps
	var tr trace.Trace
	if traced {
		tr = make(trace.Trace, 0, h+1)
		tr = append(tr, e.hasher.Leaf(e.state(r)))
	}
	var loss float64
	for range h {
		l, err := e.innerStep(r)
		if err != nil {
			return nil, 0, nil, err
		}
		loss += float64(l)
		if traced {
			tr = append(tr, e.hasher.Leaf(e.state(r)))
		}
	}
	if 4*int64(len(start)) > recentBytes {
		// A large model's trainer (its optimizer moments and the tape's
		// buffers: 12 bytes per parameter and the activations) goes
		// after each unit, so that encoding the update and applying the
		// step do not hold it too; a small model's is kept, to allocate
		// it once.
		e.trainer = nil
	}
	// The pseudo-gradient overwrites start in place: each value is read
	// before it is written.
	return gradient.PseudoGradient(start, start, e.model.Params()), float32(loss / float64(h)), tr, nil
}

// unitRun is the training of a unit under way: the engine's model holds
// its parameters, and done inner steps are taken.
type unitRun struct {
	text []byte
	ids  []int32 // the text's tokens, when the round has a tokenizer
	step uint64
	unit uint32
	tr   *gradient.Trainer
	done int
}

// startUnit loads base into the model and returns the unit's training
// before its first inner step.
func (e *ModelEngine) startUnit(base cid.Cid, step uint64, unit uint32) (*unitRun, error) {
	text := e.train
	if e.unitData != nil {
		t, err := e.unitData(step, unit)
		if err != nil {
			return nil, fmt.Errorf("data of unit %d: %w", unit, err)
		}
		text = t
	}
	var ids []int32
	if e.tokenize != nil {
		ids = e.tokensOf(text)
		if err := data.CheckSize(ids, e.cfg.Ctx); err != nil {
			return nil, fmt.Errorf("data of unit %d: %w", unit, err)
		}
	} else if err := data.CheckSize(text, e.cfg.Ctx); err != nil {
		return nil, fmt.Errorf("data of unit %d: %w", unit, err)
	}
	if err := e.load(base, e.model.Params(), nil); err != nil {
		return nil, err
	}
	// One trainer for every unit, restarted: its optimizer's moments and
	// its tape's buffers are allocated once, not for each unit.
	if e.trainer == nil {
		e.trainer = gradient.NewTrainer(e.objective, e.inner, gradient.Schedule{Peak: float32(e.spec.Inner.LR), Warmup: e.spec.Inner.Warmup})
	}
	tr := e.trainer
	tr.Restart()
	tr.SetStep(int(step) * e.spec.InnerSteps)
	if n := e.spec.Batch * (e.cfg.Ctx + 1); len(e.tok) != n {
		e.tok = make([]int32, n)
	}
	return &unitRun{text: text, ids: ids, step: step, unit: unit, tr: tr}, nil
}

// innerStep takes the unit's next inner step and returns its loss.
func (e *ModelEngine) innerStep(r *unitRun) (float32, error) {
	if r.ids != nil {
		data.Sample(e.tok, r.ids, e.spec.Seed, UnitStream(r.step, r.unit), uint64(r.done), e.spec.Batch, e.cfg.Ctx)
	} else {
		data.Sample(e.tok, r.text, e.spec.Seed, UnitStream(r.step, r.unit), uint64(r.done), e.spec.Batch, e.cfg.Ctx)
	}
	st := r.tr.Step(e.tok, e.spec.Batch)
	e.steps++
	if math.IsNaN(float64(st.Loss)) || math.IsInf(float64(st.Loss), 0) {
		return 0, fmt.Errorf("training diverged at inner step %d of unit %d", r.done, r.unit)
	}
	r.done++
	if r.done == e.deviate {
		// A faulty or lying worker's step (tests of disputes).
		p := e.model.Params()[0]
		p.Data[0] += 1.0 / 64
	}
	return st.Loss, nil
}

// InnerSteps returns how many inner steps the engine has taken, for
// training, verification and disputes together.
func (e *ModelEngine) InnerSteps() uint64 { return e.steps }

// Deviate makes the engine, from now on, compute inner step k of every
// unit wrongly (as a faulty or lying worker might, tracing what it
// computed); 0 makes it honest again. For tests of disputes.
func (e *ModelEngine) Deviate(k int) { e.deviate = k }

// RawCID is the hash replicas compare: of the pseudo-gradient as little
// endian float32s.
func RawCID(delta []float32) cid.Cid { return rawCID(delta) }

func floatsOf(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of float32s", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func (e *ModelEngine) split(flat []float32) []codec.Tensor {
	ts := make([]codec.Tensor, len(e.specs))
	off := 0
	for i, s := range e.specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		ts[i] = codec.Tensor{Name: s.Name, Shape: s.Shape, Data: flat[off : off+n]}
		off += n
	}
	return ts
}

func (e *ModelEngine) splitResidual(flat []float32) [][]float32 {
	out := make([][]float32, len(e.specs))
	off := 0
	for i, r := range e.residual {
		out[i] = flat[off : off+len(r)]
		off += len(r)
	}
	return out
}

func (e *ModelEngine) trainJob(j node.TrainJob) (*wire.Update, error) {
	delta, loss, tr, err := e.trainUnit(j.Base, j.Step, j.Unit, true)
	if err != nil {
		return nil, err
	}
	u, err := e.Encode(delta, loss)
	if err != nil {
		return nil, err
	}
	if u.Trace, err = e.store.PutBlob(tr.Marshal()); err != nil {
		return nil, err
	}
	return u, nil
}

// Encode compresses a pseudo-gradient with the engine's residual (which
// it updates, after the round's feedback decay), stores the payload and
// the residual it used, and returns the update's content fields.
func (e *ModelEngine) Encode(delta []float32, loss float32) (*wire.Update, error) {
	raw := RawCID(delta)
	// The residual stored is the decayed one, which is what the codec
	// used: a replica checks the payload against it alone.
	codec.DecayResidual(e.residual, float32(e.spec.FeedbackDecay))
	resID, err := e.putFloats(e.residual...)
	if err != nil {
		return nil, err
	}
	payload, err := e.codec.Encode(e.split(delta), e.residual)
	if err != nil {
		return nil, err
	}
	pid, err := e.store.PutBlob(payload)
	if err != nil {
		return nil, err
	}
	if 4*int64(len(delta))*keepDeltas <= recentBytes {
		e.recent = append(e.recent, recentDelta{raw: raw, delta: delta})
		if len(e.recent) > keepDeltas {
			e.recent = e.recent[1:]
		}
	}
	return &wire.Update{Samples: uint32(e.spec.UnitSamples()), Loss: loss, Raw: raw, Residual: resID,
		Payload: pid, Size: uint64(len(payload)), Data: payload}, nil
}

// Corrupt replaces the engine's residual, as a faulty peer's might be;
// for tests of verification.
func (e *ModelEngine) Corrupt(scale float32) {
	for _, r := range e.residual {
		for i := range r {
			r[i] = float32(r[i]*scale) + scale
		}
	}
}

func (e *ModelEngine) apply(j node.ApplyJob) (cid.Cid, []string, error) {
	// The trainer's optimizer moments and tape buffers (12 bytes per
	// parameter and the activations) are not needed to apply a step: let
	// them go, so that applying, which needs the momenta, the aggregate
	// and the decoded updates, does not hold both at once.
	e.trainer = nil
	ps := e.model.Params()
	outer := gradient.NewOuter(ps, float32(e.spec.Outer.LR), float32(e.spec.Outer.Momentum))
	if err := e.load(j.Base, ps, outer.Momenta()); err != nil {
		return cid.Undef, nil, err
	}
	n := gradient.NumParams(e.model)
	cs := make([]aggregate.Contribution, len(j.Included))
	for i, in := range j.Included {
		b, err := e.store.Blob(in.Payload)
		if err != nil {
			return cid.Undef, nil, err
		}
		// The rule learns which elements a sparse codec sent, so that a
		// rule that averages each coordinate over the updates that hold
		// it (mean:partial=true) can tell an unsent element from a zero;
		// for every other rule the sparse and dense forms give the same
		// bits.
		ts, index, sparse, err := codec.DecodeSupport(e.codec, b, codec.Limits{Expect: e.specs})
		if err != nil {
			// A payload that does not decode counts as a zero update:
			// every honest node decides the same, so they still agree.
			ts, sparse = nil, false
		}
		flat := make([]float32, 0, n)
		for _, t := range ts {
			flat = append(flat, t.Data...)
		}
		if len(flat) != n {
			flat, sparse = make([]float32, n), false
		}
		cs[i] = aggregate.Contribution{Peer: in.Peer, ID: in.Payload.String(), Weight: float64(in.Weight), Dense: flat}
		if sparse {
			sp := &aggregate.Sparse{Len: n, Index: index, Value: make([]float32, len(index))}
			for k, j := range index {
				sp.Value[k] = flat[j]
			}
			cs[i].Dense, cs[i].Sparse = nil, sp
		}
	}
	agg := make([]float32, n)
	rep, err := e.rule.Aggregate(agg, cs)
	if err != nil && !errors.Is(err, aggregate.ErrAllExcluded) {
		return cid.Undef, nil, err
	}
	outer.Step(ps, agg)
	id, err := e.store.PutCheckpoint(e.checkpointOf(j.Step+1, ps, outer.Momenta()))
	return id, append(rep.Excluded, rep.Screened...), err
}

// verify judges the updates of a replicated unit against the engine's own
// pseudo-gradient of it, computed now unless it is one of its own recent
// units.
func (e *ModelEngine) verify(j node.VerifyJob) (*wire.Verdict, error) {
	var delta []float32
	if !j.Checked {
		for _, r := range e.recent {
			if len(j.Updates) > 0 && r.raw.Equals(j.Updates[0].Update.Raw) {
				delta = r.delta
			}
		}
	}
	if delta == nil {
		d, _, err := e.Delta(j.Base, j.Step, j.Unit)
		if err != nil {
			return nil, err
		}
		delta = d
	}
	raw := RawCID(delta)
	v := &wire.Verdict{Raw: raw}
	for _, cl := range j.Updates {
		ok, err := e.reproduces(delta, cl.Update)
		if err != nil {
			return nil, err
		}
		if !ok && !slices.Contains(v.Bad, cl.Peer) && len(v.Bad) < wire.MaxBad {
			v.Bad = append(v.Bad, cl.Peer)
		}
	}
	slices.Sort(v.Bad)
	return v, nil
}

// reproduces reports whether encoding delta with the update's residual
// gives its payload, and its raw hash is delta's.
func (e *ModelEngine) reproduces(delta []float32, u *wire.Update) (bool, error) {
	if !RawCID(delta).Equals(u.Raw) {
		return false, nil
	}
	res, ok, err := e.readFloats(u.Residual, len(delta))
	if err != nil {
		return false, err
	}
	if !ok {
		return false, nil // a residual of the wrong form cannot be the one used
	}
	payload, err := e.codec.Encode(e.split(delta), e.splitResidual(res))
	if err != nil {
		return false, nil
	}
	return content.ID(payload).Equals(u.Payload), nil
}
