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
// not the whole context. Its arithmetic is the tensor kernels', so the
// same parameters and tokens give the same logits bit for bit on every
// machine (they may differ in the last bits from the batched forward pass
// of training, which orders its sums differently).
type Generator struct {
	m    *gpt
	k, v [][]float32 // per layer: ctx rows of d, the keys and values so far
	n    int         // positions in the cache

	x, a, qkv, y, f, h []float32
	mean, rstd         []float32
	scores             []float32
	logits             []float32
}

// NewGenerator returns a generator over m's parameters (shared, not
// copied), which must be a gpt.
func NewGenerator(m Model) (*Generator, error) {
	g, ok := m.(*gpt)
	if !ok {
		return nil, fmt.Errorf("generate: a %s has no autoregressive decoder; only gpt generates text", m.Config().Arch)
	}
	c := g.cfg
	d := c.Dim
	gen := &Generator{m: g, x: make([]float32, d), a: make([]float32, d), qkv: make([]float32, 3*d), y: make([]float32, d),
		f: make([]float32, 4*d), h: make([]float32, d), mean: make([]float32, 1), rstd: make([]float32, 1),
		scores: make([]float32, c.Ctx), logits: make([]float32, c.Vocab)}
	for range c.Layers {
		gen.k = append(gen.k, make([]float32, c.Ctx*d))
		gen.v = append(gen.v, make([]float32, c.Ctx*d))
	}
	return gen, nil
}

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
	c := g.m.cfg
	d, hd := c.Dim, c.Dim/c.Heads
	if g.n == c.Ctx {
		return nil, ErrContextFull
	}
	if tok < 0 || int(tok) >= c.Vocab {
		return nil, fmt.Errorf("generate: token %d is outside the vocabulary of %d", tok, c.Vocab)
	}
	pos := g.n
	wte, wpe := g.m.wte.Data, g.m.wpe.Data
	copy(g.x, wte[int(tok)*d:int(tok+1)*d])
	tensor.Accumulate(g.x, wpe[pos*d:(pos+1)*d])
	row := []int{1, d}
	scale := 1 / float32(math.Sqrt(float64(hd)))
	for l, b := range g.m.blocks {
		tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, b.ln1W.Data, b.ln1B.Data, d, lnEps)
		tensor.MatMulData(g.qkv, []int{1, 3 * d}, g.a, row, b.attnW.Data, b.attnW.Shape(), false, false, false)
		tensor.Accumulate(g.qkv, b.attnB.Data)
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
		tensor.MatMulData(g.h, row, g.y, row, b.projW.Data, b.projW.Shape(), false, false, false)
		tensor.Accumulate(g.h, b.projB.Data)
		tensor.Accumulate(g.x, g.h)
		tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, b.ln2W.Data, b.ln2B.Data, d, lnEps)
		tensor.MatMulData(g.f, []int{1, 4 * d}, g.a, row, b.fcW.Data, b.fcW.Shape(), false, false, false)
		tensor.Accumulate(g.f, b.fcB.Data)
		tensor.GELU(g.f, g.f)
		tensor.MatMulData(g.h, row, g.f, []int{1, 4 * d}, b.mlpW.Data, b.mlpW.Shape(), false, false, false)
		tensor.Accumulate(g.h, b.mlpB.Data)
		tensor.Accumulate(g.x, g.h)
	}
	tensor.LayerNorm(g.a, g.mean, g.rstd, g.x, g.m.lnfW.Data, g.m.lnfB.Data, d, lnEps)
	tensor.MatMulData(g.logits, []int{1, c.Vocab}, g.a, row, wte, g.m.wte.Shape(), false, true, false)
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
