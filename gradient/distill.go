package gradient

import (
	"fmt"

	"github.com/shoal-network/shoal/tensor"
)

// DistillConfig sets how a student learns from a teacher (knowledge
// distillation, Hinton et al. 2015).
type DistillConfig struct {
	// Temperature T divides both models' logits before the softmax: above
	// 1 it spreads the teacher's probability over more tokens, which is
	// what carries its knowledge of which wrong answers are nearly right.
	Temperature float32 `json:"temperature" yaml:"temperature"`
	// Mix weighs the data's cross-entropy against the teacher's: the loss
	// is Mix·CE(data) + (1-Mix)·T²·KL(teacher || student), so 0 is pure
	// distillation and 1 plain training.
	Mix float32 `json:"mix" yaml:"mix"`
}

// Validate reports a temperature outside (0, 100] or a mix outside [0, 1].
// The temperature's bound is generous (the usual values are 1 to 20): it
// catches a mistyped value rather than a meaningful one.
func (c DistillConfig) Validate() error {
	switch {
	case !(c.Temperature > 0) || c.Temperature > 100:
		return fmt.Errorf("distillation temperature must be in (0, 100], got %g", c.Temperature)
	case !(c.Mix >= 0 && c.Mix <= 1):
		return fmt.Errorf("distillation mix must be in [0, 1], got %g", c.Mix)
	}
	return nil
}

// logitModel is a model that gives the logits its loss is computed from:
// the gpt models of the zoo.
type logitModel interface {
	Model
	logits(tp *tensor.Tape, inputs []int32, batch int) *tensor.Tensor
}

// distilled is a student trained against a teacher (see Distill).
type distilled struct {
	student, teacher logitModel
	cfg              DistillConfig
	// tape is the teacher's inference tape, reset at every Loss: a step
	// reuses its buffers rather than allocating the teacher's activations.
	tape *tensor.Tape
}

// Distill returns a model whose parameters are the student's and whose
// Loss is the distillation loss
//
//	Mix·CE(data) + (1-Mix)·T²·KL(softmax(teacher/T) || softmax(student/T))
//
// averaged over the positions of the batch, T being cfg.Temperature: a
// Trainer given it trains the student against the teacher's predictions
// on the same tokens. The teacher runs forward only, on an inference tape
// the model keeps; its parameters get no gradient and are not changed.
// With Mix 1 the teacher is not run and the loss is the student's own,
// bit for bit; with Mix 0 the data's cross-entropy is not computed.
//
// Both must be gpt models with the same vocabulary; they may differ in
// width, depth and heads. The teacher's context must be at least the
// student's: it reads the student's rows, and its positions beyond them
// are not used. The returned model's Loss is not safe for concurrent use
// (the teacher's tape is shared), and the loss it gives is the one
// optimised; measure the student alone with its own Loss, as Evaluate
// does.
func Distill(student, teacher Model, cfg DistillConfig) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, ok := student.(logitModel)
	if !ok {
		return nil, fmt.Errorf("distillation: the student's architecture is %s; only gpt models can be distilled", student.Config().Arch)
	}
	t, ok := teacher.(logitModel)
	if !ok {
		return nil, fmt.Errorf("distillation: the teacher's architecture is %s; only gpt models can teach", teacher.Config().Arch)
	}
	sc, tc := s.Config(), t.Config()
	if tc.Vocab != sc.Vocab {
		return nil, fmt.Errorf("distillation: the teacher's vocabulary has %d tokens, the student's %d; they must be the same", tc.Vocab, sc.Vocab)
	}
	if tc.Ctx < sc.Ctx {
		return nil, fmt.Errorf("distillation: the teacher's context of %d tokens is shorter than the student's %d", tc.Ctx, sc.Ctx)
	}
	return &distilled{student: s, teacher: t, cfg: cfg, tape: tensor.NewInferenceTape()}, nil
}

func (d *distilled) Config() ModelConfig { return d.student.Config() }
func (d *distilled) Params() []Param     { return d.student.Params() }

func (d *distilled) Loss(tp *tensor.Tape, tokens []int32, batch int) *tensor.Tensor {
	mix := d.cfg.Mix
	if mix == 1 {
		return d.student.Loss(tp, tokens, batch)
	}
	t := d.student.Config().Ctx
	checkTokens(tokens, batch, t)
	inputs, targets := tp.Int32s(batch*t), tp.Int32s(batch*t)
	splitTokens(inputs, targets, tokens, batch, t)
	d.tape.Reset()
	teacher := d.teacher.logits(d.tape, inputs, batch)
	logits := d.student.logits(tp, inputs, batch)
	kl := tp.SoftTargetKL(logits, teacher, d.cfg.Temperature)
	if mix == 0 {
		tp.Free(logits)
		return kl
	}
	ce := tp.CrossEntropy(logits, targets)
	tp.Free(logits)
	return tp.Add(tp.Scale(ce, mix), tp.Scale(kl, 1-mix))
}
