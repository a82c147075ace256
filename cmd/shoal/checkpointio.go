package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// shoal checkpoint export and import: safetensors in and out of a store.

// ---- export

type checkpointExportOptions struct {
	*checkpointOptions
	Ref string
	Out string
	HF  string
}

func newCmdCheckpointExport(f *factory, co *checkpointOptions, runF func(*checkpointExportOptions) error) *cobra.Command {
	o := &checkpointExportOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "export CID|label --out FILE",
		Short: "Write a checkpoint's parameters to a safetensors file",
		Long: `Write the parameters of a checkpoint (not the optimizer state) to a
safetensors file that PyTorch and Hugging Face load: F32 tensors under
Hugging Face's GPT-2 names, metadata {"format": "pt"}, the checkpoint's
metadata as shoal.* entries (the model configuration is shoal.config) and,
for a gpt, the shape as other readers name it (n_head, n_layer, n_embd,
vocab_size, n_ctx). --out - writes to stdout.

--hf DIR writes a directory that Hugging Face's from_pretrained loads as a
GPT2LMHeadModel: DIR/model.safetensors and DIR/config.json.`,
		Example: `  shoal checkpoint export head --out model.safetensors
  shoal checkpoint export head --hf ./gpt2-shoal`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Ref = args[0]
			if (o.Out == "") == (o.HF == "") {
				return errors.New("give one of --out FILE and --hf DIR")
			}
			if runF != nil {
				return runF(o)
			}
			return runCheckpointExport(f, o)
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "", "safetensors file to write (- for stdout)")
	cmd.Flags().StringVar(&o.HF, "hf", "", "directory to write as Hugging Face lays out a GPT-2 (model.safetensors and config.json)")
	return cmd
}

