package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// MetaPrefix starts the safetensors metadata keys that carry a
// checkpoint's metadata: key k is exported as MetaPrefix+k.
const MetaPrefix = "shoal."

// ExportSafetensors writes the model parameters of c, without its
// optimizer state, as a safetensors file that PyTorch and Hugging Face
// load: F32 tensors under their own names (shoal's models use Hugging
// Face's), metadata {"format": "pt"} and each metadata entry k of c as
// "shoal.k" (so the model configuration is "shoal.config").
func ExportSafetensors(w io.Writer, c *Checkpoint) error { return ExportSafetensorsWith(w, c, nil) }

// ExportSafetensorsWith is ExportSafetensors with extra metadata entries
// (for other readers, under their own keys), which may not start with
// MetaPrefix or be "format".
func ExportSafetensorsWith(w io.Writer, c *Checkpoint, extra map[string]string) error {
	meta := map[string]string{"format": "pt"}
	for k, v := range extra {
		if k == "format" || strings.HasPrefix(k, MetaPrefix) {
			return fmt.Errorf("export: metadata key %q is reserved", k)
		}
		meta[k] = v
	}
	for k, v := range c.Meta {
		meta[MetaPrefix+k] = v
	}
	return WriteSafetensors(w, c.Params(), meta)
}

// ImportSafetensors reads a safetensors file of size bytes (see
// ReadSafetensors) and makes a checkpoint of its tensors, which must be
// exactly those of want (see FromSafetensors).
func ImportSafetensors(r io.Reader, size int64, want []TensorSpec) (*Checkpoint, error) {
	ts, meta, err := ReadSafetensors(r, size)
	if err != nil {
		return nil, err
	}
	return FromSafetensors(ts, meta, want)
}

// maxProblems bounds the problems FromSafetensors reports at once.
const maxProblems = 8

// FromSafetensors makes a checkpoint of tensors and metadata read from a
// safetensors file. The tensors must be exactly those of want, with the
// same shapes, and hold finite values; each problem is a *FormatError that
// names the tensor (all of them, up to a bound, joined). The checkpoint's
// metadata is the file's "shoal.*" entries with the prefix removed; other
// entries ("format" among them) are dropped. It shares the tensors' data.
func FromSafetensors(ts []Tensor, meta map[string]string, want []TensorSpec) (*Checkpoint, error) {
	wanted := make(map[string][]int, len(want))
	for _, s := range want {
		if _, dup := wanted[s.Name]; dup {
			return nil, fmt.Errorf("import: expected tensor %q listed twice", s.Name)
		}
		wanted[s.Name] = s.Shape
	}
	var problems []error
	problem := func(field, format string, args ...any) {
		problems = append(problems, &FormatError{Format: "safetensors", Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	have := make(map[string]bool, len(ts))
	for _, t := range ts {
		if have[t.Name] {
			problem(t.Name, "duplicate tensor")
			continue
		}
		have[t.Name] = true
		shape, ok := wanted[t.Name]
		if !ok {
			problem(t.Name, "unexpected tensor: not one of the %d the model has", len(want))
			continue
		}
		if !slices.Equal(t.Shape, shape) {
			problem(t.Name+".shape", "%v, want %v", t.Shape, shape)
			continue
		}
		if i := slices.IndexFunc(t.Data, func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }); i >= 0 {
			problem(t.Name, "value %d is %v", i, t.Data[i])
		}
	}
	for _, s := range want {
		if !have[s.Name] {
			problem(s.Name, "missing (shape %v)", s.Shape)
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b error) int {
			return strings.Compare(a.(*FormatError).Field, b.(*FormatError).Field)
		})
		if n := len(problems); n > maxProblems {
			problems = append(problems[:maxProblems], fmt.Errorf("and %d more problems", n-maxProblems))
		}
		return nil, errors.Join(problems...)
	}
	c := &Checkpoint{Meta: map[string]string{}, Tensors: slices.Clone(ts)}
	for k, v := range meta {
		if name, ok := strings.CutPrefix(k, MetaPrefix); ok && name != "" {
			c.Meta[name] = v
		}
	}
	return c, nil
}
