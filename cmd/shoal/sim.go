package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/simulations"
	"github.com/shoal-network/shoal/simulations/engine"
)

// simOptions are the flags of `shoal sim`.
type simOptions struct {
	Scenario  string // a built-in scenario's name or a YAML file
	Out       string
	JSON      bool
	NoCheck   bool
	List      bool
	Peers     int
	Steps     int
	Seed      uint64
	SeedSet   bool
	Churn     string
	Byzantine float64
	ByzSet    bool
	Behaviour string
	Links     string
	Training  string
	Delivery  string
}

func newCmdSim(f *factory, runF func(context.Context, *simOptions) error) *cobra.Command {
	o := &simOptions{}
	cmd := &cobra.Command{
		Use:   "sim [scenario]",
		Short: "Rehearse a round with thousands of simulated volunteers",
		Long: `Simulate a network of volunteers running a round, in virtual time.

The simulator runs the same node and tracker state machines as the daemon,
over a modelled network: every peer has a link (home broadband, mobile or
datacenter) with queues, volunteers come and go, machines differ in
speed, and a share of the peers cheat. Training is either real (the
round's model is trained by the simulated peers, each distinct work unit
once) or modelled by its cost, which lets 10,000 peers run on a laptop.

The scenario is the name of a built-in one (` + strings.Join(simulations.Builtin(), ", ") + `)
or a YAML file; flags change it for quick runs. The same scenario and
seed give the same report, byte for byte: report.json, summary.txt and
SVG plots (loss against virtual time for real training, step duration,
contributors per step, bytes per peer, utilisation) in --out. The summary
goes to stdout (--json: the report), progress to stderr.

A scenario may hold an expect block (loss against the honest twin, no
honest peer excluded, cheaters excluded by a step, no step stuck past its
deadline, steps finalised, honest peers on the finalised head): the
summary lists each with PASS or FAIL and what the run measured, and
shoal sim exits non-zero when one fails.`,
		Example: `  shoal sim demo
  shoal sim --peers 1000 --churn 0.2/h --byzantine 0.05 --links home
  shoal sim planet-10k --out planet
  shoal sim my-scenario.yaml --seed 7 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Scenario = "demo"
			if len(args) == 1 {
				o.Scenario = args[0]
			}
			o.SeedSet = cmd.Flags().Changed("seed")
			o.ByzSet = cmd.Flags().Changed("byzantine")
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runSim(cmd.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Out, "out", "", "directory for the report (default sim-<scenario>)")
	fl.BoolVar(&o.JSON, "json", false, "print the report as JSON on stdout instead of the summary")
	fl.BoolVar(&o.NoCheck, "no-check", false, "do not check the invariants after every event")
	fl.BoolVar(&o.List, "list", false, "list the built-in scenarios and exit")
	fl.IntVar(&o.Peers, "peers", 0, "peers at the start (default: the scenario's)")
	fl.IntVar(&o.Steps, "steps", 0, "outer steps to run (default: the scenario's)")
	fl.Uint64Var(&o.Seed, "seed", 0, "seed of the run (default: the scenario's)")
	fl.StringVar(&o.Churn, "churn", "", "departures per peer and hour, e.g. 0.2/h (peers come back after a while)")
	fl.Float64Var(&o.Byzantine, "byzantine", 0, "share of adversarial peers, e.g. 0.05")
	fl.StringVar(&o.Behaviour, "behaviour", "", fmt.Sprintf("how adversaries cheat: %v", simulations.Behaviours))
	fl.StringVar(&o.Links, "links", "", "link mix: home, mobile, datacenter, planet, or e.g. home:0.7,mobile:0.3")
	fl.StringVar(&o.Training, "training", "", "real (train the round's model) or cost (model compute by its duration)")
	fl.StringVar(&o.Delivery, "delivery", "", "every (each update to each node), batched, or auto")
	return cmd
}

func (o *simOptions) validate() error {
	switch {
	case o.Peers < 0 || o.Peers > simulations.MaxPeers:
		return fmt.Errorf("--peers must be between 1 and %d, got %d", simulations.MaxPeers, o.Peers)
	case o.Steps < 0:
		return fmt.Errorf("--steps must be positive, got %d", o.Steps)
	case o.ByzSet && !(o.Byzantine >= 0 && o.Byzantine < 0.5):
		return fmt.Errorf("--byzantine must be in [0, 0.5), got %g", o.Byzantine)
	case o.Training != "" && o.Training != "real" && o.Training != "cost":
		return fmt.Errorf("--training must be real or cost, got %q", o.Training)
	case o.Delivery != "" && o.Delivery != "every" && o.Delivery != "batched" && o.Delivery != "auto":
		return fmt.Errorf("--delivery must be every, batched or auto, got %q", o.Delivery)
	}
	if o.Churn != "" {
		if _, err := simulations.ParseRate(o.Churn); err != nil {
			return fmt.Errorf("--churn: %v", err)
		}
	}
	if o.Behaviour != "" {
		if _, err := simulations.ParseBehaviour(o.Behaviour); err != nil {
			return fmt.Errorf("--behaviour: %v", err)
		}
	}
	if o.Links != "" {
		if _, err := engine.ParseLinkMix(o.Links); err != nil {
			return fmt.Errorf("--links: %v", err)
		}
	}
	return nil
}

// overrides turns the flags into changes to the scenario.
func (o *simOptions) overrides() simulations.Overrides {
	ov := simulations.Overrides{Peers: o.Peers, Steps: o.Steps, Churn: o.Churn, Behaviour: o.Behaviour, Links: o.Links,
		Training: o.Training, Delivery: o.Delivery}
	if o.SeedSet {
		seed := o.Seed
		ov.Seed = &seed
	}
	if o.ByzSet {
		b := o.Byzantine
		ov.Byzantine = &b
	}
	return ov
}

func runSim(ctx context.Context, f *factory, o *simOptions) error {
	if o.List {
		for _, name := range simulations.Builtin() {
			s, err := simulations.LoadScenario(name)
			if err != nil {
				return err
			}
			fmt.Fprintf(f.Out, "%-18s %s\n", name, firstLine(s.Description))
		}
		return nil
	}
	s, err := simulations.LoadScenario(o.Scenario)
	if err != nil {
		return err
	}
	if err := o.overrides().Apply(s); err != nil {
		return fmt.Errorf("%s: %w", s.Source, err)
	}
	out := o.Out
	if out == "" {
		out = "sim-" + s.Name
	}
	delivery := "every update to every node"
	if s.Batched() {
		delivery = "updates batched per step"
	}
	fmt.Fprintf(f.Err, "shoal sim: %s, %d peers, %d steps, %s training, %s links, %s, seed %d\n",
		s.Name, s.Peers+s.Observers, s.Steps, s.Training, s.Network.Links, delivery, s.Seed)
	if s.Peers+s.Observers >= 2000 {
		// A large run allocates steadily and keeps little: collecting
		// less often saves a tenth of the time, within a bound on memory.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(6 << 30))
	}
	bar := newSimProgress(f.Err, f.terminal)
	start := time.Now()
	rep, err := simulations.Run(s, simulations.RunOptions{NoCheck: o.NoCheck, Context: ctx, Progress: bar.update})
	bar.done()
	if err != nil {
		return err
	}
	wall := time.Since(start)
	if err := rep.WriteDir(out); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if o.JSON {
		if _, err := f.Out.Write(rep.JSON()); err != nil {
			return err
		}
	} else {
		fmt.Fprint(f.Out, rep.Text())
	}
	fmt.Fprintf(f.Err, "report in %s/ (%d events in %s of wall time, %.0f events/s; %.0f%% of it in the tracker's state machine)\n", out, rep.Events,
		wall.Round(10*time.Millisecond), float64(rep.Events)/max(wall.Seconds(), 1e-9), 100*bar.tracker.Seconds()/max(wall.Seconds(), 1e-9))
	if len(rep.Expectations) > 0 {
		// The expectations judge the run, a run stopped early included.
		if rep.Stopped != "" {
			fmt.Fprintf(f.Err, "shoal sim: %s\n", rep.Stopped)
		}
		return rep.Check()
	}
	if rep.Stopped != "" {
		return errors.New(rep.Stopped)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".\n"); i >= 0 {
		return s[:i+1]
	}
	return s
}

// simProgress draws a progress bar of a simulation on a terminal, and
// logs a line every tenth of the run otherwise.
type simProgress struct {
	w     io.Writer
	term  bool
	start time.Time
	last  time.Time
	run   string
	shown int
	drawn bool

	tracker, trackerBase, lastTracker time.Duration // wall time in the tracker, over the runs
}

func newSimProgress(w io.Writer, terminal bool) *simProgress {
	return &simProgress{w: w, term: terminal, start: time.Now()}
}

func (p *simProgress) update(pr simulations.Progress) {
	now := time.Now()
	if pr.Run != p.run && p.run != "" {
		p.trackerBase += p.lastTracker
	}
	p.lastTracker = pr.TrackerWall
	p.tracker = p.trackerBase + pr.TrackerWall
	if pr.Run != p.run {
		p.run, p.start, p.shown = pr.Run, now, 0
	}
	eta := time.Duration(0)
	if pr.Steps > 0 {
		eta = time.Duration(float64(now.Sub(p.start)) * float64(pr.Of-pr.Steps) / float64(pr.Steps)).Round(time.Second)
	}
	virtual := pr.Virtual.Round(time.Second)
	if !p.term {
		if tenth := 10 * pr.Steps / max(pr.Of, 1); tenth > p.shown || pr.Steps == pr.Of {
			p.shown = tenth
			fmt.Fprintf(p.w, "%s: step %d/%d, virtual %s, %d peers live, %d events, eta %s\n", pr.Run, pr.Steps, pr.Of, virtual, pr.Live, pr.Events, eta)
		}
		return
	}
	if pr.Steps < pr.Of && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 24
	filled := width * pr.Steps / max(pr.Of, 1)
	fmt.Fprintf(p.w, "\r\033[K%s %d/%d [%s%s] virtual %s  %d live  eta %s", pr.Run, pr.Steps, pr.Of,
		strings.Repeat("█", filled), strings.Repeat("░", width-filled), virtual, pr.Live, eta)
	p.drawn = true
}

func (p *simProgress) done() {
	if p.term && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
