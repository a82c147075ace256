package gradient

import (
	"fmt"

	"github.com/shoal-network/shoal/tensor"
)

// Schedule is the learning-rate schedule: a linear warm-up from 0 to Peak
// over Warmup steps, then a linear decay to Peak·MinFrac at step Total
// (and MinFrac·Peak after it). Linear pieces keep the rate a function of
// basic arithmetic alone, identical on every machine.
type Schedule struct {
	Peak    float32
	Warmup  int
	Total   int
	MinFrac float32
}

// LR returns the learning rate of step s (counted from 0).
func (s Schedule) LR(step int) float32 {
	if step < s.Warmup {
		return float32(s.Peak*float32(step+1)) / float32(s.Warmup)
	}
	if s.Total <= s.Warmup || step >= s.Total {
		if step >= s.Total && s.Total > s.Warmup {
			return float32(s.Peak * s.MinFrac)
		}
		return s.Peak
	}
	frac := float32(step-s.Warmup) / float32(s.Total-s.Warmup)
	return float32(s.Peak * (1 - float32((1-s.MinFrac)*frac)))
}

// Validate reports a schedule that cannot be followed.
func (s Schedule) Validate() error {
	switch {
	case !(s.Peak > 0) || s.Peak > 10:
		return fmt.Errorf("learning rate must be in (0, 10], got %g", s.Peak)
	case s.Warmup < 0:
		return fmt.Errorf("warm-up steps must be non-negative, got %d", s.Warmup)
	case !(s.MinFrac >= 0 && s.MinFrac <= 1):
		return fmt.Errorf("final learning-rate fraction must be in [0, 1], got %g", s.MinFrac)
	}
	return nil
}

// Trainer runs the inner training loop of one worker: forward, backward
// and an AdamW step per batch. It reuses its tape, so steps after the first
// allocate no tensor memory.
type Trainer struct {
	model Model
	opt   *AdamW
	sched Schedule
	tape  *tensor.Tape
	step  int
}

// NewTrainer returns a trainer for m.
func NewTrainer(m Model, opt AdamWConfig, sched Schedule) *Trainer {
	return &Trainer{model: m, opt: NewAdamW(m.Params(), opt), sched: sched, tape: tensor.NewTape()}
}

// StepStats describes one training step.
type StepStats struct {
	Step     int     // index of the step, from 0
	Loss     float32 // mean training loss of the batch
	GradNorm float32 // global gradient norm before clipping
	LR       float32 // learning rate used
}

// Step trains on one batch (batch rows of ctx+1 tokens).
func (t *Trainer) Step(tokens []int32, batch int) StepStats {
	ps := t.model.Params()
	ZeroGrads(t.model)
	t.tape.Reset()
	loss := t.model.Loss(t.tape, tokens, batch)
	t.tape.Backward(loss)
	lr := t.sched.LR(t.step)
	norm := t.opt.Step(ps, lr)
	st := StepStats{Step: t.step, Loss: loss.Item(), GradNorm: norm, LR: lr}
	t.step++
	return st
}

// Steps returns the number of steps taken.
func (t *Trainer) Steps() int { return t.step }

// SetStep sets the index of the next step, which is where it reads the
// schedule: a work unit that starts at inner step s of a round resumes the
// schedule there.
func (t *Trainer) SetStep(step int) { t.step = step }

// Evaluate returns the mean loss of m over the batches (each of batch rows
// of ctx+1 tokens), averaged in float64 in batch order.
func Evaluate(m Model, batches [][]int32, batch int) float64 {
	if len(batches) == 0 {
		return 0
	}
	tp := tensor.NewInferenceTape()
	var s float64
	for _, b := range batches {
		tp.Reset()
		s += float64(m.Loss(tp, b, batch).Item())
	}
	return s / float64(len(batches))
}
