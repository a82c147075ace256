package gradient

import (
	"fmt"
	"math"

	"github.com/shoal-network/shoal/tensor"
)

// AdamWConfig holds AdamW's hyper-parameters.
type AdamWConfig struct {
	Beta1       float32 `json:"beta1" yaml:"beta1"`
	Beta2       float32 `json:"beta2" yaml:"beta2"`
	Eps         float32 `json:"eps" yaml:"eps"`
	WeightDecay float32 `json:"weight_decay" yaml:"weight_decay"` // decoupled; applied to matrices only
	ClipNorm    float32 `json:"clip_norm" yaml:"clip_norm"`       // global gradient norm cap; 0 disables
}

// DefaultAdamW is the configuration used unless a round or flag says
// otherwise.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 1}
}

// Validate reports the first out-of-range hyper-parameter.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adamw: beta1 must be in [0, 1), got %g", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adamw: beta2 must be in [0, 1), got %g", c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("adamw: eps must be positive, got %g", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("adamw: weight_decay must be non-negative, got %g", c.WeightDecay)
	case !(c.ClipNorm >= 0):
		return fmt.Errorf("adamw: clip_norm must be non-negative, got %g", c.ClipNorm)
	}
	return nil
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter) and
// optional clipping of the global gradient norm. For every parameter
// element, at step t with learning rate lr:
//
//	m = β1·m + (1-β1)·g;   v = β2·v + (1-β2)·g²
//	p = p - lr·(m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + ε) - lr·λ·p   (λ only for matrices)
type AdamW struct {
	cfg      AdamWConfig
	m, v     [][]float32
	t        int
	b1t, b2t float64 // β1^t and β2^t, by repeated multiplication
}

// NewAdamW returns an optimizer with zero state for params.
func NewAdamW(params []Param, cfg AdamWConfig) *AdamW {
	o := &AdamW{cfg: cfg, b1t: 1, b2t: 1}
	for _, p := range params {
		o.m = append(o.m, make([]float32, p.Size()))
		o.v = append(o.v, make([]float32, p.Size()))
	}
	return o
}

// Steps returns the number of steps taken.
func (o *AdamW) Steps() int { return o.t }

// GradNorm returns the global L2 norm of the parameters' gradients: the
// square root of the float64 sum, in parameter order, of each parameter's
// tensor.Dot(g, g).
func GradNorm(params []Param) float32 {
	var s float64
	for _, p := range params {
		s += float64(tensor.Dot(p.Grad, p.Grad))
	}
	return float32(math.Sqrt(s))
}

// Step applies one update with learning rate lr using the parameters'
// gradients, after clipping them to the configured norm, and returns the
// gradient norm before clipping.
func (o *AdamW) Step(params []Param, lr float32) float32 {
	if len(params) != len(o.m) {
		panic("gradient: AdamW parameter count changed")
	}
	norm := GradNorm(params)
	gscale := float32(1)
	if o.cfg.ClipNorm > 0 && norm > o.cfg.ClipNorm {
		gscale = o.cfg.ClipNorm / norm
	}
	o.t++
	o.b1t *= float64(o.cfg.Beta1)
	o.b2t *= float64(o.cfg.Beta2)
	c1 := float32(1 - o.b1t)
	c2 := float32(1 - o.b2t)
	for i, p := range params {
		decay := float32(0)
		if p.Dims() >= 2 {
			decay = float32(lr * o.cfg.WeightDecay)
		}
		tensor.AdamWUpdate(p.Data, p.Grad, o.m[i], o.v[i], gscale, o.cfg.Beta1, o.cfg.Beta2, c1, c2, lr, decay, o.cfg.Eps)
	}
	return norm
}

// Nesterov is SGD with Nesterov momentum, the outer optimizer of DiLoCo.
// For every element, with gradient g (the pseudo-gradient when used as the
// outer optimizer):
//
//	b = μ·b + g;   p = p - lr·(g + μ·b)
type Nesterov struct {
	Momentum float32
	buf      [][]float32
}

// NewNesterov returns an optimizer with zero momentum for params.
func NewNesterov(params []Param, momentum float32) *Nesterov {
	o := &Nesterov{Momentum: momentum}
	for _, p := range params {
		o.buf = append(o.buf, make([]float32, p.Size()))
	}
	return o
}

// Momenta returns the momentum buffers, one per parameter, in order; they
// are the optimizer's whole state.
func (o *Nesterov) Momenta() [][]float32 { return o.buf }

// Step applies one update with learning rate lr from the parameters'
// gradients.
func (o *Nesterov) Step(params []Param, lr float32) {
	if len(params) != len(o.buf) {
		panic("gradient: Nesterov parameter count changed")
	}
	mu := o.Momentum
	for i, p := range params {
		b, w, g := o.buf[i], p.Data, p.Grad
		for j := range w {
			b[j] = float32(mu*b[j]) + g[j]
			w[j] -= float32(lr * (g[j] + float32(mu*b[j])))
		}
	}
}
