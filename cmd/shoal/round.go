package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/aggregate"
	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/tracker/round"
)

func newCmdRound(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "round",
		Short: "Write, check and run round specs",
		Long: `Write, check and run training rounds.

A round spec is a YAML file that describes a training round: the model, the
data, the inner and outer optimizers, the update codec and aggregation rule,
how much work a step wants and how long it may take, and the trackers that
coordinate it. Its round ID is the CID of its canonical encoding, so two
files that mean the same round have the same ID, whatever their comments,
layout or key order.

'init' writes a template naming this machine's tracker identity, 'validate'
checks a spec, 'start' runs the tracker (with an observer and the
dashboard) and prints the invite volunteers pass to 'shoal node join',
'invite' signs access tokens for closed rounds, and 'status' prints what
the dashboard shows.`,
	}
	cmd.AddCommand(newCmdRoundValidate(f, nil), newCmdRoundInit(f, nil), newCmdRoundStart(f, nil), newCmdRoundStatus(f, nil), newCmdRoundInvite(f, nil), newCmdRoundGroup(f, nil))
	return cmd
}

// roundValidateOptions are the arguments and flags of `shoal round validate`.
type roundValidateOptions struct {
	File      string // "-" for standard input
	JSON      bool
	MaxMemory byteSize // 0: this machine's physical memory
}

