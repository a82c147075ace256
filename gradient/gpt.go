package gradient

import (
	"fmt"

	"github.com/shoal-network/shoal/tensor"
)

// gpt is GPT-2 (see the package doc for its layout).
type gpt struct {
	cfg      ModelConfig
	wte, wpe *tensor.Tensor
	blocks   []gptBlock
	lnfW     *tensor.Tensor
	lnfB     *tensor.Tensor
	list     []Param
	frozen   []Param // an adapter's base; nil without an adapter
	scale    float32 // an adapter's Alpha/Rank
}

type gptBlock struct {
	ln1W, ln1B, attnW, attnB, projW, projB *tensor.Tensor
	ln2W, ln2B, fcW, fcB, mlpW, mlpB       *tensor.Tensor

	// An adapter's matrices, nil where it has none.
	attnA, projA, fcA, mlpA *lora
}

const lnEps = 1e-5

func newGPT(c ModelConfig, ps *params) *gpt {
	d := c.Dim
	m := &gpt{cfg: c}
	ps.frozen = c.Adapter != nil
	m.wte = ps.normal("transformer.wte.weight", 0.02, c.Vocab, d)
	m.wpe = ps.normal("transformer.wpe.weight", 0.02, c.Ctx, d)
	projStd := float32(0.02) / tensor.Sqrt32(float32(2*c.Layers))
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("transformer.h.%d.", i)
		m.blocks = append(m.blocks, gptBlock{
			ln1W:  ps.constant(p+"ln_1.weight", 1, d),
			ln1B:  ps.constant(p+"ln_1.bias", 0, d),
			attnW: ps.normal(p+"attn.c_attn.weight", 0.02, d, 3*d),
			attnB: ps.constant(p+"attn.c_attn.bias", 0, 3*d),
			projW: ps.normal(p+"attn.c_proj.weight", projStd, d, d),
			projB: ps.constant(p+"attn.c_proj.bias", 0, d),
			ln2W:  ps.constant(p+"ln_2.weight", 1, d),
			ln2B:  ps.constant(p+"ln_2.bias", 0, d),
			fcW:   ps.normal(p+"mlp.c_fc.weight", 0.02, d, 4*d),
			fcB:   ps.constant(p+"mlp.c_fc.bias", 0, 4*d),
			mlpW:  ps.normal(p+"mlp.c_proj.weight", projStd, 4*d, d),
			mlpB:  ps.constant(p+"mlp.c_proj.bias", 0, d),
		})
	}
	m.lnfW = ps.constant("transformer.ln_f.weight", 1, d)
	m.lnfB = ps.constant("transformer.ln_f.bias", 0, d)
	if c.Adapter != nil {
		ps.frozen = false
		m.scale = c.Adapter.Scale()
		m.frozen = sortParams(ps.base)
		for i := range m.blocks {
			b, p := &m.blocks[i], fmt.Sprintf("transformer.h.%d.", i)
			b.attnA = newLoRA(c, ps, p, "attn.c_attn", d, 3*d)
			b.projA = newLoRA(c, ps, p, "attn.c_proj", d, d)
			b.fcA = newLoRA(c, ps, p, "mlp.c_fc", d, 4*d)
			b.mlpA = newLoRA(c, ps, p, "mlp.c_proj", 4*d, d)
		}
	}
	m.list = ps.sorted()
	return m
}

func (m *gpt) Config() ModelConfig { return m.cfg }
func (m *gpt) Params() []Param     { return m.list }

// adapted is a gpt with an adapter.
type adapted struct{ *gpt }

func (m adapted) Frozen() []Param { return m.frozen }

// logits computes the [batch*t, vocab] logits of a batch of input
// sequences, batch rows of t tokens with t at most ctx: Loss passes rows
// of ctx tokens, and Distill passes a teacher its student's rows, which may
// be shorter (attention is causal, so position i sees tokens 0..i whatever
// follows). It frees each value once read for the last time, so that on
// an inference tape the pass holds a few values at a time rather than
// every layer's, and a training pass does not keep the projections that
// only the residual sums read. The LayerNorm and GELU values that feed a
// projection are not kept either: the fused operations compute them again
// in the backward pass, with the same bits.
func (m *gpt) logits(tp *tensor.Tape, inputs []int32, batch int) *tensor.Tensor {
	c := m.cfg
	t, h := len(inputs)/batch, c.Heads
	if t < 1 || t > c.Ctx || len(inputs) != batch*t {
		panic("gradient: logits need batch rows of 1 to ctx tokens")
	}
	pos := tp.Int32s(batch * t)
	for i := range pos {
		pos[i] = int32(i % t)
	}
	te, pe := tp.Embedding(m.wte, inputs), tp.Embedding(m.wpe, pos)
	x := tp.Add(te, pe) // [B*T, D]
	tp.Free(te, pe)
	for _, b := range m.blocks {
		var qkv *tensor.Tensor // [B*T, 3D]
		if b.attnA == nil {
			qkv = tp.LayerNormLinear(x, b.ln1W, b.ln1B, lnEps, b.attnW, b.attnB)
		} else {
			// The adapter reads the normalised values too: computed once
			// and kept (the same bits as the fused operation).
			ln := tp.LayerNorm(x, b.ln1W, b.ln1B, lnEps)
			qkv = b.attnA.add(tp, tp.Linear(ln, b.attnW, b.attnB), ln, m.scale)
			tp.Free(ln)
		}
		y := tp.CausalSelfAttention(qkv, batch, h) // [B*T, D]
		tp.Free(qkv)
		p := tp.Linear(y, b.projW, b.projB)
		p = b.projA.add(tp, p, y, m.scale)
		tp.Free(y)
		x1 := tp.Add(x, p)
		tp.Free(x, p)
		var u *tensor.Tensor
		if b.fcA == nil {
			u = tp.LayerNormLinear(x1, b.ln2W, b.ln2B, lnEps, b.fcW, b.fcB)
		} else {
			ln := tp.LayerNorm(x1, b.ln2W, b.ln2B, lnEps)
			u = b.fcA.add(tp, tp.Linear(ln, b.fcW, b.fcB), ln, m.scale)
			tp.Free(ln)
		}
		var o *tensor.Tensor
		if b.mlpA == nil {
			o = tp.GELULinear(u, b.mlpW, b.mlpB) // GELU(u) is not kept
		} else {
			g := tp.GELU(u)
			o = b.mlpA.add(tp, tp.Linear(g, b.mlpW, b.mlpB), g, m.scale)
			tp.Free(g)
		}
		tp.Free(u)
		x = tp.Add(x1, o)
		tp.Free(x1, o)
	}
	xf := tp.LayerNorm(x, m.lnfW, m.lnfB, lnEps)
	tp.Free(x)
	out := tp.MatMul(xf, m.wte, true)
	tp.Free(xf)
	return out
}

func (m *gpt) Loss(tp *tensor.Tape, tokens []int32, batch int) *tensor.Tensor {
	t := m.cfg.Ctx
	checkTokens(tokens, batch, t)
	inputs, targets := tp.Int32s(batch*t), tp.Int32s(batch*t)
	splitTokens(inputs, targets, tokens, batch, t)
	logits := m.logits(tp, inputs, batch)
	loss := tp.CrossEntropy(logits, targets)
	tp.Free(logits)
	return loss
}
