package round

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Version is the version of the round spec format this package reads and
// writes. It is part of the canonical encoding, so a later format gives
// different round IDs.
//
// It also names the arithmetic every peer of the round computes with,
// since verification compares bits: version 1 rounds were computed with
// matrix products that round each product before adding it; version 2
// rounds with fused multiply-add (one rounding, see tensor/internal/gemm).
// A shoal that reads one version cannot reproduce the other's bits, so it
// refuses the other's rounds.
const Version = 2

// Admission says who may join a round.
type Admission string

const (
	// AdmissionOpen admits any peer that asks.
	AdmissionOpen Admission = "open"
	// AdmissionClosed admits only peers the tracker lets in.
	AdmissionClosed Admission = "closed"
)

// Spec is a round spec: everything that defines a training round. Its
// canonical encoding (Canonical) is the same for every YAML file that means
// the same round, and its CID (ID) is the round's ID.
//
// A Spec from Parse is valid, has every default filled in and holds the
// codec, aggregation rule and tracker peer IDs in canonical form. A Spec
// built in Go should start from Defaults and be checked with Validate.
type Spec struct {
	Version     int    // spec format version; must be Version
	Name        string // short human-readable name (optional)
	Description string // free text (optional)

	Model   Model
	Dataset Dataset

	InnerSteps int      // H: inner optimizer steps per work unit
	Batch      int      // sequences per inner step
	Inner      AdamW    // the inner optimizer
	Outer      Nesterov // the outer optimizer

	Codec       string // update codec spec (see CanonicalCodec)
	Aggregation string // aggregation rule spec (see CanonicalRule)
	// FeedbackDecay weakens the codec's error feedback: before each
	// encoding a worker multiplies its residual by 1 − FeedbackDecay
	// (codec.DecayResidual). 0, the default, keeps it whole; 1 drops it.
	// A worker restarts every outer step from the new checkpoint and
	// learns again much of what it did not send, so a residual kept
	// whole counts that part twice (BENCHMARKS.md).
	FeedbackDecay float64
	// LateWeight lets an update that comes after its step closed join the
	// next step: the Close of step t+1 includes a late update of step t
	// (one the Close of step t did not include, of a unit it neither
	// included nor disputed) with weight ⌊samples × LateWeight⌋, at least
	// 1, and it is verified like any other. 0, the default, leaves late
	// updates out, so that a slow volunteer's unit is lost work.
	LateWeight float64

	TargetSamples int           // samples after which the tracker closes a step
	Deadline      time.Duration // time after which the tracker closes a step regardless
	// Quorum and Grace close a step without a global barrier: once its
	// complete units reach Quorum × TargetSamples, the step closes Grace
	// later (or at the target, or the deadline, if sooner), so that it
	// does not wait for its slowest volunteers; with LateWeight their
	// units join the next step. Quorum is in (0, 1]; 0 means 1 (the
	// whole target, no quorum closing). Grace is in [0, Deadline].
	Quorum           float64
	Grace            time.Duration
	VerificationRate float64 // fraction of work units computed by two peers, in [0, 1]
	Seed             uint64  // seed of data sampling and work assignment

	Trackers []string // tracker peer IDs (see CanonicalPeerID), in order of preference
	// TrackerAddrs, when the round's coordinator is a group of trackers
	// (more than one in Trackers), gives each tracker's multiaddr, in
	// the order of Trackers, for the members to reach one another and
	// the peers the group. Empty for a single tracker.
	TrackerAddrs   []string
	InitCheckpoint cid.Cid // checkpoint to start from; cid.Undef: initialise from Model.Seed
	// Tokenizer names the round's tokenizer by the CID of its canonical
	// encoding (GPT-2's byte-level BPE, see gradient/tokenizer);
	// cid.Undef: one token per byte.
	Tokenizer cid.Cid
	Admission Admission
	// Adapter, when set, makes the round train a low-rank adapter of a
	// frozen base model (LoRA) instead of the whole model: Model
	// describes the base, and updates and checkpoints hold the adapter
	// alone.
	Adapter *Adapter
	// Teacher, when set, makes the round distil a teacher model into
	// Model: the loss mixes the data's with the KL divergence to the
	// teacher's softened predictions.
	Teacher *Teacher

	file  string         // file name given to Parse
	lines map[string]int // field path → line, from Parse
}

