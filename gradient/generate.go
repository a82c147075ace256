package gradient

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/shoal-network/shoal/tensor"
)

// Generator runs a gpt one token at a time with a cache of every layer's
// keys and values, so that each new token costs one position of compute,
// not the whole context. Its arithmetic is the tensor kernels' (or, with
// quantised weights, the pure-Go kernels of quant.go), so the same
// parameters and tokens give the same logits bit for bit on every machine
// (they may differ in the last bits from the batched forward pass of
// training, which orders its sums differently).
type Generator struct {
	cfg    ModelConfig
	quant  Quant
	layers []genLayer
	wte    linear // the logits' matrix; its rows are the token embeddings
	wpe    []float32
	lnfW   []float32
	lnfB   []float32
	k, v   [][]float32 // per layer: ctx rows of d, the keys and values so far
	n      int         // positions in the cache

	x, a, qkv, y, f, h []float32
	mean, rstd         []float32
	scores             []float32
	logits             []float32
}

// genLayer is what a block of the gpt needs to generate: its weight
// matrices (dense or quantised) and its vectors.
type genLayer struct {
	attn, proj, fc, mlp                             linear
	ln1W, ln1B, attnB, projB, ln2W, ln2B, fcB, mlpB []float32
}

// linear is a weight matrix as the generator uses it: dst = x·W, and
// (for the token embedding) one row of W.
type linear interface {
	apply(dst, x []float32)
	row(dst []float32, r int)
	bytes() int64
}

// dense is a float32 matrix, multiplied with the tensor kernels: W is
// in×out, or out×in with trans (the token embedding).
type dense struct {
	w              []float32
	shape          []int
	trans          bool
	dstShape, xShp []int
}

func newDense(t *tensor.Tensor, trans bool) *dense {
	sh := t.Shape()
	in, out := sh[0], sh[1]
	if trans {
		in, out = out, in
	}
	return &dense{w: t.Data, shape: sh, trans: trans, dstShape: []int{1, out}, xShp: []int{1, in}}
}

func (l *dense) apply(dst, x []float32) {
	tensor.MatMulData(dst, l.dstShape, x, l.xShp, l.w, l.shape, false, l.trans, false)
}

func (l *dense) row(dst []float32, r int) { copy(dst, l.w[r*len(dst):(r+1)*len(dst)]) }

func (l *dense) bytes() int64 { return 4 * int64(len(l.w)) }

// loraLinear is a matrix with its adapter: x·W + s·(x·A)·B, in the order
// of the adapter's training (the product scaled, then added). The adapter's
// matrices stay float32 when W is quantised.
type loraLinear struct {
	base  linear
	a, b  *dense
	s     float32
	xa, d []float32
}

// withLoRA returns l with the adapter a, or l if a is nil.
func withLoRA(l linear, a *lora, s float32) linear {
	if a == nil {
		return l
	}
	return &loraLinear{base: l, a: newDense(a.a, false), b: newDense(a.b, false), s: s,
		xa: make([]float32, a.a.Shape()[1]), d: make([]float32, a.b.Shape()[1])}
}

func (l *loraLinear) apply(dst, x []float32) {
	l.base.apply(dst, x)
	l.a.apply(l.xa, x)
	l.b.apply(l.d, l.xa)
	for i, v := range l.d {
		dst[i] += float32(l.s * v) // rounded before the add: never fused
	}
}

func (l *loraLinear) row(dst []float32, r int) { l.base.row(dst, r) }

func (l *loraLinear) bytes() int64 { return l.base.bytes() + l.a.bytes() + l.b.bytes() }

// quantLinear is a quantised matrix: the rows of q are W's columns (its
// outputs), or W's rows with trans.
type quantLinear struct{ q *qmatrix }

func newQuantLinear(t *tensor.Tensor, trans bool, q Quant) *quantLinear {
	sh, w := t.Shape(), t.Data
	if trans { // W is out×in already: rows are outputs
		return &quantLinear{quantize(sh[0], sh[1], func(r, k int) float32 { return w[r*sh[1]+k] }, q)}
	}
	return &quantLinear{quantize(sh[1], sh[0], func(r, k int) float32 { return w[k*sh[1]+r] }, q)}
}

func (l *quantLinear) apply(dst, x []float32)   { l.q.mulVec(dst, x) }
func (l *quantLinear) row(dst []float32, r int) { l.q.row(dst, r) }
func (l *quantLinear) bytes() int64             { return l.q.bytes() }

// NewGenerator returns a generator over m's parameters (shared, not
// copied), which must be a gpt.
func NewGenerator(m Model) (*Generator, error) { return NewQuantGenerator(m, Quant{}) }

