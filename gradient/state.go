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

// Restart makes the trainer start afresh, as NewTrainer would with the
// same model, optimizer configuration and schedule: AdamW's moments and
// step count are zeroed and the next step is step 0. It keeps their memory
// and the tape's buffers, so a worker that trains unit after unit
// allocates them once rather than for every unit.
func (t *Trainer) Restart() {
	for i := range t.opt.m {
		clear(t.opt.m[i])
		clear(t.opt.v[i])
	}
	t.opt.t, t.opt.b1t, t.opt.b2t = 0, 1, 1
	t.step = 0
}
