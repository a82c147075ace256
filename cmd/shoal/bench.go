package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/gradient/exchange"
)

func newCmdBench(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run experiments that measure shoal's methods",
	}
	cmd.AddCommand(newCmdBenchExchange(f, nil))
	return cmd
}

type benchExchangeOptions struct {
	cfg   exchange.Config
	only  string
	json  bool
	quick bool
}

func newCmdBenchExchange(f *factory, runF func(*benchExchangeOptions) error) *cobra.Command {
	o := &benchExchangeOptions{cfg: exchange.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Compare gradient exchange methods: bytes sent against final loss",
		Long: `Train the same model on the built-in task with K in-process workers (no
network), the same seed, data and token budget for every method, and print a
table: bytes each worker sent, final held-out loss, and the gap to the
synchronous baseline (fp32 gradients averaged every step).

The methods: the synchronous baseline; DiLoCo (H inner AdamW steps, then the
pseudo-gradients are aggregated and applied with Nesterov momentum) at H=10
and H=50 in fp32; DiLoCo with every codec (error feedback on), and sign at
H=100; the sparse codecs (topk, block-sign) with the fixes that make them
work: mean:partial=true, which averages each coordinate over the workers
that sent it (the rule receives the sparse update), error feedback whose
residual decays (× 1-decay before each encoding), or a residual kept in the
worker's own parameters; and with a quarter of the workers Byzantine
(sign-flipped ×10, or random noise of ten times the honest norm) under the
mean and under each robust rule, fp32 and the best sparse codec. The
attackers' updates pass through the codec, as a round's payloads must.

--quick runs the same table on a small budget (4 workers × 100 steps) in a
few minutes: for tests, not for comparing the methods.`,
		Example: `  shoal bench exchange
  shoal bench exchange --only 'sync|topk' --steps 100
  shoal bench exchange --quick`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.quick {
				// The preset gives way to any flag set explicitly.
				q := exchange.QuickConfig()
				fl := cmd.Flags()
				if !fl.Changed("workers") {
					o.cfg.Workers = q.Workers
				}
				if !fl.Changed("steps") {
					o.cfg.Steps = q.Steps
				}
				if !fl.Changed("eval-batches") {
					o.cfg.EvalBatches = q.EvalBatches
				}
			}
			if o.only != "" {
				if _, err := regexp.Compile(o.only); err != nil {
					return fmt.Errorf("--only: %v", err)
				}
			}
			if runF != nil {
				return runF(o)
			}
			return runBenchExchange(cmd, f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.cfg.Model, "model", o.cfg.Model, "model of the zoo")
	fl.IntVar(&o.cfg.Workers, "workers", o.cfg.Workers, "workers (K)")
	fl.IntVar(&o.cfg.Steps, "steps", o.cfg.Steps, "inner steps per worker (the token budget)")
	fl.IntVar(&o.cfg.Batch, "batch", o.cfg.Batch, "sequences per worker per step")
	fl.Float32Var(&o.cfg.LR, "lr", o.cfg.LR, "peak inner learning rate (AdamW)")
	fl.Float32Var(&o.cfg.OuterLR, "outer-lr", o.cfg.OuterLR, "outer learning rate (Nesterov)")
	fl.Float32Var(&o.cfg.OuterMomentum, "outer-momentum", o.cfg.OuterMomentum, "outer Nesterov momentum")
	fl.Uint64Var(&o.cfg.Seed, "seed", o.cfg.Seed, "seed of initialisation, data and attacks")
	fl.IntVar(&o.cfg.EvalBatches, "eval-batches", o.cfg.EvalBatches, "held-out batches for the final loss")
	fl.StringVar(&o.only, "only", "", "run only the methods whose name matches this regular expression (the baseline always runs)")
	fl.BoolVar(&o.json, "json", false, "print the rows as JSON")
	fl.BoolVar(&o.quick, "quick", false, "a small preset for tests and smoke runs: 4 workers × 100 steps, 4 evaluation batches (a few minutes on 2 cores)")
	return cmd
}

type exchangeRow struct {
	Method         string  `json:"method"`
	BytesPerWorker int64   `json:"bytes_per_worker"`
	Reduction      float64 `json:"reduction_vs_sync"`
	EvalLoss       float64 `json:"eval_loss"`
	GapPct         float64 `json:"gap_vs_sync_percent"`
	Seconds        float64 `json:"seconds"`
}

func runBenchExchange(cmd *cobra.Command, f *factory, o *benchExchangeOptions) error {
	log := f.Logger()
	var only *regexp.Regexp
	if o.only != "" {
		only = regexp.MustCompile(o.only)
	}
	d := exchange.BuiltinData()
	var rows []exchangeRow
	var base exchange.Row
	for i, m := range exchange.Methods(o.cfg.Workers) {
		if i > 0 && only != nil && !only.MatchString(m.Name) {
			continue
		}
		if !m.Sync && m.H > o.cfg.Steps {
			log.Warn("skipped: H exceeds --steps", zap.String("method", m.Name))
			continue
		}
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		r, err := exchange.Run(o.cfg, m, d)
		if err != nil {
			return err
		}
		if m.Sync {
			base = r
		}
		row := exchangeRow{Method: m.Name, BytesPerWorker: r.BytesPerWorker, EvalLoss: r.EvalLoss, Seconds: r.Seconds,
			Reduction: float64(base.BytesPerWorker) / float64(r.BytesPerWorker), GapPct: 100 * (r.EvalLoss/base.EvalLoss - 1)}
		rows = append(rows, row)
		log.Info("method done", zap.String("method", m.Name), zap.Int64("bytes_per_worker", r.BytesPerWorker),
			zap.Float64("eval_loss", r.EvalLoss), zap.Float64("seconds", r.Seconds))
	}
	if o.json {
		e := json.NewEncoder(f.Out)
		e.SetIndent("", "  ")
		return e.Encode(map[string]any{"config": o.cfg, "entropy_floor": d.Floor, "rows": rows})
	}
	fmt.Fprintf(f.Out, "%s, %d workers × %d steps × batch %d, seed %d; built-in task floor %.4f nats/char\n",
		o.cfg.Model, o.cfg.Workers, o.cfg.Steps, o.cfg.Batch, o.cfg.Seed, d.Floor)
	tw := tabwriter.NewWriter(f.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tbytes/worker\tvs sync\teval loss\tgap vs sync\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0fx\t%.4f\t%+.1f%%\t\n", r.Method, r.BytesPerWorker, r.Reduction, r.EvalLoss, r.GapPct)
	}
	return tw.Flush()
}
