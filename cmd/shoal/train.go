package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
)

// trainOptions are the flags of `shoal train`.
type trainOptions struct {
	Model       string
	Data        string
	Steps       int
	Batch       int
	LR          float32
	Warmup      int
	MinLRFrac   float32
	WeightDecay float32
	Seed        uint64
	Out         string
	EvalEvery   int
	EvalBatches int
	JSON        bool
	Teacher     string
	Temperature float32
	Mix         float32
}

func newCmdTrain(f *factory, runF func(*trainOptions) error) *cobra.Command {
	o := &trainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model locally, on the built-in task or a text corpus",
		Long: `Train a model of the zoo on this machine alone.

--data builtin (the default) trains on a synthetic language whose best
possible loss is known exactly; the run reports how close it came, next to
what the best unigram and bigram models reach. --data PATH trains on a text
file or a directory of text files (binary files are skipped), byte by byte,
holding out the last 5% for evaluation.

--teacher FILE distils a larger model into the one trained: FILE is a gpt's
parameters as --out writes them, of the same vocabulary and a context at
least as long. The loss optimised is then --mix times the data's
cross-entropy plus (1 - --mix) times T² times the divergence of the
student's predictions from the teacher's, both softened by the temperature
T (--temperature); the training loss reported is that loss, and every
evaluation is still the student's held-out cross-entropy.

Progress goes to stderr (a progress bar on a terminal, log lines otherwise);
the result goes to stdout, as text or with --json as a JSON object.`,
		Example: `  shoal train --model gpt-tiny --steps 300
  shoal train --data ~/corpus --model gpt-mini --steps 2000 --out model.safetensors
  shoal train --model gpt-tiny --steps 300 --teacher mini.safetensors --temperature 2 --mix 0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Teacher == "" && (cmd.Flags().Changed("temperature") || cmd.Flags().Changed("mix")) {
				return errors.New("--temperature and --mix set a distillation: they need --teacher")
			}
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runTrain(cmd, f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Model, "model", "gpt-tiny", fmt.Sprintf("model of the zoo: %v", gradient.PresetNames()))
	fl.StringVar(&o.Data, "data", "builtin", "training data: builtin, or a text file or directory")
	fl.IntVar(&o.Steps, "steps", 300, "optimizer steps")
	fl.IntVar(&o.Batch, "batch", 16, "sequences per step")
	fl.Float32Var(&o.LR, "lr", 6e-3, "peak learning rate (AdamW)")
	fl.IntVar(&o.Warmup, "warmup", -1, "warm-up steps (default: 10% of --steps, at most 100)")
	fl.Float32Var(&o.MinLRFrac, "final-lr", 0.1, "final learning rate as a fraction of --lr (linear decay)")
	fl.Float32Var(&o.WeightDecay, "weight-decay", 0.1, "AdamW decoupled weight decay")
	fl.Uint64Var(&o.Seed, "seed", 1, "seed of the initialisation and of batch sampling")
	fl.StringVar(&o.Out, "out", "", "write the final parameters to this safetensors file")
	fl.IntVar(&o.EvalEvery, "eval-every", 0, "evaluate every N steps (default: 5 times per run)")
	fl.IntVar(&o.EvalBatches, "eval-batches", 16, "held-out batches per evaluation")
	fl.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	fl.StringVar(&o.Teacher, "teacher", "", "distil from this gpt: a safetensors file as --out writes it")
	fl.Float32Var(&o.Temperature, "temperature", 2, "distillation temperature: above 1 softens both models' predictions")
	fl.Float32Var(&o.Mix, "mix", 0.5, "weight of the data's cross-entropy in the distillation loss; the teacher's gets the rest (0: the teacher alone)")
	return cmd
}

func (o *trainOptions) validate() error {
	if _, err := gradient.Preset(o.Model); err != nil {
		return fmt.Errorf("--model: %v", err)
	}
	switch {
	case o.Steps < 1:
		return fmt.Errorf("--steps must be at least 1, got %d", o.Steps)
	case o.Batch < 1 || o.Batch > 4096:
		return fmt.Errorf("--batch must be in [1, 4096], got %d", o.Batch)
	case o.EvalBatches < 1:
		return fmt.Errorf("--eval-batches must be at least 1, got %d", o.EvalBatches)
	case o.EvalEvery < 0:
		return fmt.Errorf("--eval-every must not be negative, got %d", o.EvalEvery)
	case o.Data == "":
		return errors.New("--data must name builtin or a path")
	}
	if o.Warmup < 0 {
		o.Warmup = min(o.Steps/10, 100)
	}
	if o.EvalEvery == 0 {
		o.EvalEvery = max(o.Steps/5, 1)
	}
	s := gradient.Schedule{Peak: o.LR, Warmup: o.Warmup, Total: o.Steps, MinFrac: o.MinLRFrac}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("--lr/--warmup/--final-lr: %v", err)
	}
	adam := gradient.DefaultAdamW()
	adam.WeightDecay = o.WeightDecay
	if err := adam.Validate(); err != nil {
		return fmt.Errorf("--weight-decay: %v", err)
	}
	if o.Teacher != "" {
		if err := o.distillConfig().Validate(); err != nil {
			return fmt.Errorf("--temperature/--mix: %v", err)
		}
	}
	return nil
}

func (o *trainOptions) distillConfig() gradient.DistillConfig {
	return gradient.DistillConfig{Temperature: o.Temperature, Mix: o.Mix}
}

// trainResult is the output of a run (stable JSON with --json).
type trainResult struct {
	Model         string               `json:"model"`
	Params        int                  `json:"params"`
	Data          string               `json:"data"`
	Steps         int                  `json:"steps"`
	Batch         int                  `json:"batch"`
	Tokens        int64                `json:"tokens"`
	Seconds       float64              `json:"seconds"`
	TokensPerSec  float64              `json:"tokens_per_second"`
	InitialLoss   float64              `json:"initial_eval_loss"`
	EvalLoss      float64              `json:"eval_loss"`
	TrainLoss     float64              `json:"train_loss"`
	EntropyFloor  *float64             `json:"entropy_floor,omitempty"`
	UnigramLoss   *float64             `json:"unigram_loss,omitempty"`
	BigramLoss    *float64             `json:"bigram_loss,omitempty"`
	AboveFloorPct *float64             `json:"above_floor_percent,omitempty"`
	Evals         []evalPoint          `json:"evals"`
	Out           string               `json:"out,omitempty"`
	Config        gradient.ModelConfig `json:"config"`
	Distill       *distillInfo         `json:"distill,omitempty"`
}

// distillInfo describes the teacher of a run with --teacher.
type distillInfo struct {
	Teacher       string               `json:"teacher"`
	TeacherParams int                  `json:"teacher_params"`
	TeacherConfig gradient.ModelConfig `json:"teacher_config"`
	gradient.DistillConfig
}

type evalPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// trainData is a run's training and held-out text.
type trainData struct {
	name        string
	train, eval []byte
	task        *data.Task // nil for a corpus
}

func loadTrainData(spec string, log *zap.Logger) (*trainData, error) {
	if spec == "builtin" {
		t := data.Builtin()
		train, eval := t.Corpus(data.BuiltinTrainBytes, data.BuiltinEvalBytes)
		return &trainData{name: "builtin", train: train, eval: eval, task: t}, nil
	}
	c, err := data.LoadText(spec)
	if err != nil {
		return nil, err
	}
	if c.Skipped > 0 {
		log.Info("skipped binary files", zap.String("path", spec), zap.Int("count", c.Skipped))
	}
	train, eval := c.Split(0.05)
	log.Info("loaded corpus", zap.String("path", spec), zap.Int("files", c.Files), zap.Int("train_bytes", len(train)), zap.Int("eval_bytes", len(eval)))
	return &trainData{name: spec, train: train, eval: eval}, nil
}

func runTrain(cmd *cobra.Command, f *factory, o *trainOptions) error {
	log := f.Logger()
	cfg, _ := gradient.Preset(o.Model)
	cfg.Seed = o.Seed
	d, err := loadTrainData(o.Data, log)
	if err != nil {
		return err
	}
	if err := data.CheckSize(d.train, cfg.Ctx); err != nil {
		return fmt.Errorf("--data %s: training text: %v", o.Data, err)
	}
	if err := data.CheckSize(d.eval, cfg.Ctx); err != nil {
		return fmt.Errorf("--data %s: held-out text: %v", o.Data, err)
	}
	m, err := gradient.New(cfg)
	if err != nil {
		return err
	}
	res := &trainResult{Model: o.Model, Params: gradient.NumParams(m), Data: d.name, Steps: o.Steps, Batch: o.Batch, Config: cfg}
	// The trainer steps the student's parameters; with a teacher, through
	// a model whose loss is the distillation loss. Evaluations use m, the
	// student alone.
	trained := m
	if o.Teacher != "" {
		teacher, err := loadModelFile(o.Teacher, "")
		if err != nil {
			return fmt.Errorf("--teacher: %w", err)
		}
		if trained, err = gradient.Distill(m, teacher, o.distillConfig()); err != nil {
			return fmt.Errorf("--teacher %s: %w", o.Teacher, err)
		}
		res.Distill = &distillInfo{Teacher: o.Teacher, TeacherParams: gradient.NumParams(teacher), TeacherConfig: teacher.Config(), DistillConfig: o.distillConfig()}
		log.Info("distilling", zap.String("teacher", o.Teacher), zap.Int("teacher_params", res.Distill.TeacherParams),
			zap.Float32("temperature", o.Temperature), zap.Float32("mix", o.Mix))
	}
	adam := gradient.DefaultAdamW()
	adam.WeightDecay = o.WeightDecay
	tr := gradient.NewTrainer(trained, adam, gradient.Schedule{Peak: o.LR, Warmup: o.Warmup, Total: o.Steps, MinFrac: o.MinLRFrac})
	evalSet := data.EvalBatches(d.eval, o.Batch, cfg.Ctx, o.EvalBatches)
	if d.task != nil {
		h, u, b := d.task.EntropyRate(), d.task.UnigramLoss(), d.task.BigramLoss()
		res.EntropyFloor, res.UnigramLoss, res.BigramLoss = &h, &u, &b
	}
	log.Info("training", zap.String("model", o.Model), zap.Int("params", res.Params), zap.String("data", d.name),
		zap.Int("steps", o.Steps), zap.Int("batch", o.Batch), zap.Int("ctx", cfg.Ctx), zap.String("kernels", kernelPath()))
	res.InitialLoss = gradient.Evaluate(m, evalSet, o.Batch)
	res.Evals = append(res.Evals, evalPoint{0, res.InitialLoss})
	log.Info("eval", zap.Int("step", 0), zap.Float64("loss", res.InitialLoss), zap.Float64("ln_vocab", math.Log(float64(cfg.Vocab))))

	bar := newProgress(f.Err, f.terminal, o.Steps)
	tokens := make([]int32, o.Batch*(cfg.Ctx+1))
	tokPerStep := int64(o.Batch * cfg.Ctx)
	var trainTime time.Duration
	var lossSum float64
	var lossN int
	ctx := cmd.Context()
	for step := 0; step < o.Steps; step++ {
		if err := ctx.Err(); err != nil {
			bar.done()
			return fmt.Errorf("interrupted at step %d of %d", step, o.Steps)
		}
		data.Sample(tokens, d.train, o.Seed, 0, uint64(step), o.Batch, cfg.Ctx)
		t0 := time.Now()
		st := tr.Step(tokens, o.Batch)
		trainTime += time.Since(t0)
		if math.IsNaN(float64(st.Loss)) || math.IsInf(float64(st.Loss), 0) {
			bar.done()
			return fmt.Errorf("training diverged at step %d (loss %v); try a lower --lr", step, st.Loss)
		}
		res.Tokens += tokPerStep
		lossSum += float64(st.Loss)
		lossN++
		tps := float64(res.Tokens) / trainTime.Seconds()
		if !bar.update(step+1, st.Loss, tps) && ((step+1)%max(o.Steps/20, 1) == 0 || step == 0) {
			log.Info("step", zap.Int("step", step+1), zap.Float32("loss", st.Loss), zap.Float32("lr", st.LR),
				zap.Float32("grad_norm", st.GradNorm), zap.Int("tokens_per_sec", int(tps)))
		}
		if (step+1)%o.EvalEvery == 0 || step+1 == o.Steps {
			l := gradient.Evaluate(m, evalSet, o.Batch)
			res.Evals = append(res.Evals, evalPoint{step + 1, l})
			res.TrainLoss = lossSum / float64(lossN)
			lossSum, lossN = 0, 0
			bar.clear()
			log.Info("eval", zap.Int("step", step+1), zap.Float64("loss", l), zap.Float64("train_loss", res.TrainLoss))
		}
	}
	bar.done()
	res.Seconds = trainTime.Seconds()
	res.TokensPerSec = float64(res.Tokens) / res.Seconds
	res.EvalLoss = res.Evals[len(res.Evals)-1].Loss
	if res.EntropyFloor != nil {
		p := 100 * (res.EvalLoss/(*res.EntropyFloor) - 1)
		res.AboveFloorPct = &p
	}
	if o.Out != "" {
		if err := writeParams(o.Out, m, o); err != nil {
			return err
		}
		res.Out = o.Out
		log.Info("wrote parameters", zap.String("path", o.Out))
	}
	return printTrainResult(f, o, res)
}

func writeParams(path string, m gradient.Model, o *trainOptions) error {
	var ts []checkpoint.Tensor
	for _, p := range m.Params() {
		ts = append(ts, checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data})
	}
	cfg, _ := json.Marshal(m.Config())
	meta := map[string]string{"format": "pt", "shoal.model": o.Model, "shoal.config": string(cfg)}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return checkpoint.WriteFileAtomic(path, 0o644, func(w io.Writer) error {
		return checkpoint.WriteSafetensors(w, ts, meta)
	})
}

func printTrainResult(f *factory, o *trainOptions, r *trainResult) error {
	if o.JSON {
		e := json.NewEncoder(f.Out)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}
	w := f.Out
	fmt.Fprintf(w, "model %s (%d parameters), data %s: %d steps of %d tokens in %.1fs, %.0f tokens/s\n",
		r.Model, r.Params, r.Data, r.Steps, int(r.Tokens)/r.Steps, r.Seconds, r.TokensPerSec)
	if d := r.Distill; d != nil {
		fmt.Fprintf(w, "distilled from %s (%d parameters) at temperature %g, mix %g\n", d.Teacher, d.TeacherParams, d.Temperature, d.Mix)
	}
	fmt.Fprintf(w, "eval loss %.4f nats/token (from %.4f at step 0; ln vocab = %.4f)\n",
		r.EvalLoss, r.InitialLoss, math.Log(float64(r.Config.Vocab)))
	if r.EntropyFloor != nil {
		fmt.Fprintf(w, "built-in task: entropy floor %.4f, best unigram %.4f, best bigram %.4f nats/char; eval loss is %.1f%% above the floor\n",
			*r.EntropyFloor, *r.UnigramLoss, *r.BigramLoss, *r.AboveFloorPct)
	}
	return nil
}
