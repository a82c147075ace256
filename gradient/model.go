package gradient

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/shoal-network/shoal/tensor"
)

// ModelConfig names an architecture of the zoo and its sizes.
type ModelConfig struct {
	Arch   string `json:"arch" yaml:"arch"`     // "gpt" or "mlp"
	Vocab  int    `json:"vocab" yaml:"vocab"`   // number of token IDs
	Ctx    int    `json:"ctx" yaml:"ctx"`       // sequence length
	Dim    int    `json:"dim" yaml:"dim"`       // embedding width
	Layers int    `json:"layers" yaml:"layers"` // gpt: blocks; mlp: hidden layers
	Heads  int    `json:"heads,omitempty" yaml:"heads,omitempty"`
	Hidden int    `json:"hidden,omitempty" yaml:"hidden,omitempty"` // mlp: hidden width
	Window int    `json:"window,omitempty" yaml:"window,omitempty"` // mlp: tokens of context seen
	Seed   uint64 `json:"seed" yaml:"seed"`                         // initialisation seed
	// Adapter, when set, makes the model a low-rank adapter of the
	// model the rest of the configuration describes (gpt only).
	Adapter *AdapterConfig `json:"adapter,omitempty" yaml:"adapter,omitempty"`
}

// Presets are the named configurations of the zoo.
//
// gpt-100m is GPT-2 small's shape (d 768, 12 heads, context 1024, MLP
// hidden 4d) at byte level, with the fewest layers that reach 10⁸
// parameters: a block holds 12d²+13d = 7,087,872, the embeddings and the
// final LayerNorm (256+1024)·d + 2d = 984,576, so 14 blocks make
// 100,214,784 parameters. Trained with AdamW it needs 16 bytes per
// parameter (values, gradients, two moments) before activations.
//
// gpt2-124m is GPT-2 small exactly: its vocabulary of 50,257 BPE tokens
// (see gradient/tokenizer), d 768, 12 blocks of 12 heads, context 1024,
// 124,439,808 parameters with the output tied to the token embedding. It
// takes the weights of the published model (shoal checkpoint import).
var presets = map[string]ModelConfig{
	"gpt2-124m": {Arch: "gpt", Vocab: 50257, Ctx: 1024, Dim: 768, Layers: 12, Heads: 12},
	"gpt-tiny":  {Arch: "gpt", Vocab: 256, Ctx: 64, Dim: 128, Layers: 2, Heads: 4},
	"gpt-mini":  {Arch: "gpt", Vocab: 256, Ctx: 128, Dim: 192, Layers: 4, Heads: 6},
	"gpt-small": {Arch: "gpt", Vocab: 256, Ctx: 256, Dim: 384, Layers: 6, Heads: 6},
	"gpt-100m":  {Arch: "gpt", Vocab: 256, Ctx: 1024, Dim: 768, Layers: 14, Heads: 12},
	"mlp":       {Arch: "mlp", Vocab: 256, Ctx: 64, Dim: 32, Layers: 1, Hidden: 256, Window: 8},
	"mlp-large": {Arch: "mlp", Vocab: 256, Ctx: 64, Dim: 64, Layers: 2, Hidden: 512, Window: 16},
}