func runCheckpointExport(f *factory, o *checkpointExportOptions) error {
	s, err := o.open(false)
	if err != nil {
		return err
	}
	id, err := s.Resolve(o.Ref)
	if err != nil {
		return err
	}
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	if q, ok := c.Meta[checkpoint.MetaQuant]; ok {
		return fmt.Errorf("%s is quantised for inference (%s): its matrices are codes that only shoal generate reads; export the float32 model it was made from", o.Ref, q)
	}
	var extra map[string]string
	cfg, isGPT := gptConfigOf(c)
	if isGPT {
		extra = hfMeta(cfg)
	}
	write := func(w io.Writer) error { return checkpoint.ExportSafetensorsWith(w, c, extra) }
	if o.Out == "-" {
		return write(f.Out)
	}
	if o.HF != "" {
		if !isGPT {
			return fmt.Errorf("checkpoint %s does not hold a gpt of a known configuration: --hf writes GPT-2 layouts only", id)
		}
		o.Out = filepath.Join(o.HF, "model.safetensors")
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := checkpoint.WriteFileAtomic(o.Out, 0o644, write); err != nil {
		return err
	}
	if o.HF != "" {
		js, err := json.MarshalIndent(hfConfigOf(cfg), "", "  ")
		if err != nil {
			return err
		}
		err = checkpoint.WriteFileAtomic(filepath.Join(o.HF, "config.json"), 0o644, func(w io.Writer) error {
			_, err := w.Write(append(js, '\n'))
			return err
		})
		if err != nil {
			return err
		}
	}
	f.Logger().Info("exported", zap.String("checkpoint", id.String()), zap.String("path", o.Out), zap.Int("tensors", len(c.Params())))
	return nil
}

// ---- import

type checkpointImportOptions struct {
	*checkpointOptions
	File   string
	Label  string
	Model  string
	Config string
}

func newCmdCheckpointImport(f *factory, co *checkpointOptions, runF func(*checkpointImportOptions) error) *cobra.Command {
	o := &checkpointImportOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "import FILE.safetensors",
		Short: "Store the parameters of a safetensors file as a new checkpoint",
		Long: `Read a safetensors file of parameters (F32, F16 or BF16, widened to F32
exactly), check that it holds exactly the tensors of its model with the
right shapes and finite values, store it as a checkpoint (without optimizer
state) and print its CID.

Files laid out as Hugging Face writes a GPT-2 are accepted: tensor names with
or without the "transformer." prefix, the attn.bias and attn.masked_bias
buffers (ignored), and lm_head.weight, which must equal the token embedding
(shoal ties them) and is dropped.

The model is the one named by --model; else the one described by the file's
shoal.config metadata (which shoal train --out and shoal checkpoint export
write); else by a Hugging Face config.json (--config, or the one beside the
file); else by the file's n_head, n_layer, n_embd, vocab_size and n_ctx
metadata.`,
		Example: `  shoal checkpoint import model.safetensors --label base
  shoal checkpoint import hf-gpt2-tiny.safetensors --model gpt-tiny
  shoal checkpoint import gpt2/model.safetensors   # reads gpt2/config.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.File = args[0]
			if o.Model != "" {
				if _, err := gradient.Preset(o.Model); err != nil {
					return fmt.Errorf("--model: %v", err)
				}
			}
			if o.Label != "" {
				if err := checkpoint.ValidLabel(o.Label); err != nil {
					return fmt.Errorf("--label: %v", err)
				}
			}
			if runF != nil {
				return runF(o)
			}
			return runCheckpointImport(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Label, "label", "", "label to give the new checkpoint")
	fl.StringVar(&o.Model, "model", "", fmt.Sprintf("model of the zoo the file holds (default: from its metadata): %v", gradient.PresetNames()))
	fl.StringVar(&o.Config, "config", "", "a Hugging Face config.json describing the model (default: the one beside the file, if any)")
	return cmd
}

// importConfig returns the configuration of the model a file holds, and
// the name of its preset if known.
func importConfig(o *checkpointImportOptions, meta map[string]string) (gradient.ModelConfig, string, error) {
	if o.Model != "" {
		cfg, err := gradient.Preset(o.Model)
		return cfg, o.Model, err
	}
	name := meta[checkpoint.MetaPrefix+checkpoint.MetaModel]
	if js, ok := meta[checkpoint.MetaPrefix+checkpoint.MetaConfig]; ok {
		var cfg gradient.ModelConfig
		d := json.NewDecoder(strings.NewReader(js))
		d.DisallowUnknownFields()
		if err := d.Decode(&cfg); err != nil {
			return cfg, "", fmt.Errorf("%s: metadata shoal.config: %v", o.File, err)
		}
		if err := cfg.Validate(); err != nil {
			return cfg, "", fmt.Errorf("%s: metadata shoal.config: %v", o.File, err)
		}
		return cfg, name, nil
	}
	if name != "" {
		cfg, err := gradient.Preset(name)
		if err != nil {
			return cfg, "", fmt.Errorf("%s: metadata shoal.model: %v", o.File, err)
		}
		return cfg, name, nil
	}
	if o.Config != "" {
		cfg, err := readHFConfig(o.Config)
		return cfg, "", err
	}
	if p, ok := hfConfigBeside(o.File); ok {
		cfg, err := readHFConfig(p)
		return cfg, "", err
	}
	if cfg, ok, err := hfConfigFromMeta(meta, o.File); ok || err != nil {
		return cfg, "", err
	}
	return gradient.ModelConfig{}, "", fmt.Errorf("%s: nothing says which model it holds (no shoal.config or n_head... metadata, no config.json beside it): name one with --model or --config", o.File)
}

func runCheckpointImport(f *factory, o *checkpointImportOptions) error {
	file, err := os.Open(o.File)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	ts, meta, err := checkpoint.ReadSafetensors(file, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", o.File, err)
	}
	if ts, err = hfTensors(ts); err != nil {
		return fmt.Errorf("%s: %w", o.File, err)
	}
	cfg, name, err := importConfig(o, meta)
	if err != nil {
		return err
	}
	// The model is never built: its tensors follow from the configuration
	// and are checked against the header's list (and so against the file's
	// size) before anything of the model's size is allocated.
	want, n := modelTensors(cfg)
	c, err := checkpoint.FromSafetensors(ts, meta, want)
	if err != nil {
		var have int64
		for _, t := range ts {
			have += 4 * int64(len(t.Data))
		}
		if have < 4*n {
			err = errors.Join(fmt.Errorf("it has %d parameters (%d bytes of F32 data) but the file (%d bytes) holds only %d bytes of tensor data in %d tensors",
				n, 4*n, st.Size(), have, len(ts)), err)
		}
		return fmt.Errorf("%s does not hold the parameters of %s: %w", o.File, describeModel(cfg, name), err)
	}
	js, _ := json.Marshal(cfg)
	c.Meta[checkpoint.MetaConfig] = string(js)
	delete(c.Meta, checkpoint.MetaModel)
	if name != "" {
		c.Meta[checkpoint.MetaModel] = name
	}
	s, err := o.open(true)
	if err != nil {
		return err
	}
	id, err := s.Put(c)
	if err != nil {
		return err
	}
	if o.Label != "" {
		if err := s.SetLabel(o.Label, id); err != nil {
			return err
		}
	}
	f.Logger().Info("imported", zap.String("path", o.File), zap.String("checkpoint", id.String()), zap.Int("tensors", len(c.Tensors)))
	fmt.Fprintln(f.Out, id)
	return nil
}

func describeModel(cfg gradient.ModelConfig, name string) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("a %s of vocab %d, width %d, %d layers", cfg.Arch, cfg.Vocab, cfg.Dim, cfg.Layers)
}

// modelTensors lists the parameter tensors of the model a valid
// configuration describes (gradient.Shapes), in sorted name order, and
// their number of scalars, without allocating the model. An invalid
// configuration has none.
func modelTensors(cfg gradient.ModelConfig) ([]checkpoint.TensorSpec, int64) {
	shapes, err := gradient.Shapes(cfg)
	if err != nil {
		return nil, 0
	}
	ts := make([]checkpoint.TensorSpec, len(shapes))
	var n int64
	for i, p := range shapes {
		size := int64(1)
		for _, d := range p.Shape {
			size *= int64(d)
		}
		n += size
		ts[i] = checkpoint.TensorSpec{Name: p.Name, Shape: p.Shape}
	}
	return ts, n
}