// NewQuantGenerator returns a generator over m's parameters with its
// weight matrices (the blocks' four and the token embedding, which the
// logits share) quantised as q says (none for q.Bits 0: NewGenerator).
// A quantised generator holds its own copy of the matrices and none of
// m's: once m is dropped, their float32 memory can go.
func NewQuantGenerator(m Model, q Quant) (*Generator, error) {
	g, ok := m.(*gpt)
	if a, isA := m.(adapted); isA {
		g, ok = a.gpt, true
	}
	if !ok {
		return nil, fmt.Errorf("generate: a %s has no autoregressive decoder; only gpt generates text", m.Config().Arch)
	}
	if q.Bits != 0 && q.Bits != 8 && q.Bits != 4 {
		return nil, fmt.Errorf("generate: %d-bit weights: want 8 or 4", q.Bits)
	}
	return newGenerator(g, q, func(t *tensor.Tensor, trans bool) (linear, error) {
		if q.Bits == 0 {
			return newDense(t, trans), nil
		}
		return newQuantLinear(t, trans, q), nil
	})
}

// newGenerator returns a generator of g whose weight matrices lin makes.
func newGenerator(g *gpt, q Quant, lin func(t *tensor.Tensor, trans bool) (linear, error)) (*Generator, error) {
	c := g.cfg
	d := c.Dim
	wte, err := lin(g.wte, true)
	if err != nil {
		return nil, err
	}
	gen := &Generator{cfg: c, quant: q, wte: wte, wpe: g.wpe.Data, lnfW: g.lnfW.Data, lnfB: g.lnfB.Data,
		x: make([]float32, d), a: make([]float32, d), qkv: make([]float32, 3*d), y: make([]float32, d),
		f: make([]float32, 4*d), h: make([]float32, d), mean: make([]float32, 1), rstd: make([]float32, 1),
		scores: make([]float32, c.Ctx), logits: make([]float32, c.Vocab)}
	for _, b := range g.blocks {
		var ls [4]linear
		for i, w := range []*tensor.Tensor{b.attnW, b.projW, b.fcW, b.mlpW} {
			if ls[i], err = lin(w, false); err != nil {
				return nil, err
			}
		}
		gen.layers = append(gen.layers, genLayer{attn: withLoRA(ls[0], b.attnA, g.scale), proj: withLoRA(ls[1], b.projA, g.scale),
			fc: withLoRA(ls[2], b.fcA, g.scale), mlp: withLoRA(ls[3], b.mlpA, g.scale),
			ln1W: b.ln1W.Data, ln1B: b.ln1B.Data, attnB: b.attnB.Data, projB: b.projB.Data,
			ln2W: b.ln2W.Data, ln2B: b.ln2B.Data, fcB: b.fcB.Data, mlpB: b.mlpB.Data})
		gen.k = append(gen.k, make([]float32, c.Ctx*d))
		gen.v = append(gen.v, make([]float32, c.Ctx*d))
	}
	return gen, nil
}

// WeightBytes returns the memory of the parameters the generator reads:
// its weight matrices as held (quantised or not) and the float32 vectors.
func (g *Generator) WeightBytes() int64 {
	n := g.wte.bytes() + 4*int64(len(g.wpe)+len(g.lnfW)+len(g.lnfB))
	for _, l := range g.layers {
		n += l.attn.bytes() + l.proj.bytes() + l.fc.bytes() + l.mlp.bytes()
		n += 4 * int64(len(l.ln1W)+len(l.ln1B)+len(l.attnB)+len(l.projB)+len(l.ln2W)+len(l.ln2B)+len(l.fcB)+len(l.mlpB))
	}
	return n
}

// Quant returns the generator's quantisation.
func (g *Generator) Quant() Quant { return g.quant }

// Len returns the number of positions in the cache.
func (g *Generator) Len() int { return g.n }

// Reset empties the cache.
func (g *Generator) Reset() { g.n = 0 }

// ErrContextFull is returned by Next when the cache holds the model's
// whole context.
var ErrContextFull = errors.New("generate: the context is full")