// Preset returns the named configuration of the zoo.
func Preset(name string) (ModelConfig, error) {
	c, ok := presets[name]
	if !ok {
		return ModelConfig{}, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return c, nil
}

// PresetNames lists the zoo's configurations in sorted order.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate reports the first problem with the configuration.
func (c ModelConfig) Validate() error {
	pos := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("model: %s must be positive, got %d", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		n string
		v int
	}{{"vocab", c.Vocab}, {"ctx", c.Ctx}, {"dim", c.Dim}, {"layers", c.Layers}} {
		if err := pos(f.n, f.v); err != nil {
			return err
		}
	}
	switch c.Arch {
	case "gpt":
		if err := pos("heads", c.Heads); err != nil {
			return err
		}
		if c.Dim%c.Heads != 0 {
			return fmt.Errorf("model: dim %d is not a multiple of heads %d", c.Dim, c.Heads)
		}
	case "mlp":
		if err := pos("hidden", c.Hidden); err != nil {
			return err
		}
		if err := pos("window", c.Window); err != nil {
			return err
		}
	default:
		return fmt.Errorf("model: unknown arch %q (known: gpt, mlp)", c.Arch)
	}
	if c.Adapter != nil {
		if err := c.Adapter.Validate(c); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	if c.Vocab > 1<<24 || c.Ctx > 1<<16 || c.Dim > 1<<16 || c.Layers > 1024 || c.Hidden > 1<<20 || c.Window > c.Ctx {
		return fmt.Errorf("model: sizes out of range")
	}
	return nil
}

// Param is a named parameter tensor.
type Param struct {
	Name string
	*tensor.Tensor
}

// Model is a language model of the zoo: it maps a batch of token sequences
// to the mean next-token cross-entropy.
type Model interface {
	// Config returns the configuration the model was built from.
	Config() ModelConfig
	// Params returns the parameters in sorted name order.
	Params() []Param
	// Loss computes, on tp, the mean cross-entropy of predicting
	// tokens[r*(ctx+1)+t+1] from tokens[r*(ctx+1) .. r*(ctx+1)+t] for every
	// row r < batch and position t < ctx. len(tokens) must be
	// batch*(ctx+1).
	Loss(tp *tensor.Tape, tokens []int32, batch int) *tensor.Tensor
}

// New builds the model a configuration describes, initialised from its seed.
func New(c ModelConfig) (Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ps := &params{seed: c.Seed}
	if c.Arch == "gpt" {
		m := newGPT(c, ps)
		if c.Adapter != nil {
			return adapted{m}, nil
		}
		return m, nil
	}
	return newMLP(c, ps), nil
}

// ParamShape is a parameter's name and shape.
type ParamShape struct {
	Name  string
	Shape []int
}

// Shapes lists, in sorted name order, the parameters of the model a
// configuration describes (an adapter's alone, for a configuration with
// one), without allocating them: the sizes come from
// the configuration alone, so a file's or a spec's claims can be checked
// before memory of the model's size is spent. The layout is New's own.
func Shapes(c ModelConfig) ([]ParamShape, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ps := &params{dry: true}
	if c.Arch == "gpt" {
		newGPT(c, ps)
	} else {
		newMLP(c, ps)
	}
	slices.SortFunc(ps.shapes, func(a, b ParamShape) int { return strings.Compare(a.Name, b.Name) })
	return ps.shapes, nil
}

// params is a set of named parameters under construction. A dry set
// records their names and shapes only. While frozen is set, the parameters
// made are an adapter's base: they take no gradients and go to base, not
// list (a dry set does not record them).
type params struct {
	seed   uint64
	list   []Param
	dry    bool
	shapes []ParamShape
	frozen bool
	base   []Param
	noInit bool // leave the values zero: they are about to be loaded
}

// tensor returns a zero tensor for a parameter: one without gradients
// while frozen.
func (ps *params) tensor(shape []int) *tensor.Tensor {
	if ps.frozen {
		return tensor.New(shape...)
	}
	return tensor.NewParam(shape...)
}

// add records a parameter made.
func (ps *params) add(name string, t *tensor.Tensor) {
	if ps.frozen {
		ps.base = append(ps.base, Param{name, t})
		return
	}
	ps.list = append(ps.list, Param{name, t})
}

// normal adds a parameter initialised N(0, std) from its own stream.
func (ps *params) normal(name string, std float32, shape ...int) *tensor.Tensor {
	if ps.dry {
		if !ps.frozen {
			ps.shapes = append(ps.shapes, ParamShape{name, shape})
		}
		return nil
	}
	t := ps.tensor(shape)
	if !ps.noInit {
		r := newRNG(streamSeed(ps.seed, name))
		for i := range t.Data {
			t.Data[i] = float32(std * r.normal())
		}
	}
	ps.add(name, t)
	return t
}

// constant adds a parameter filled with v.
func (ps *params) constant(name string, v float32, shape ...int) *tensor.Tensor {
	if ps.dry {
		if !ps.frozen {
			ps.shapes = append(ps.shapes, ParamShape{name, shape})
		}
		return nil
	}
	t := ps.tensor(shape)
	for i := range t.Data {
		t.Data[i] = v
	}
	ps.add(name, t)
	return t
}

func (ps *params) sorted() []Param { return sortParams(ps.list) }

func sortParams(list []Param) []Param {
	out := slices.Clone(list)
	slices.SortFunc(out, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NumParams returns the number of scalar parameters of m.
func NumParams(m Model) int {
	n := 0
	for _, p := range m.Params() {
		n += p.Size()
	}
	return n
}

// CountParams returns the number of scalar parameters of the model a
// configuration describes, from Shapes: nothing of the model's size is
// allocated.
func CountParams(c ModelConfig) (int, error) {
	shapes, err := Shapes(c)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range shapes {
		k := 1
		for _, d := range s.Shape {
			k *= d
		}
		n += k
	}
	return n, nil
}

// ZeroGrads clears the gradients of every parameter of m.
func ZeroGrads(m Model) {
	for _, p := range m.Params() {
		p.ZeroGrad()
	}
}

// checkTokens panics unless tokens holds batch rows of ctx+1 tokens.
func checkTokens(tokens []int32, batch, ctx int) {
	if batch <= 0 || len(tokens) != batch*(ctx+1) {
		panic("gradient: tokens must hold batch rows of ctx+1 tokens")
	}
}

// splitTokens fills inputs and targets (batch*ctx each) from rows of ctx+1
// tokens.
func splitTokens(inputs, targets, tokens []int32, batch, ctx int) {
	for r := 0; r < batch; r++ {
		row := tokens[r*(ctx+1) : (r+1)*(ctx+1)]
		copy(inputs[r*ctx:(r+1)*ctx], row[:ctx])
		copy(targets[r*ctx:(r+1)*ctx], row[1:])
	}
}
