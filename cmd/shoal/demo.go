package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker/dashboard"
	"github.com/shoal-network/shoal/tracker/round"
)

// demoOptions are the flags of `shoal demo`.
type demoOptions struct {
	Workers       int
	Target        float64 // relative to the floor: stop when loss <= floor × Target
	MaxSteps      int
	Dir           string
	DashboardAddr string
	Timeout       time.Duration
}

func newCmdDemo(f *factory, runF func(context.Context, *demoOptions) error) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole round on this machine: a tracker and volunteers over libp2p",
		Long: `Run a whole training round on this machine.

A tracker, an observer and --workers volunteers start as real libp2p hosts
on 127.0.0.1, talking TCP and QUIC to each other as they would across the
internet. They train gpt-tiny on the built-in task (a synthetic language
whose best possible loss, its entropy floor, is known exactly) in outer
steps: every volunteer trains a work unit, the compressed updates travel
by gossip, every peer aggregates them and they agree on each new
checkpoint by its CID. The observer measures the held-out loss of every
checkpoint; the demo stops when it is within --target of the floor (or
after --max-steps), and prints the agreed checkpoint CID.

The tracker's dashboard is served on --dashboard-addr while the demo runs.`,
		Example: `  shoal demo
  shoal demo --workers 2 --max-steps 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.Workers < 1 || o.Workers > 64:
				return fmt.Errorf("--workers must be between 1 and 64, got %d", o.Workers)
			case o.Target < 1:
				return fmt.Errorf("--target must be at least 1 (a multiple of the floor), got %g", o.Target)
			case o.MaxSteps < 1:
				return fmt.Errorf("--max-steps must be at least 1, got %d", o.MaxSteps)
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runDemo(cmd.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Workers, "workers", 4, "volunteers to run")
	fl.Float64Var(&o.Target, "target", 1.15, "stop when the held-out loss is at most this multiple of the entropy floor")
	fl.IntVar(&o.MaxSteps, "max-steps", 60, "stop after this many outer steps regardless")
	fl.StringVar(&o.Dir, "dir", "", "directory for the peers' data (default: a temporary one, removed at the end)")
	fl.StringVar(&o.DashboardAddr, "dashboard-addr", "127.0.0.1:0", "address to serve the dashboard on (port 0: any free port)")
	fl.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "give up after this long")
	return cmd
}

func runDemo(ctx context.Context, f *factory, o *demoOptions) error {
	log := f.Logger()
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "shoal-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	train, eval, floor := daemon.BuiltinData()
	target := floor * o.Target
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// The peers' own logs are for --log-level debug; by default only
	// their warnings show among the demo's progress lines.
	core := log.Core()
	if f.log.level == "info" {
		if c, err := zapcore.NewIncreaseLevelCore(core, zapcore.WarnLevel); err == nil {
			core = c
		}
	}
	l, err := daemon.StartLocal(ctx, daemon.LocalConfig{Spec: daemon.DemoSpec(o.Workers), Workers: o.Workers, Dir: dir,
		Train: train, Eval: eval, Floor: floor, Logger: slog.New(zapslog.NewHandler(core))})
	if err != nil {
		return err
	}
	defer l.Close()

	ln, err := net.Listen("tcp", o.DashboardAddr)
	if err != nil {
		return fmt.Errorf("--dashboard-addr: %w", err)
	}
	srv := &http.Server{Handler: dashboard.New(l.Tracker.Snapshot, dashboard.Options{Title: "shoal demo"}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	printDemoBanner(f.Err, o, l.Spec, ln.Addr(), target, floor)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	start := time.Now()
	reported := 0
	var lastLoss float64
	reached := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case err := <-done:
			stop()
			if err != nil {
				return err
			}
			return errors.New("the round stopped unexpectedly")
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		finals := l.Tracker.Finals()
		for reported < len(finals) {
			loss, ok := l.EvalLoss(uint64(reported + 1))
			if !ok {
				break // wait for the observer's measurement
			}
			lastLoss = loss
			snap := l.Tracker.Snapshot()
			train := 0.0
			for _, p := range snap.Loss {
				if p.Step == uint64(reported) {
					train = p.Train
				}
			}
			fmt.Fprintf(f.Err, "step %3d  train %.4f  held-out %.4f  (%5.1f%% above the floor)  %6.1fs\n",
				reported+1, train, loss, 100*(loss/floor-1), time.Since(start).Seconds())
			reported++
			if loss <= target {
				reached = true
				break loop
			}
			if reported >= o.MaxSteps {
				break loop
			}
		}
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	if ctx.Err() != nil && reported == 0 {
		return fmt.Errorf("no step finished within --timeout %v", o.Timeout)
	}
	finals := l.Tracker.Finals()
	if len(finals) == 0 {
		return errors.New("no step was finalised")
	}
	last := finals[reported-1]
	// Every peer that finished the step holds the same checkpoint.
	agree := 0
	for _, n := range append(l.Workers, l.Observer) {
		if st := n.Status(); st.Step >= uint64(reported) {
			agree++
		}
	}
	fmt.Fprintln(f.Err)
	if reached {
		fmt.Fprintf(f.Err, "reached the target after %d outer steps in %.1fs\n", reported, time.Since(start).Seconds())
	} else {
		fmt.Fprintf(f.Err, "stopped after %d outer steps in %.1fs without reaching the target\n", reported, time.Since(start).Seconds())
	}
	fmt.Fprintf(f.Err, "held-out loss %.4f nats/char; entropy floor %.4f (%.1f%% above it)\n", lastLoss, floor, 100*(lastLoss/floor-1))
	fmt.Fprintf(f.Err, "%d of %d peers hold the agreed checkpoint C_%d\n", agree, len(l.Workers)+1, reported)
	fmt.Fprintf(f.Out, "%s\n", last.Checkpoint)
	log.Debug("demo done", zap.Int("steps", reported))
	return nil
}

// printDemoBanner says what the demo runs and where to watch it.
func printDemoBanner(w io.Writer, o *demoOptions, spec *round.Spec, dashboard net.Addr, target, floor float64) {
	fmt.Fprintf(w, "shoal demo: %d volunteers, an observer and a tracker on 127.0.0.1\n", o.Workers)
	fmt.Fprintf(w, "  round      %s\n", spec.ID())
	fmt.Fprintf(w, "  model      gpt-tiny (%d layers, width %d, context %d), units of %d steps × %d sequences\n",
		spec.Model.Layers, spec.Model.Dim, spec.Model.Ctx, spec.InnerSteps, spec.Batch)
	fmt.Fprintf(w, "  dashboard  http://%s/\n", dashboard)
	fmt.Fprintf(w, "  target     held-out loss %.4f nats/char (%.2f × the task's entropy floor %.4f)\n\n", target, o.Target, floor)
}