// Next feeds token tok at the next position and returns the logits of the
// token after it (a buffer the next call overwrites).
func (g *Generator) Next(tok int32) ([]float32, error) {
	c := g.cfg
	d, hd := c.Dim, c.Dim/c.Heads
	if g.n == c.Ctx {
		return nil, ErrContextFull
	}
	if tok < 0 || int(tok) >= c.Vocab {
		return nil, fmt.Errorf("generate: token %d is outside the vocabulary of %d", tok, c.Vocab)
	}
	pos := g.n
	g.wte.row(g.x, int(tok))
	tensor.Accumulate(g.x, g.wpe[pos*d:(pos+1)*d])
	scale := 1 / float32(math.Sqrt(float64(hd)))
	for l, b := range g.layers {
		tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, b.ln1W, b.ln1B, d, lnEps)
		b.attn.apply(g.qkv, g.a)
		tensor.Accumulate(g.qkv, b.attnB)
		copy(g.k[l][pos*d:], g.qkv[d:2*d])
		copy(g.v[l][pos*d:], g.qkv[2*d:])
		clear(g.y)
		s := g.scores[:pos+1]
		for h := range c.Heads {
			q := g.qkv[h*hd : (h+1)*hd]
			for j := range s {
				s[j] = tensor.Dot(q, g.k[l][j*d+h*hd:j*d+(h+1)*hd]) * scale
			}
			tensor.Softmax(s, s, 1, len(s), 1)
			yh := g.y[h*hd : (h+1)*hd]
			for j, p := range s {
				tensor.AddScaled(yh, g.v[l][j*d+h*hd:j*d+(h+1)*hd], p)
			}
		}
		b.proj.apply(g.h, g.y)
		tensor.Accumulate(g.h, b.projB)
		tensor.Accumulate(g.x, g.h)
		tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, b.ln2W, b.ln2B, d, lnEps)
		b.fc.apply(g.f, g.a)
		tensor.Accumulate(g.f, b.fcB)
		tensor.GELU(g.f, g.f)
		b.mlp.apply(g.h, g.f)
		tensor.Accumulate(g.h, b.mlpB)
		tensor.Accumulate(g.x, g.h)
	}
	tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, g.lnfW, g.lnfB, d, lnEps)
	g.wte.apply(g.logits, g.a)
	g.n++
	return g.logits, nil
}

// Sampler picks the next token from logits: greedily at temperature 0,
// else from the softmax of logits/temperature restricted to the TopK most
// likely tokens (0: all) and to the smallest set of them whose
// probability reaches TopP (0 or 1: all). Its random numbers come from a
// seeded PCG and its arithmetic is deterministic, so the same seed picks
// the same tokens on every machine.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64
	rng         *rand.Rand
	probs       []float32
	order       []int32
}

// NewSampler returns a sampler with the given settings and seed.
func NewSampler(temperature float64, topK int, topP float64, seed uint64) (*Sampler, error) {
	switch {
	case !(temperature >= 0) || math.IsInf(temperature, 1):
		return nil, fmt.Errorf("temperature %g: want a finite number >= 0", temperature)
	case topK < 0:
		return nil, fmt.Errorf("top-k %d: want >= 0", topK)
	case !(topP >= 0 && topP <= 1):
		return nil, fmt.Errorf("top-p %g: want a number in [0, 1]", topP)
	}
	return &Sampler{Temperature: temperature, TopK: topK, TopP: topP, rng: rand.New(rand.NewPCG(seed, 0x5eed))}, nil
}

// Sample returns the next token.
func (s *Sampler) Sample(logits []float32) int32 {
	if s.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best)
	}
	n := len(logits)
	if cap(s.probs) < n {
		s.probs, s.order = make([]float32, n), make([]int32, n)
	}
	p, order := s.probs[:n], s.order[:n]
	inv := float32(1 / s.Temperature)
	for i, v := range logits {
		p[i] = v * inv
	}
	tensor.Softmax(p, p, 1, n, 1)
	for i := range order {
		order[i] = int32(i)
	}
	// Most likely first; ties by token ID, so the order is total.
	slices.SortFunc(order, func(a, b int32) int {
		if p[a] != p[b] {
			if p[a] > p[b] {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	keep := n
	if s.TopK > 0 {
		keep = min(keep, s.TopK)
	}
	var total float64
	for i := range keep {
		total += float64(p[order[i]])
		if s.TopP > 0 && s.TopP < 1 && total >= s.TopP {
			keep = i + 1
			break
		}
	}
	u := s.rng.Float64() * total
	var acc float64
	for _, id := range order[:keep] {
		acc += float64(p[id])
		if u < acc {
			return id
		}
	}
	return order[keep-1]
}

// Loss returns the mean negative log-likelihood, in nats per token, of
// each token of seq after the ones before it (from the start of an empty
// cache, at most the model's context). The cache is reset before and
// after.
func (g *Generator) Loss(seq []int32) (float64, error) {
	if len(seq) < 2 {
		return 0, errors.New("generate: a loss needs at least two tokens")
	}
	if len(seq) > g.cfg.Ctx+1 {
		seq = seq[:g.cfg.Ctx+1]
	}
	g.Reset()
	defer g.Reset()
	var sum float64
	for i, tok := range seq[:len(seq)-1] {
		logits, err := g.Next(tok)
		if err != nil {
			return 0, err
		}
		mx := float64(slices.Max(logits))
		var z float64
		for _, v := range logits {
			z += math.Exp(float64(v) - mx)
		}
		sum += mx + math.Log(z) - float64(logits[seq[i+1]])
	}
	return sum / float64(len(seq)-1), nil
}