// Model names an architecture of the zoo and its sizes.
type Model struct {
	Arch   string // ArchGPT or ArchMLP
	Vocab  int    // token IDs
	Ctx    int    // sequence length
	Dim    int    // embedding width
	Layers int    // gpt: blocks; mlp: hidden layers
	Heads  int    // gpt only: attention heads; must divide Dim
	Hidden int    // mlp only: hidden width
	Window int    // mlp only: tokens of context seen, at most Ctx
	Seed   uint64 // initialisation seed (when no InitCheckpoint is given)
}

// Adapter is a round's low-rank adapter: A [in, Rank] and B [Rank, out]
// for each targeted matrix W of every block, used as W + (Alpha/Rank)·A·B.
type Adapter struct {
	Base    cid.Cid  // the checkpoint of the frozen base model; required
	Rank    int      // [1, min(MaxAdapterRank, model.dim)]
	Alpha   float64  // (0, 10000]; default: Rank (a scale of 1)
	Targets []string // sorted, distinct, of AdapterTargets; default DefaultAdapterTargets
}

// AdapterTargets are the matrices of a gpt block an adapter may target;
// DefaultAdapterTargets those it targets when a spec names none (the
// attention's).
var (
	AdapterTargets        = []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}
	DefaultAdapterTargets = []string{"attn.c_attn", "attn.c_proj"}
)

// MaxAdapterRank bounds an adapter's rank.
const MaxAdapterRank = 1024

// Teacher is the model a distillation round learns from.
type Teacher struct {
	Checkpoint  cid.Cid // the teacher's checkpoint (its model named in its metadata); required
	Temperature float64 // softens both distributions, (0, 100]; default 2
	Mix         float64 // weight of the data's loss, [0, 1]; the KL's is 1 − Mix; default 0.5
}

// Dataset is the data a round trains on: the built-in synthetic task or a
// dataset manifest named by its CID. Exactly one is set.
type Dataset struct {
	Builtin  bool
	Manifest cid.Cid
}

// String returns "builtin" or the manifest CID.
func (d Dataset) String() string {
	if d.Builtin {
		return "builtin"
	}
	if !d.Manifest.Defined() {
		return ""
	}
	return d.Manifest.String()
}

// AdamW holds the inner optimizer's hyper-parameters. The learning rate
// rises linearly from 0 to LR over the first Warmup inner steps of the
// round, counted across outer steps (inner step h of outer step t is inner
// step t·H+h), and stays at LR after. Training converts the values to
// float32.
type AdamW struct {
	LR          float64
	Warmup      int
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64 // decoupled
	ClipNorm    float64 // global gradient norm cap; 0 disables
}

// Nesterov holds the outer optimizer's hyper-parameters: SGD with Nesterov
// momentum applied to the aggregated pseudo-gradient (DiLoCo).
type Nesterov struct {
	LR       float64
	Momentum float64
}

// Defaults returns a spec with every optional field at its default and the
// required fields zero. These are the only defaults; the package
// documentation lists them with the YAML schema. Model.Seed has no fixed
// default: Parse sets it to the round's Seed when the file leaves it out.
func Defaults() *Spec {
	return &Spec{
		Version:          Version,
		Model:            Model{Vocab: 256},
		Batch:            16,
		Inner:            AdamW{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 1},
		Outer:            Nesterov{LR: 0.7, Momentum: 0.9},
		Codec:            "fp32",
		Quorum:           1,
		Aggregation:      "mean",
		VerificationRate: 0.05,
		Admission:        AdmissionOpen,
	}
}

// Limits on the sizes a spec may name. The packages that run a round may
// impose tighter ones.
const (
	MaxVocab         = 1 << 24
	MaxCtx           = 1 << 16
	MaxDim           = 1 << 16
	MaxLayers        = 1024
	MaxHidden        = 1 << 20
	MaxInnerSteps    = 1_000_000
	MaxBatch         = 4096
	MaxWarmup        = 1 << 30
	MaxTargetSamples = 1 << 40
	MaxDeadline      = 24 * time.Hour
	MaxTrackers      = 16
	MaxTrackerAddr   = 256  // bytes of a tracker's multiaddr
	MaxNameLen       = 200  // bytes
	MaxDescLen       = 4096 // bytes
	MaxLR            = 10
)

