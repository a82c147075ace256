package gradient

// The outer loop of DiLoCo: workers start from the agreed parameters θ,
// train H inner steps, and send the pseudo-gradient Δ = θ - θ_local; the
// aggregate of the Δs drives an outer optimizer (Nesterov momentum) on θ.

// Flatten appends the values of ps, in order, to dst[:0] and returns it.
func Flatten(dst []float32, ps []Param) []float32 {
	dst = dst[:0]
	for _, p := range ps {
		dst = append(dst, p.Data...)
	}
	return dst
}

// Unflatten copies a flat vector of all the values of ps back into them.
func Unflatten(ps []Param, src []float32) {
	n := 0
	for _, p := range ps {
		n += copy(p.Data, src[n:])
	}
	if n != len(src) {
		panic("gradient: Unflatten length mismatch")
	}
}

// PseudoGradient writes into dst (resized) the pseudo-gradient
// base - current, where base holds the flattened parameters the inner steps
// started from.
func PseudoGradient(dst, base []float32, current []Param) []float32 {
	dst = dst[:0]
	off := 0
	for _, p := range current {
		for i, v := range p.Data {
			dst = append(dst, base[off+i]-v)
		}
		off += len(p.Data)
	}
	if off != len(base) {
		panic("gradient: PseudoGradient length mismatch")
	}
	return dst
}

// Outer is the outer optimizer of DiLoCo: Nesterov momentum whose gradient
// is the aggregated pseudo-gradient. Its momentum buffers are the state a
// checkpoint must hold besides the parameters.
type Outer struct {
	LR  float32
	opt *Nesterov
}

// NewOuter returns an outer optimizer for params.
func NewOuter(params []Param, lr, momentum float32) *Outer {
	return &Outer{LR: lr, opt: NewNesterov(params, momentum)}
}

// Momenta returns the momentum buffers, one per parameter.
func (o *Outer) Momenta() [][]float32 { return o.opt.Momenta() }

// Restore sets the momentum buffers to a copy of momenta (one per
// parameter, in order, each of its parameter's size), as a checkpoint
// holds them, so that a step resumes where the last one left off.
func (o *Outer) Restore(momenta [][]float32) {
	buf := o.opt.Momenta()
	if len(momenta) != len(buf) {
		panic("gradient: Outer.Restore parameter count mismatch")
	}
	for i, m := range momenta {
		if len(m) != len(buf[i]) {
			panic("gradient: Outer.Restore size mismatch")
		}
		copy(buf[i], m)
	}
}

// Step applies the aggregated pseudo-gradient delta (flat, in parameter
// order) to params. It overwrites the parameters' gradients.
func (o *Outer) Step(params []Param, delta []float32) {
	n := 0
	for _, p := range params {
		n += copy(p.Grad, delta[n:])
	}
	if n != len(delta) {
		panic("gradient: Outer.Step length mismatch")
	}
	o.opt.Step(params, o.LR)
}

// CopyParams copies the values of src into dst (same model configuration).
func CopyParams(dst, src []Param) {
	if len(dst) != len(src) {
		panic("gradient: CopyParams parameter count mismatch")
	}
	for i := range dst {
		if copy(dst[i].Data, src[i].Data) != len(src[i].Data) || len(dst[i].Data) != len(src[i].Data) {
			panic("gradient: CopyParams size mismatch")
		}
	}
}
