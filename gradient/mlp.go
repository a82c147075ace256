package gradient

import (
	"fmt"

	"github.com/shoal-network/shoal/tensor"
)

// mlp is a feed-forward language model: the embeddings of the last Window
// tokens, concatenated, pass through Layers hidden GELU layers of width
// Hidden to the logits.
type mlp struct {
	cfg    ModelConfig
	emb    *tensor.Tensor
	hidden []mlpLayer
	outW   *tensor.Tensor
	outB   *tensor.Tensor
	list   []Param
}

type mlpLayer struct{ w, b *tensor.Tensor }

// The token fed for positions before the start of a sequence.
const padToken = 0

func newMLP(c ModelConfig, ps *params) *mlp {
	m := &mlp{cfg: c}
	m.emb = ps.normal("embed.weight", 1, c.Vocab, c.Dim)
	in := c.Window * c.Dim
	for i := 0; i < c.Layers; i++ {
		std := 1 / tensor.Sqrt32(float32(in))
		m.hidden = append(m.hidden, mlpLayer{
			w: ps.normal(fmt.Sprintf("hidden.%d.weight", i), std, in, c.Hidden),
			b: ps.constant(fmt.Sprintf("hidden.%d.bias", i), 0, c.Hidden),
		})
		in = c.Hidden
	}
	m.outW = ps.normal("out.weight", 1/tensor.Sqrt32(float32(in)), in, c.Vocab)
	m.outB = ps.constant("out.bias", 0, c.Vocab)
	m.list = ps.sorted()
	return m
}

func (m *mlp) Config() ModelConfig { return m.cfg }
func (m *mlp) Params() []Param     { return m.list }

func (m *mlp) Loss(tp *tensor.Tape, tokens []int32, batch int) *tensor.Tensor {
	c := m.cfg
	t, w := c.Ctx, c.Window
	checkTokens(tokens, batch, t)
	ids, targets := tp.Int32s(batch*t*w), tp.Int32s(batch*t)
	for r := 0; r < batch; r++ {
		row := tokens[r*(t+1) : (r+1)*(t+1)]
		for p := 0; p < t; p++ {
			ctx := ids[(r*t+p)*w : (r*t+p+1)*w]
			for j := range ctx {
				// ctx[j] is the token at position p-w+1+j.
				if src := p - w + 1 + j; src >= 0 {
					ctx[j] = row[src]
				} else {
					ctx[j] = padToken
				}
			}
			targets[r*t+p] = row[p+1]
		}
	}
	x := tp.Reshape(tp.Embedding(m.emb, ids), batch*t, w*c.Dim)
	for _, l := range m.hidden {
		x = tp.GELU(tp.Add(tp.MatMul(x, l.w, false), l.b))
	}
	logits := tp.Add(tp.MatMul(x, m.outW, false), m.outB)
	return tp.CrossEntropy(logits, targets)
}
