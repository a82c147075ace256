package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/internal/bytesize"
)

func newCmdCheckpointQuantize(f *factory, co *checkpointOptions) *cobra.Command {
	var quant, label string
	cmd := &cobra.Command{
		Use:   "quantize CID|label",
		Short: "Quantise a gpt's weights for local inference, as a new content-addressed checkpoint",
		Long: fmt.Sprintf(`Quantise the weight matrices of a stored gpt (the token embedding and each
block's four) to 8 or 4 bits, in groups of %d weights that share a float32
scale, store the result as a checkpoint and print its CID. shoal generate
reads it as it reads any checkpoint, and gives the same text, bit for bit,
as generate --quant on the float32 model: the quantisation is the same
deterministic function on every machine.

The checkpoint keeps the codes of each matrix (packed four bytes to a 32-bit
value) and its scales beside the other parameters, with quant in its
metadata; it is for inference only: rounds, merges and exports refuse it.`, gradient.DefaultQuantGroup),
		Example: `  shoal checkpoint quantize head --quant int4 --label head-int4
  shoal generate head-int4 --prompt "func "`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			q, err := gradient.ParseQuant(quant)
			if err != nil || q.Bits == 0 {
				return fmt.Errorf("--quant %q: want int8 or int4", quant)
			}
			if err := checkLabel(label); err != nil {
				return err
			}
			s, err := co.open(false)
			if err != nil {
				return err
			}
			id, c, err := getRef(s, args[0])
			if err != nil {
				return err
			}
			if q, ok := c.Meta[checkpoint.MetaQuant]; ok {
				return fmt.Errorf("%s is quantised already (%s)", args[0], q)
			}
			m, err := modelFrom(gptConfig(c), c, args[0])
			if err != nil {
				return err
			}
			ts, err := gradient.QuantizeModel(m, q)
			if err != nil {
				return err
			}
			out := &checkpoint.Checkpoint{Meta: maps.Clone(c.Meta)}
			out.Meta[checkpoint.MetaQuant] = quantMeta(q)
			var size int64
			for _, t := range ts {
				out.Tensors = append(out.Tensors, checkpoint.Tensor{Name: t.Name, Shape: t.Shape, Data: t.Data})
				size += 4 * int64(len(t.Data))
			}
			qid, err := putLabelled(s, out, label)
			if err != nil {
				return err
			}
			full := 4 * int64(gradient.NumParams(m))
			f.Logger().Info("quantised", zap.String("from", id.String()), zap.String("checkpoint", qid.String()), zap.String("quant", q.String()))
			fmt.Fprintf(f.Err, "weights: %s, %s (%s in fp32, %.2fx smaller)\n", q, bytesize.Format(float64(size)), bytesize.Format(float64(full)), float64(full)/float64(size))
			fmt.Fprintln(f.Out, qid)
			return nil
		},
	}
	cmd.Flags().StringVar(&quant, "quant", "int8", "int8 or int4")
	cmd.Flags().StringVar(&label, "label", "", "label to give the quantised checkpoint")
	return cmd
}

// gptConfig returns the gpt configuration a checkpoint's metadata names,
// or the zero configuration, which modelFrom refuses.
func gptConfig(c *checkpoint.Checkpoint) gradient.ModelConfig {
	cfg, _ := gptConfigOf(c)
	return cfg
}

// quantMeta is a quantisation as a checkpoint's metadata says it.
func quantMeta(q gradient.Quant) string {
	return q.String() + ":group=" + strconv.Itoa(q.Group)
}

// parseQuantMeta reads quantMeta's form back.
func parseQuantMeta(s string) (gradient.Quant, error) {
	var bits, group int
	if _, err := fmt.Sscanf(s, "int%d:group=%d", &bits, &group); err != nil || quantMeta(gradient.Quant{Bits: bits, Group: group}) != s {
		return gradient.Quant{}, fmt.Errorf("quant metadata %q: want int8:group=N or int4:group=N", s)
	}
	return gradient.Quant{Bits: bits, Group: group}, nil
}

// quantizedGenerator builds the generator of a quantised checkpoint.
func quantizedGenerator(c *checkpoint.Checkpoint, ref string) (*gradient.Generator, gradient.ModelConfig, error) {
	q, err := parseQuantMeta(c.Meta[checkpoint.MetaQuant])
	if err != nil {
		return nil, gradient.ModelConfig{}, fmt.Errorf("%s: %w", ref, err)
	}
	var cfg gradient.ModelConfig
	if err := json.Unmarshal([]byte(c.Meta[checkpoint.MetaConfig]), &cfg); err != nil {
		return nil, cfg, fmt.Errorf("%s records no model configuration: %v", ref, err)
	}
	gen, err := gradient.NewGeneratorFromQuantized(cfg, q, func(name string) ([]int, []float32, bool) {
		t, ok := c.Tensor(name)
		return t.Shape, t.Data, ok
	})
	if err != nil {
		return nil, cfg, fmt.Errorf("%s: %w", ref, err)
	}
	return gen, cfg, nil
}
