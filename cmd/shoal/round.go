package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/aggregate"
	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/gradient/data"
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
	cmd.AddCommand(newCmdRoundValidate(f, nil), newCmdRoundInit(f, nil), newCmdRoundStart(f, nil), newCmdRoundStatus(f, nil), newCmdRoundInvite(f, nil))
	return cmd
}

// roundValidateOptions are the arguments and flags of `shoal round validate`.
type roundValidateOptions struct {
	File string // "-" for standard input
	JSON bool
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
spec}, the spec byte for byte as the round ID hashes it.`,
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
	if err := roundDeepChecks(s); err != nil {
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
// package tracker.
func roundDeepChecks(s *round.Spec) error {
	var ps []error
	m := s.Model
	cfg := gradient.ModelConfig{Arch: m.Arch, Vocab: m.Vocab, Ctx: m.Ctx, Dim: m.Dim, Layers: m.Layers,
		Heads: m.Heads, Hidden: m.Hidden, Window: m.Window, Seed: m.Seed}
	if err := cfg.Validate(); err != nil {
		ps = append(ps, s.Problem("model", "%s", strings.TrimPrefix(err.Error(), "model: ")))
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
	row("step", "closes at %d samples (%d units) or after %v", s.TargetSamples, s.UnitsPerStep(), s.Deadline)
	in := s.Inner
	row("inner", "AdamW lr %g, warm-up %d, betas %g/%g, eps %g, weight decay %g, clip norm %g",
		in.LR, in.Warmup, in.Beta1, in.Beta2, in.Eps, in.WeightDecay, in.ClipNorm)
	row("outer", "Nesterov lr %g, momentum %g", s.Outer.LR, s.Outer.Momentum)
	row("codec", "%s", s.Codec)
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