// QuorumSamples returns the samples of complete units from which a step
// closes after the grace window: ⌈Quorum × TargetSamples⌉, or
// TargetSamples when Quorum is 0 or 1.
func (s *Spec) QuorumSamples() int {
	if !(s.Quorum > 0 && s.Quorum < 1) {
		return s.TargetSamples
	}
	return int(math.Ceil(s.Quorum * float64(s.TargetSamples)))
}

// LateSamples returns the weight a late update of samples samples has in
// the Close that includes it: ⌊samples × LateWeight⌋, at least 1.
func (s *Spec) LateSamples(samples uint32) uint32 {
	return max(1, uint32(math.Floor(float64(samples)*s.LateWeight)))
}

// UnitSamples returns the samples (sequences) of one work unit:
// InnerSteps × Batch.
func (s *Spec) UnitSamples() int { return s.InnerSteps * s.Batch }

// UnitsPerStep returns how many work units reach TargetSamples:
// ⌈TargetSamples / UnitSamples⌉.
func (s *Spec) UnitsPerStep() int {
	u := s.UnitSamples()
	if u <= 0 {
		return 0
	}
	return (s.TargetSamples + u - 1) / u
}

// Line returns the line of the spec file where a field (a path such as
// "inner.lr") was written, or 0 if it is not known.
func (s *Spec) Line(field string) int { return s.lines[field] }

