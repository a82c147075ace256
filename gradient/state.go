package gradient

// The inner optimizer's state, for tracing a unit's training step by step
// and resuming it from any inner step.

// Moments returns AdamW's first and second moments, one slice per
// parameter, in order. They are the optimizer's own: a caller that keeps
// them must copy them.
func (o *AdamW) Moments() (m, v [][]float32) { return o.m, o.v }

// Restore sets AdamW's state to that after t steps with moments m and v
// (copied). β1^t and β2^t are recomputed by the same repeated
// multiplication that t steps would have done, so a restored optimizer
// continues bit for bit as the original would have.
func (o *AdamW) Restore(m, v [][]float32, t int) {
	if len(m) != len(o.m) || len(v) != len(o.v) {
		panic("gradient: AdamW restore of another parameter count")
	}
	for i := range o.m {
		if len(m[i]) != len(o.m[i]) || len(v[i]) != len(o.v[i]) {
			panic("gradient: AdamW restore of another parameter size")
		}
		copy(o.m[i], m[i])
		copy(o.v[i], v[i])
	}
	o.t, o.b1t, o.b2t = t, 1, 1
	for range t {
		o.b1t *= float64(o.cfg.Beta1)
		o.b2t *= float64(o.cfg.Beta2)
	}
}

// Optimizer returns the trainer's AdamW.
func (t *Trainer) Optimizer() *AdamW { return t.opt }
