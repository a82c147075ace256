package gradient

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/shoal-network/shoal/tensor"
)

// AdapterConfig describes a low-rank adapter (LoRA, Hu et al. 2021) on a
// gpt: each targeted weight matrix W [in, out] of every block is used as
// W + (Alpha/Rank)·A·B, with A [in, Rank] and B [Rank, out] the only
// parameters trained; W and every other weight of the base are frozen.
// B starts at zero, so an adapter fresh from its seed computes exactly
// what its base computes.
type AdapterConfig struct {
	Rank    int      `json:"rank" yaml:"rank"`
	Alpha   float32  `json:"alpha" yaml:"alpha"`
	Targets []string `json:"targets" yaml:"targets"` // sorted; see AdapterTargets
	// Base is the CID of the checkpoint that holds the frozen base
	// weights, when the adapter belongs to one (a round's adapter does).
	Base string `json:"base,omitempty" yaml:"base,omitempty"`
}

// AdapterTargets lists, in sorted order, the weight matrices of a gpt
// block an adapter may target.
var AdapterTargets = []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}

// DefaultAdapterTargets are the matrices an adapter targets when a spec
// names none: the attention's, as in the LoRA paper.
var DefaultAdapterTargets = []string{"attn.c_attn", "attn.c_proj"}

// MaxAdapterRank bounds an adapter's rank.
const MaxAdapterRank = 1024

// Scale is the factor of the adapter's product, Alpha/Rank.
func (a *AdapterConfig) Scale() float32 { return a.Alpha / float32(a.Rank) }

// Validate reports the first problem with the adapter of a model of
// configuration c.
func (a *AdapterConfig) Validate(c ModelConfig) error {
	if c.Arch != "gpt" {
		return fmt.Errorf("adapter: only a gpt takes an adapter, not %q", c.Arch)
	}
	if a.Rank < 1 || a.Rank > MaxAdapterRank || a.Rank > c.Dim {
		return fmt.Errorf("adapter: rank must be in [1, %d] (and at most the model's dim), got %d", min(MaxAdapterRank, c.Dim), a.Rank)
	}
	if !(a.Alpha > 0) || math.IsInf(float64(a.Alpha), 0) || a.Alpha > 1e4 {
		return fmt.Errorf("adapter: alpha must be in (0, 10000], got %g", a.Alpha)
	}
	if len(a.Targets) == 0 {
		return fmt.Errorf("adapter: no targets (known: %s)", strings.Join(AdapterTargets, ", "))
	}
	for i, t := range a.Targets {
		if !slices.Contains(AdapterTargets, t) {
			return fmt.Errorf("adapter: unknown target %q (known: %s)", t, strings.Join(AdapterTargets, ", "))
		}
		if i > 0 && a.Targets[i-1] >= t {
			return fmt.Errorf("adapter: targets must be sorted and distinct, got %v", a.Targets)
		}
	}
	return nil
}

// BaseConfig returns the configuration of the model an adapter configuration
// adapts: c without its adapter.
func (c ModelConfig) BaseConfig() ModelConfig {
	c.Adapter = nil
	return c
}

// Adapted is a model with an adapter: its Params are the adapter's, and
// Frozen lists the base's weights, which training reads but never changes
// and which a caller loads from the base checkpoint.
type Adapted interface {
	Model
	// Frozen returns the base's parameters in sorted name order: the same
	// names and shapes as the Params of the base model.
	Frozen() []Param
}

// lora is one targeted matrix's adapter.
type lora struct {
	a, b *tensor.Tensor
}

// newLoRA adds the adapter of the matrix named p+target, of shape [in,
// out], if the configuration targets it.
func newLoRA(c ModelConfig, ps *params, p, target string, in, out int) *lora {
	ad := c.Adapter
	if ad == nil || !slices.Contains(ad.Targets, target) {
		return nil
	}
	return &lora{
		a: ps.normal(p+target+".lora_a", 1/tensor.Sqrt32(float32(in)), in, ad.Rank),
		b: ps.constant(p+target+".lora_b", 0, ad.Rank, out),
	}
}

// add returns out + s·(x·A)·B, for out = x·W + bias computed by the base.
func (l *lora) add(tp *tensor.Tape, out, x *tensor.Tensor, s float32) *tensor.Tensor {
	if l == nil {
		return out
	}
	xa := tp.MatMul(x, l.a, false)
	xab := tp.MatMul(xa, l.b, false)
	tp.Free(xa)
	d := tp.Scale(xab, s)
	tp.Free(xab)
	sum := tp.Add(out, d)
	tp.Free(out, d)
	return sum
}