// Problem returns a FieldError about a field, placed at the file and line
// where the field was written (or its closest written parent), for checks
// made where the spec is used.
func (s *Spec) Problem(field, format string, args ...any) *FieldError {
	return &FieldError{File: s.file, Line: s.lineOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// lineOf returns the line of field, or of its closest parent with one.
func (s *Spec) lineOf(field string) int {
	for p := field; p != ""; {
		if l, ok := s.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// Validate checks the values of the spec: ranges, divisibility, the syntax
// of the codec, aggregation rule, CIDs and peer IDs. It reports every
// problem, each a FieldError naming the field (and, for a parsed spec, the
// file and line), joined with errors.Join in line order.
func (s *Spec) Validate() error {
	ps := s.problems(nil)
	for _, p := range ps {
		p.File, p.Line = s.file, s.lineOf(p.Field)
	}
	return joinProblems(ps)
}

// problems lists what is wrong with the spec, skipping the fields in skip
// (those that already failed to decode).
func (s *Spec) problems(skip map[string]bool) []*FieldError {
	var ps []*FieldError
	add := func(field, format string, args ...any) {
		for p := field; p != ""; {
			if skip[p] {
				return
			}
			i := strings.LastIndexAny(p, ".[")
			if i < 0 {
				break
			}
			p = p[:i]
		}
		ps = append(ps, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Version == 1:
		add("version", "spec version 1 is a round of shoal before version 2's fused multiply-add arithmetic, whose bits this shoal cannot reproduce (it reads version %d): join it with the shoal it was made with, or start a version %d round", Version, Version)
	case s.Version != Version:
		add("version", "unsupported spec version %d (this version of shoal reads version %d)", s.Version, Version)
	}
	checkText(add, "name", s.Name, MaxNameLen, false)
	checkText(add, "description", s.Description, MaxDescLen, true)
	s.modelProblems(add)
	s.trainingProblems(add)
	s.roundProblems(add)
	return ps
}

// adder records a problem with a field.
type adder func(field, format string, args ...any)

// intRange adds a problem if v is outside [lo, hi].
func (add adder) intRange(field string, v, lo, hi int) {
	if v < lo || v > hi {
		add(field, "must be in [%d, %d], got %d", lo, hi, v)
	}
}

// modelProblems checks the model section.
func (s *Spec) modelProblems(add adder) {
	intRange := add.intRange
	m := s.Model
	switch m.Arch {
	case ArchGPT, ArchMLP:
	case "":
		add("model.arch", "missing (want %s or %s)", ArchGPT, ArchMLP)
	default:
		add("model.arch", "unknown architecture %q (known: %s, %s)", m.Arch, ArchGPT, ArchMLP)
	}
	intRange("model.vocab", m.Vocab, 2, MaxVocab)
	intRange("model.ctx", m.Ctx, 1, MaxCtx)
	intRange("model.dim", m.Dim, 1, MaxDim)
	intRange("model.layers", m.Layers, 1, MaxLayers)
	switch m.Arch {
	case ArchGPT:
		if m.Heads < 1 || m.Heads > m.Dim {
			add("model.heads", "must be in [1, dim=%d], got %d", max(m.Dim, 1), m.Heads)
		} else if m.Dim%m.Heads != 0 {
			add("model.heads", "dim %d is not a multiple of heads %d", m.Dim, m.Heads)
		}
		if m.Hidden != 0 {
			add("model.hidden", "only for arch %s", ArchMLP)
		}
		if m.Window != 0 {
			add("model.window", "only for arch %s", ArchMLP)
		}
	case ArchMLP:
		intRange("model.hidden", m.Hidden, 1, MaxHidden)
		if m.Window < 1 || m.Window > max(m.Ctx, 1) {
			add("model.window", "must be in [1, ctx=%d], got %d", max(m.Ctx, 1), m.Window)
		}
		if m.Heads != 0 {
			add("model.heads", "only for arch %s", ArchGPT)
		}
	}
}

// trainingProblems checks the data, the optimizers, the codec and rule,
// and the step's size and deadline.
func (s *Spec) trainingProblems(add adder) {
	intRange := add.intRange
	switch {
	case s.Dataset.Builtin && s.Dataset.Manifest.Defined():
		add("dataset", "names both the built-in task and a manifest")
	case s.Dataset.Builtin:
	case !s.Dataset.Manifest.Defined():
		add("dataset", "missing (want builtin or a dataset manifest CID)")
	default:
		if err := content.Check(s.Dataset.Manifest); err != nil {
			add("dataset", "%v", err)
		}
	}

	intRange("inner_steps", s.InnerSteps, 1, MaxInnerSteps)
	intRange("batch", s.Batch, 1, MaxBatch)

	in := s.Inner
	checkLR(add, "inner.lr", in.LR)
	intRange("inner.warmup", in.Warmup, 0, MaxWarmup)
	if !(in.Beta1 >= 0 && in.Beta1 < 1) {
		add("inner.betas", "beta1 must be in [0, 1), got %s", formatFloat(in.Beta1))
	}
	if !(in.Beta2 >= 0 && in.Beta2 < 1) {
		add("inner.betas", "beta2 must be in [0, 1), got %s", formatFloat(in.Beta2))
	}
	if !(in.Eps > 0 && in.Eps <= 1) {
		add("inner.eps", "must be in (0, 1], got %s", formatFloat(in.Eps))
	}
	if !(in.WeightDecay >= 0) || math.IsInf(in.WeightDecay, 0) {
		add("inner.weight_decay", "must be non-negative, got %s", formatFloat(in.WeightDecay))
	}
	if !(in.ClipNorm >= 0) || math.IsInf(in.ClipNorm, 0) {
		add("inner.clip_norm", "must be non-negative (0 disables clipping), got %s", formatFloat(in.ClipNorm))
	}

	checkLR(add, "outer.lr", s.Outer.LR)
	if !(s.Outer.Momentum >= 0 && s.Outer.Momentum < 1) {
		add("outer.momentum", "must be in [0, 1), got %s", formatFloat(s.Outer.Momentum))
	}

	if _, err := CanonicalCodec(s.Codec); err != nil {
		add("codec", "%v", err)
	}
	if _, err := CanonicalRule(s.Aggregation); err != nil {
		add("aggregation", "%v", err)
	}
	if !(s.FeedbackDecay >= 0 && s.FeedbackDecay <= 1) {
		add("feedback_decay", "must be in [0, 1], got %s", formatFloat(s.FeedbackDecay))
	}
	if !(s.LateWeight >= 0 && s.LateWeight <= 1) {
		add("late_weight", "must be in [0, 1], got %s", formatFloat(s.LateWeight))
	}

	unitOK := s.InnerSteps >= 1 && s.InnerSteps <= MaxInnerSteps && s.Batch >= 1 && s.Batch <= MaxBatch
	if u := s.UnitSamples(); unitOK && s.TargetSamples < u {
		add("target_samples", "must be at least one work unit, inner_steps × batch = %d, got %d", u, s.TargetSamples)
	} else if s.TargetSamples < 1 || s.TargetSamples > MaxTargetSamples {
		add("target_samples", "must be in [1, %d], got %d", int64(MaxTargetSamples), s.TargetSamples)
	}
	if s.Deadline <= 0 || s.Deadline > MaxDeadline {
		add("deadline", "must be positive and at most %v, got %v", MaxDeadline, s.Deadline)
	}
	if !(s.Quorum >= 0 && s.Quorum <= 1) {
		add("quorum", "must be in (0, 1], got %s", formatFloat(s.Quorum))
	}
	if s.Grace < 0 || (s.Deadline > 0 && s.Grace > s.Deadline) {
		add("grace", "must be from 0 to the deadline (%v), got %v", s.Deadline, s.Grace)
	}
	if !(s.VerificationRate >= 0 && s.VerificationRate <= 1) {
		add("verification_rate", "must be in [0, 1], got %s", formatFloat(s.VerificationRate))
	}
}

// roundProblems checks the trackers, the initial checkpoint and the
// admission.
func (s *Spec) roundProblems(add adder) {
	switch {
	case len(s.Trackers) == 0:
		add("trackers", "missing (at least one tracker peer ID)")
	case len(s.Trackers) > MaxTrackers:
		add("trackers", "at most %d trackers, got %d", MaxTrackers, len(s.Trackers))
	}
	seen := map[string]int{}
	for i, t := range s.Trackers {
		field := fmt.Sprintf("trackers[%d]", i)
		c, err := CanonicalPeerID(t)
		if err != nil {
			add(field, "%v", err)
			continue
		}
		if j, dup := seen[c]; dup {
			add(field, "the same peer as trackers[%d]", j)
			continue
		}
		seen[c] = i
	}
	if n := len(s.TrackerAddrs); n > 0 {
		if n != len(s.Trackers) {
			add("tracker_addrs", "%d addresses for %d trackers: give one per tracker, in the same order", n, len(s.Trackers))
		}
		for i, a := range s.TrackerAddrs {
			if !strings.HasPrefix(a, "/") || strings.ContainsAny(a, " \t\n") || len(a) > MaxTrackerAddr {
				add(fmt.Sprintf("tracker_addrs[%d]", i), "want a multiaddr (such as /ip4/192.0.2.1/tcp/4001), got %q", a)
			}
		}
	}

	if s.Tokenizer.Defined() {
		if err := content.Check(s.Tokenizer); err != nil {
			add("tokenizer", "%v", err)
		} else if s.Model.Vocab <= 256 {
			add("model.vocab", "%d: a round with a tokenizer needs the model's vocabulary to hold its tokens (more than 256)", s.Model.Vocab)
		}
	}
	if s.InitCheckpoint.Defined() {
		if err := content.Check(s.InitCheckpoint); err != nil {
			add("init_checkpoint", "%v", err)
		}
	}
	if a := s.Adapter; a != nil {
		s.adapterProblems(add, a)
	}
	if t := s.Teacher; t != nil {
		switch err := content.Check(t.Checkpoint); {
		case !t.Checkpoint.Defined():
			add("teacher.checkpoint", "missing (the teacher's checkpoint CID)")
		case err != nil:
			add("teacher.checkpoint", "%v", err)
		}
		if !(t.Temperature > 0 && t.Temperature <= 100) {
			add("teacher.temperature", "must be in (0, 100], got %s", formatFloat(t.Temperature))
		}
		if !(t.Mix >= 0 && t.Mix <= 1) {
			add("teacher.mix", "must be in [0, 1], got %s", formatFloat(t.Mix))
		}
		if s.Model.Arch != ArchGPT {
			add("teacher", "only a gpt learns from a teacher, not %q", s.Model.Arch)
		}
	}
	switch s.Admission {
	case AdmissionOpen, AdmissionClosed:
	default:
		add("admission", "want %s or %s, got %q", AdmissionOpen, AdmissionClosed, s.Admission)
	}
}

// adapterProblems checks a round's adapter.
func (s *Spec) adapterProblems(add adder, a *Adapter) {
	switch err := content.Check(a.Base); {
	case !a.Base.Defined():
		add("adapter.base", "missing (the base checkpoint's CID)")
	case err != nil:
		add("adapter.base", "%v", err)
	}
	if s.Model.Arch != ArchGPT {
		add("adapter", "only a gpt takes an adapter, not %q", s.Model.Arch)
	}
	if hi := min(MaxAdapterRank, max(s.Model.Dim, 1)); a.Rank < 1 || a.Rank > hi {
		add("adapter.rank", "must be in [1, %d] (at most model.dim), got %d", hi, a.Rank)
	} else if !(a.Alpha > 0 && a.Alpha <= 1e4) {
		add("adapter.alpha", "must be in (0, 10000], got %s", formatFloat(a.Alpha))
	}
	if len(a.Targets) == 0 {
		add("adapter.targets", "names no matrix (known: %s)", strings.Join(AdapterTargets, ", "))
	}
	for i, t := range a.Targets {
		field := fmt.Sprintf("adapter.targets[%d]", i)
		switch {
		case !slices.Contains(AdapterTargets, t):
			add(field, "unknown matrix %q (known: %s)", clip(t), strings.Join(AdapterTargets, ", "))
		case slices.Contains(a.Targets[:i], t):
			add(field, "%s is named twice", t)
		}
	}
	if s.InitCheckpoint.Defined() && s.InitCheckpoint.Equals(a.Base) {
		add("init_checkpoint", "is the adapter's base: a round of an adapter starts from an adapter's checkpoint, or from none")
	}
}

// checkText checks a name or description: valid UTF-8, no control
// characters (a description may hold newlines and tabs), at most max bytes.
func checkText(add func(field, format string, args ...any), field, v string, maxLen int, multiline bool) {
	switch {
	case len(v) > maxLen:
		add(field, "at most %d bytes, got %d", maxLen, len(v))
	case !utf8.ValidString(v):
		add(field, "not valid UTF-8")
	default:
		for _, r := range v {
			if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
				add(field, "holds the control character %U", r)
				return
			}
		}
	}
}

// checkLR checks a learning rate: positive, at most MaxLR.
func checkLR(add func(field, format string, args ...any), field string, lr float64) {
	switch {
	case !(lr > 0):
		add(field, "must be positive, got %s", formatFloat(lr))
	case lr > MaxLR:
		add(field, "must be at most %d, got %s", MaxLR, formatFloat(lr))
	}
}

// HeartbeatInterval is how often peers send Hello: a tenth of the step
// deadline, between 1 s and 30 s.
func HeartbeatInterval(s *Spec) time.Duration {
	return min(max(s.Deadline/10, time.Second), 30*time.Second)
}

// Liveness is how long a member stays in the round after its last Hello.
func Liveness(s *Spec) time.Duration { return 3 * HeartbeatInterval(s) }

// Inputs returns the checkpoints a round reads but never changes: an
// adapter's base and a teacher, in that order. Every peer that trains or
// checks needs them before its first unit.
func (s *Spec) Inputs() []cid.Cid {
	var out []cid.Cid
	if s.Adapter != nil {
		out = append(out, s.Adapter.Base)
	}
	if s.Teacher != nil {
		out = append(out, s.Teacher.Checkpoint)
	}
	return out
}

// Group reports whether the round's coordinator is a group of trackers
// (package tracker/group) rather than one tracker.
func (s *Spec) Group() bool { return len(s.Trackers) > 1 }

// TrackerIDs returns the peer IDs of the round's trackers in canonical
// form, in the spec's order.
func (s *Spec) TrackerIDs() []string {
	out := make([]string, len(s.Trackers))
	for i, t := range s.Trackers {
		out[i] = canonicalOr(t, CanonicalPeerID)
	}
	return out
}

// IsTracker reports whether peer (in canonical form) is one of the
// round's trackers.
func (s *Spec) IsTracker(peer string) bool {
	for _, t := range s.Trackers {
		if canonicalOr(t, CanonicalPeerID) == peer {
			return true
		}
	}
	return false
}