func newCmdRoundValidate(f *factory, runF func(*roundValidateOptions) error) *cobra.Command {
	o := &roundValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a round spec and print its round ID",
		Long: `Check a round spec and print its round ID and a summary.

Every problem is reported with its file and line, for example

  round.yaml:12: inner.lr: must be positive, got -0.1

and the command fails if there is any. FILE - reads standard input. With
--json the output is one JSON object: {"id": round ID, "spec": the canonical
spec}, the spec byte for byte as the round ID hashes it.

A model that needs more memory to train than --max-memory (by default this
machine's physical memory, or 16 GiB where that cannot be read) is refused:
its parameters take 28 bytes each (weights, gradients, AdamW's moments, the
outer momentum, the error-feedback residual and the update) and its
activations grow with batch × ctx × width × layers.`,
		Example: `  shoal round validate round.yaml
  shoal round validate --json round.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			if runF != nil {
				return runF(o)
			}
			return runRoundValidate(f, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the round ID and canonical spec as JSON")
	cmd.Flags().Var(&o.MaxMemory, "max-memory", "memory a node has to train the model in (e.g. 8GiB; 0: this machine's physical memory)")
	return cmd
}

func runRoundValidate(f *factory, o *roundValidateOptions) error {
	name := o.File
	var b []byte
	var err error
	if o.File == "-" {
		name = "<stdin>"
		if f.In == nil {
			return errors.New("no standard input to read the spec from")
		}
		b, err = io.ReadAll(io.LimitReader(f.In, round.MaxSpecSize+1))
	} else {
		b, err = readRoundFile(o.File)
	}
	if err != nil {
		return err
	}
	s, err := round.Parse(b, name)
	if err != nil {
		return roundSpecError(name, err)
	}
	if err := roundDeepChecks(s, int64(o.MaxMemory)); err != nil {
		return roundSpecError(name, err)
	}
	id := s.ID()
	f.Logger().Debug("round spec is valid", zap.String("file", name), zap.Stringer("id", id))
	if o.JSON {
		e := json.NewEncoder(f.Out)
		e.SetEscapeHTML(false)
		return e.Encode(roundJSON{ID: id.String(), Spec: s.Canonical()})
	}
	return printRoundSummary(f.Out, s)
}

// roundJSON is the output of `round validate --json` (stable JSON).
type roundJSON struct {
	ID   string          `json:"id"`
	Spec json.RawMessage `json:"spec"` // the canonical encoding, as hashed
}

// readRoundFile reads a spec file, refusing one larger than a spec can be.
func readRoundFile(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, round.MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// roundSpecError presents the problems with a spec, one per line.
func roundSpecError(name string, err error) error {
	if n := len(round.Problems(err)); n > 1 {
		return fmt.Errorf("%s is not a valid round spec (%d problems):\n%w", name, n, err)
	}
	return err
}

// roundDeepChecks checks the spec against the implementations of its
// model, optimizers, codec and aggregation rule, beyond the checks of
// package tracker. A model that needs more memory to train than maxMemory
// (0: this machine's physical memory, see memoryLimit) is refused.
func roundDeepChecks(s *round.Spec, maxMemory int64) error {
	var ps []error
	m := s.Model
	cfg := gradient.ModelConfig{Arch: m.Arch, Vocab: m.Vocab, Ctx: m.Ctx, Dim: m.Dim, Layers: m.Layers,
		Heads: m.Heads, Hidden: m.Hidden, Window: m.Window, Seed: m.Seed}
	if err := cfg.Validate(); err != nil {
		ps = append(ps, s.Problem("model", "%s", strings.TrimPrefix(err.Error(), "model: ")))
	} else if limit, from := memoryLimit(maxMemory); trainingMemory(cfg, s.Batch) > float64(limit) {
		_, n := modelTensors(cfg)
		ps = append(ps, s.Problem("model", "training it takes about %s of memory (%d parameters, batch %d), more than %s",
			bytesize.Format(trainingMemory(cfg, s.Batch)), n, s.Batch, from))
	}
	if m.Vocab < data.VocabSize {
		ps = append(ps, s.Problem("model.vocab", "the data is byte-level: vocab must be at least %d, got %d", data.VocabSize, m.Vocab))
	}
	sched := gradient.Schedule{Peak: float32(s.Inner.LR), Warmup: s.Inner.Warmup}
	if err := sched.Validate(); err != nil {
		ps = append(ps, s.Problem("inner.lr", "%v", err))
	}
	adam := gradient.AdamWConfig{Beta1: float32(s.Inner.Beta1), Beta2: float32(s.Inner.Beta2), Eps: float32(s.Inner.Eps),
		WeightDecay: float32(s.Inner.WeightDecay), ClipNorm: float32(s.Inner.ClipNorm)}
	if err := adam.Validate(); err != nil {
		ps = append(ps, s.Problem("inner", "%v", err))
	}
	if float32(s.Outer.LR) == 0 {
		ps = append(ps, s.Problem("outer.lr", "%g is 0 in float32", s.Outer.LR))
	}
	if _, err := codec.Parse(s.Codec); err != nil {
		ps = append(ps, s.Problem("codec", "%v", err))
	}
	if _, err := aggregate.Parse(s.Aggregation); err != nil {
		ps = append(ps, s.Problem("aggregation", "%v", err))
	}
	return errors.Join(ps...)
}

// defaultMaxMemory is the memory assumed where the machine's cannot be read.
const defaultMaxMemory = 16 << 30

// memoryLimit returns the memory a model may take to train: maxMemory if
// positive, else this machine's physical memory (MemTotal of /proc/meminfo)
// or, where that cannot be read, 16 GiB; and the limit in words.
func memoryLimit(maxMemory int64) (int64, string) {
	if maxMemory > 0 {
		return maxMemory, "--max-memory " + bytesize.Format(float64(maxMemory))
	}
	if n, ok := physicalMemory(); ok {
		return n, "the " + bytesize.Format(float64(n)) + " of this machine (--max-memory sets another limit)"
	}
	return defaultMaxMemory, bytesize.Format(defaultMaxMemory) + ", the limit where this machine's memory is unknown (--max-memory sets another)"
}

// physicalMemory reads the machine's memory from /proc/meminfo.
func physicalMemory() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 || kb > 1<<50 {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// trainingMemory estimates the bytes a node takes to train a valid model
// configuration with batch sequences per inner step. It errs high, counting
// every buffer at once:
//
//	params × 28 bytes: weights and their gradients (4 + 4), AdamW's two
//	    moments (8), the outer momentum (4), the error-feedback residual (4)
//	    and the pseudo-gradient, which overwrites the unit's start copy (4);
//	+ batch × ctx × (layers × 48 × width + 8 × window × dim + 16 × vocab):
//	    what the training pass keeps for every position: about ten vectors
//	    of a layer's width (dim for gpt, hidden for mlp) of 4-byte values,
//	    and two of gradients, per layer (attention weights are computed
//	    again in the backward pass, not kept); the mlp's window of
//	    embeddings, values and gradients; the logits, their softmax and
//	    their gradients;
//	+ 48 × ctx² for gpt: the attention's T×T scratch, three per goroutine,
//	    for up to four goroutines.
//
// It is computed in float64: the sizes a spec allows overflow no int64 of
// bytes, but their products may.
func trainingMemory(cfg gradient.ModelConfig, batch int) float64 {
	_, params := modelTensors(cfg)
	if cfg.Adapter != nil {
		// The adapter's parameters take the 28 bytes each, the frozen
		// base's its values alone.
		_, base := modelTensors(cfg.BaseConfig())
		params += base / 7
	}
	width, window, scratch := cfg.Dim, 0, 48*float64(cfg.Ctx)*float64(cfg.Ctx)
	if cfg.Arch == "mlp" {
		width, window, scratch = cfg.Hidden, cfg.Window, 0
	}
	perPosition := float64(cfg.Layers)*48*float64(width) + 8*float64(window)*float64(cfg.Dim) + 16*float64(cfg.Vocab)
	return 28*float64(params) + float64(batch)*float64(cfg.Ctx)*perPosition + scratch
}

// printRoundSummary writes a one-screen summary of a valid spec.
func printRoundSummary(w io.Writer, s *round.Spec) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("round", "%s", s.ID())
	if s.Name != "" {
		row("name", "%s", s.Name)
	}
	if s.Description != "" {
		d, _, more := strings.Cut(s.Description, "\n")
		if more {
			d += " …"
		}
		row("description", "%s", d)
	}
	m := s.Model
	sizes := fmt.Sprintf("vocab %d, ctx %d, dim %d, layers %d", m.Vocab, m.Ctx, m.Dim, m.Layers)
	if m.Arch == round.ArchGPT {
		sizes += fmt.Sprintf(", heads %d", m.Heads)
	} else {
		sizes += fmt.Sprintf(", hidden %d, window %d", m.Hidden, m.Window)
	}
	row("model", "%s: %s", m.Arch, sizes)
	if s.Tokenizer.Defined() {
		row("tokens", "tokenizer %s (round start serves it: --vocab, --merges)", s.Tokenizer)
	} else {
		row("tokens", "one per byte")
	}
	if a := s.Adapter; a != nil {
		row("adapter", "LoRA rank %d, alpha %s, on %s of base %s", a.Rank, strconv.FormatFloat(a.Alpha, 'g', -1, 64), strings.Join(a.Targets, ", "), a.Base)
	}
	if t := s.Teacher; t != nil {
		row("teacher", "%s, temperature %s, data loss weight %s", t.Checkpoint, strconv.FormatFloat(t.Temperature, 'g', -1, 64), strconv.FormatFloat(t.Mix, 'g', -1, 64))
	}
	if s.InitCheckpoint.Defined() {
		row("start", "checkpoint %s", s.InitCheckpoint)
	} else {
		row("start", "fresh, initialisation seed %d", m.Seed)
	}
	if s.Dataset.Builtin {
		row("dataset", "the built-in task")
	} else {
		row("dataset", "manifest %s", s.Dataset.Manifest)
	}
	row("work unit", "%d inner steps × batch %d = %d samples", s.InnerSteps, s.Batch, s.UnitSamples())
	if q := s.QuorumSamples(); q < s.TargetSamples {
		row("step", "closes at %d samples (%d units), %v after %d, or after %v", s.TargetSamples, s.UnitsPerStep(), s.Grace, q, s.Deadline)
	} else {
		row("step", "closes at %d samples (%d units) or after %v", s.TargetSamples, s.UnitsPerStep(), s.Deadline)
	}
	if s.LateWeight != 0 {
		row("late units", "join the next step at %g of their samples", s.LateWeight)
	}
	in := s.Inner
	row("inner", "AdamW lr %g, warm-up %d, betas %g/%g, eps %g, weight decay %g, clip norm %g",
		in.LR, in.Warmup, in.Beta1, in.Beta2, in.Eps, in.WeightDecay, in.ClipNorm)
	row("outer", "Nesterov lr %g, momentum %g", s.Outer.LR, s.Outer.Momentum)
	if s.FeedbackDecay != 0 {
		row("codec", "%s, error feedback decay %g", s.Codec, s.FeedbackDecay)
	} else {
		row("codec", "%s", s.Codec)
	}
	row("aggregation", "%s", s.Aggregation)
	row("verification", "%.4g%% of units computed twice", 100*s.VerificationRate)
	row("seed", "%d", s.Seed)
	row("admission", "%s", s.Admission)
	for i, t := range s.Trackers {
		k := ""
		if i == 0 {
			k = "trackers"
		}
		row(k, "%s", t)
	}
	return tw.Flush()
}
