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
}

func newCmdCheckpointExport(f *factory, co *checkpointOptions, runF func(*checkpointExportOptions) error) *cobra.Command {
	o := &checkpointExportOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "export CID|label --out FILE",
		Short: "Write a checkpoint's parameters to a safetensors file",
		Long: `Write the parameters of a checkpoint (not the optimizer state) to a
safetensors file that PyTorch and Hugging Face load: F32 tensors under
Hugging Face's GPT-2 names, metadata {"format": "pt"} and the checkpoint's
metadata as shoal.* entries (the model configuration is shoal.config).
--out - writes to stdout.`,
		Example: `  shoal checkpoint export head --out model.safetensors`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Ref = args[0]
			if o.Out == "" {
				return errors.New("--out is required")
			}
			if runF != nil {
				return runF(o)
			}
			return runCheckpointExport(f, o)
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "", "safetensors file to write (- for stdout)")
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
	if o.Out == "-" {
		return checkpoint.ExportSafetensors(f.Out, c)
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := checkpoint.WriteFileAtomic(o.Out, 0o644, func(w io.Writer) error { return checkpoint.ExportSafetensors(w, c) }); err != nil {
		return err
	}
	f.Logger().Info("exported", zap.String("checkpoint", id.String()), zap.String("path", o.Out), zap.Int("tensors", len(c.Params())))
	return nil
}

// ---- import

type checkpointImportOptions struct {
	*checkpointOptions
	File  string
	Label string
	Model string
}

func newCmdCheckpointImport(f *factory, co *checkpointOptions, runF func(*checkpointImportOptions) error) *cobra.Command {
	o := &checkpointImportOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "import FILE.safetensors",
		Short: "Store the parameters of a safetensors file as a new checkpoint",
		Long: `Read a safetensors file of F32 parameters, check that it holds exactly the
tensors of its model with the right shapes and finite values, store it as a
checkpoint (without optimizer state) and print its CID.

The model is the one named by --model, or else the one described by the
file's shoal.config metadata (which shoal train --out and shoal checkpoint
export write).`,
		Example: `  shoal checkpoint import model.safetensors --label base
  shoal checkpoint import hf-gpt2-tiny.safetensors --model gpt-tiny`,
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
	return gradient.ModelConfig{}, "", fmt.Errorf("%s: no shoal.config metadata says which model it holds: name one with --model", o.File)
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
