package main

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// ---- merge

type checkpointMergeOptions struct {
	*checkpointOptions
	Refs      []string
	Weights   string
	Base      string
	DropState bool
	Label     string
}

func newCmdCheckpointMerge(f *factory, co *checkpointOptions, runF func(*checkpointMergeOptions) error) *cobra.Command {
	o := &checkpointMergeOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "merge CID|label [CID|label...]",
		Short: "Merge checkpoints of one model: a weighted average, or task arithmetic on a base",
		Long: `Combine stored checkpoints of the same model into a new one, store it and
print its CID.

Without --base the result is the weighted sum of the checkpoints (--weights,
default an equal share each: their average). With --base it is task
arithmetic: base + Σ wᵢ (Aᵢ − base), each checkpoint's difference from the
base scaled by its weight (default 1) and added to it.

Every value is computed in float64, in the order the checkpoints are given,
and rounded once, so the result and its CID are the same on every machine; a
checkpoint averaged with itself is itself again. The checkpoints must hold the
same parameters with the same shapes, and the same model configuration. The
result keeps the metadata they all agree on (a step or round that differs is
dropped), and the optimizer state they all hold, merged alike
(--drop-state leaves it out).`,
		Example: `  shoal checkpoint merge run-a run-b --label avg
  shoal checkpoint merge run-a run-b --weights 0.7,0.3
  shoal checkpoint merge law medicine --base base --weights 0.5,0.5 --label both`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Refs = args
			if err := checkLabel(o.Label); err != nil {
				return err
			}
			if _, err := parseWeights(o.Weights, len(args)); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runCheckpointMerge(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Weights, "weights", "", "the checkpoints' weights, comma-separated, one each (default: 1/n each, or 1 each with --base)")
	fl.StringVar(&o.Base, "base", "", "CID|label of the base: merge the checkpoints' differences from it (task arithmetic)")
	fl.BoolVar(&o.DropState, "drop-state", false, "leave optimizer state out of the result")
	fl.StringVar(&o.Label, "label", "", "label to give the merged checkpoint")
	return cmd
}

// parseWeights reads --weights: nil if empty, else exactly n finite
// numbers.
func parseWeights(s string, n int) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, fmt.Errorf("--weights: %d weights for %d checkpoints", len(parts), n)
	}
	w := make([]float64, n)
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("--weights: weight %d, %q, is not a finite number", i+1, p)
		}
		w[i] = x
	}
	return w, nil
}

func runCheckpointMerge(f *factory, o *checkpointMergeOptions) error {
	s, err := o.open(false)
	if err != nil {
		return err
	}
	w, err := parseWeights(o.Weights, len(o.Refs))
	if err != nil {
		return err
	}
	get := func(ref string) (*checkpoint.Checkpoint, error) {
		_, c, err := getRef(s, ref)
		return c, err
	}
	var in []*checkpoint.Checkpoint
	for _, ref := range o.Refs {
		c, err := get(ref)
		if err != nil {
			return err
		}
		in = append(in, c)
	}
	mo := checkpoint.MergeOptions{Weights: w, DropState: o.DropState}
	if o.Base != "" {
		if mo.Base, err = get(o.Base); err != nil {
			return fmt.Errorf("--base: %w", err)
		}
	}
	m, err := checkpoint.Merge(in, mo)
	if err != nil {
		return err
	}
	id, err := putLabelled(s, m, o.Label)
	if err != nil {
		return err
	}
	f.Logger().Info("merged", zap.Strings("checkpoints", o.Refs), zap.String("base", o.Base), zap.String("checkpoint", id.String()))
	fmt.Fprintln(f.Out, id)
	return nil
}

// ---- merge-adapter

func newCmdCheckpointMergeAdapter(f *factory, co *checkpointOptions) *cobra.Command {
	var label string
	cmd := &cobra.Command{
		Use:   "merge-adapter BASE ADAPTER",
		Short: "Fold a low-rank adapter (LoRA) into its base: full weights under a new CID",
		Long: `Fold a low-rank adapter, such as a checkpoint of a round that trained
one (adapter: in its spec), into the base model it adapts, store the result
and print its CID. Each matrix W the adapter targets becomes
W + (alpha/rank)·A·B; every other weight is the base's. The result is a
model of the base's configuration that shoal generate, shoal checkpoint
export and further rounds take as any other.

Every value is computed in float64 and rounded once, so the result and its
CID are the same on every machine. The adapter must have been trained on
this base: its configuration names the base's CID, which must be BASE's,
and the base's model with the adapter's.`,
		Example: `  shoal checkpoint merge-adapter base bafk...adapter --label law`,
		Args:    cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkLabel(label); err != nil {
				return err
			}
			s, err := co.open(false)
			if err != nil {
				return err
			}
			baseID, base, err := getRef(s, args[0])
			if err != nil {
				return err
			}
			adapterID, adapter, err := getRef(s, args[1])
			if err != nil {
				return err
			}
			var acfg gradient.ModelConfig
			if err := json.Unmarshal([]byte(adapter.Meta[checkpoint.MetaConfig]), &acfg); err != nil || acfg.Adapter == nil {
				return fmt.Errorf("%s: not an adapter's checkpoint: its configuration names no adapter", args[1])
			}
			if err := acfg.Validate(); err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			if b := acfg.Adapter.Base; b != "" && b != baseID.String() {
				named := args[0]
				if named != baseID.String() {
					named += " (" + baseID.String() + ")"
				}
				return fmt.Errorf("%s adapts base %s, not %s", args[1], b, named)
			}
			var bcfg gradient.ModelConfig
			if err := json.Unmarshal([]byte(base.Meta[checkpoint.MetaConfig]), &bcfg); err == nil {
				want := acfg.BaseConfig()
				want.Seed, bcfg.Seed = 0, 0
				if bcfg.Adapter != nil || !reflect.DeepEqual(bcfg, want) {
					return fmt.Errorf("%s is a model of another configuration than the one %s adapts", args[0], args[1])
				}
			}
			m, err := checkpoint.MergeAdapter(base, adapter, float64(acfg.Adapter.Scale()))
			if err != nil {
				return err
			}
			id, err := putLabelled(s, m, label)
			if err != nil {
				return err
			}
			f.Logger().Info("merged an adapter", zap.String("base", baseID.String()), zap.String("adapter", adapterID.String()), zap.String("checkpoint", id.String()))
			fmt.Fprintln(f.Out, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "label to give the merged checkpoint")
	return cmd
}
