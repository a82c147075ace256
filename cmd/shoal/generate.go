package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/tokenizer"
	"github.com/shoal-network/shoal/internal/bytesize"
)

type generateOptions struct {
	checkpointOptions
	Ref           string
	Prompt        string
	HasPrompt     bool
	Tokens        int
	Temperature   float64
	TopK          int
	TopP          float64
	Seed          uint64
	Vocab, Merges string
	Config        string
	Quant         string
	Eval          int
}

func newCmdGenerate(f *factory) *cobra.Command {
	o := &generateOptions{}
	cmd := &cobra.Command{
		Use:   "generate CHECKPOINT",
		Short: "Sample text from a checkpoint",
		Long: `Sample text from a gpt checkpoint: CHECKPOINT is a label or CID in the
checkpoint store (--store, as for shoal checkpoint), or a safetensors file
(as shoal checkpoint import reads it, Hugging Face's GPT-2 layout included).

The prompt comes from --prompt, else from stdin when it is not a terminal.
Each new token costs one position (a cache keeps every layer's keys and
values). Sampling: --temperature 0 takes the most likely token; otherwise
the softmax of the logits over the temperature, kept to the --top-k most
likely tokens and to the smallest set of them whose probability reaches
--top-p. The same checkpoint, prompt, settings and --seed give the same
text, bit for bit, on every machine. When the context fills up, the last
half of it is kept and generation goes on. Speed goes to stderr.

Models of the zoo are byte-level; a model with GPT-2's vocabulary needs
--vocab encoder.json --merges vocab.bpe.`,
		Example: `  shoal generate head --prompt "The " --tokens 200
  shoal generate model.safetensors --temperature 0 --prompt "Once upon a time"
  echo "func main() {" | shoal generate go-lora --top-p 0.9 --seed 7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			o.HasPrompt = cmd.Flags().Changed("prompt")
			if o.Tokens < 1 {
				return fmt.Errorf("--tokens %d: want at least 1", o.Tokens)
			}
			if (o.Vocab == "") != (o.Merges == "") {
				return errors.New("--vocab and --merges go together")
			}
			if _, err := gradient.ParseQuant(o.Quant); err != nil {
				return fmt.Errorf("--quant: %v", err)
			}
			if o.Eval < 0 || o.Eval > maxEvalSequences {
				return fmt.Errorf("--eval %d: want a number of sequences, at most %d", o.Eval, maxEvalSequences)
			}
			return runGenerate(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Store, "store", "", "checkpoint store (default $SHOAL_HOME/checkpoints or ~/.shoal/checkpoints)")
	fl.StringVar(&o.Prompt, "prompt", "", "text to continue (default: stdin if it is not a terminal, else a newline)")
	fl.IntVarP(&o.Tokens, "tokens", "n", 200, "tokens to generate")
	fl.Float64Var(&o.Temperature, "temperature", 0.8, "sampling temperature; 0 is greedy")
	fl.IntVar(&o.TopK, "top-k", 40, "sample among the k most likely tokens (0: all)")
	fl.Float64Var(&o.TopP, "top-p", 0.95, "sample among the most likely tokens whose probability reaches p (1: all)")
	fl.Uint64Var(&o.Seed, "seed", 1, "seed of the sampler")
	fl.StringVar(&o.Vocab, "vocab", "", "GPT-2's encoder.json, for a model with its vocabulary")
	fl.StringVar(&o.Merges, "merges", "", "GPT-2's vocab.bpe")
	fl.StringVar(&o.Config, "config", "", "a Hugging Face config.json, for a safetensors file that does not say its model")
	fl.StringVar(&o.Quant, "quant", "fp32", "weights to generate with: fp32, or quantised int8 or int4 (per groups of 64, deterministic kernels)")
	fl.IntVar(&o.Eval, "eval", 0, "instead of generating, measure the held-out loss of a byte model on this many sequences of the built-in task's held-out text")
	return cmd
}

// loadGenerator builds the generator of the gpt that a store's
// checkpoint or a safetensors file holds, its weights quantised as --quant
// says, or as a quantised checkpoint holds them.
func loadGenerator(f *factory, o *generateOptions) (*gradient.Generator, gradient.ModelConfig, error) {
	var m gradient.Model
	if st, err := os.Stat(o.Ref); err == nil && st.Mode().IsRegular() {
		if m, err = loadModelFile(o.Ref, o.Config); err != nil {
			return nil, gradient.ModelConfig{}, err
		}
	} else {
		s, err := o.open(false)
		if err != nil {
			return nil, gradient.ModelConfig{}, fmt.Errorf("%s is no file, and %w", o.Ref, err)
		}
		id, err := s.Resolve(o.Ref)
		if err != nil {
			return nil, gradient.ModelConfig{}, err
		}
		c, err := s.Get(id)
		if err != nil {
			return nil, gradient.ModelConfig{}, err
		}
		if qm, ok := c.Meta[checkpoint.MetaQuant]; ok {
			if o.Quant != "" && o.Quant != "fp32" && !strings.HasPrefix(qm, o.Quant+":") {
				return nil, gradient.ModelConfig{}, fmt.Errorf("--quant %s: %s is quantised already (%s)", o.Quant, o.Ref, qm)
			}
			gen, cfg, err := quantizedGenerator(c, o.Ref)
			if err == nil {
				fmt.Fprintf(f.Err, "weights: %s, %s (a quantised checkpoint)\n", gen.Quant(), bytesize.Format(float64(gen.WeightBytes())))
			}
			return gen, cfg, err
		}
		cfg, ok := gptConfigOf(c)
		if !ok {
			return nil, gradient.ModelConfig{}, fmt.Errorf("checkpoint %s does not record a gpt's configuration", id)
		}
		if m, err = modelFrom(cfg, c, o.Ref); err != nil {
			return nil, gradient.ModelConfig{}, err
		}
	}
	cfg := m.Config()
	q, _ := gradient.ParseQuant(o.Quant)
	gen, err := gradient.NewQuantGenerator(m, q)
	if err != nil {
		return nil, cfg, err
	}
	if q.Bits != 0 {
		// The generator holds its own quantised matrices: the float32
		// ones can go.
		full := int64(4 * gradient.NumParams(m))
		m = nil
		debug.FreeOSMemory() // collects, then returns what it can
		fmt.Fprintf(f.Err, "weights: %s, %s (%s in fp32)\n", q, bytesize.Format(float64(gen.WeightBytes())), bytesize.Format(float64(full)))
	}
	return gen, cfg, nil
}

// loadModelFile builds the model a safetensors file holds (as shoal
// checkpoint import reads it: shoal train's --out, or Hugging Face's GPT-2
// layout), its configuration from the file's metadata or from config, a
// Hugging Face config.json, when that is not empty.
func loadModelFile(path, config string) (gradient.Model, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, err
	}
	ts, meta, err := checkpoint.ReadSafetensors(file, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ts, err = hfTensors(ts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, _, err := importConfig(&checkpointImportOptions{File: path, Config: config}, meta)
	if err != nil {
		return nil, err
	}
	want, _ := modelTensors(cfg)
	c, err := checkpoint.FromSafetensors(ts, meta, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return modelFrom(cfg, c, path)
}

// modelFrom builds the model of cfg with the parameters of c, which ref
// names in errors.
func modelFrom(cfg gradient.ModelConfig, c *checkpoint.Checkpoint, ref string) (gradient.Model, error) {
	if a := cfg.Adapter; a != nil {
		return nil, fmt.Errorf("%s is a low-rank adapter of base %s, not a whole model: fold it into its base first (shoal checkpoint merge-adapter %s %s)",
			ref, cmp.Or(a.Base, "(not named)"), cmp.Or(a.Base, "BASE"), ref)
	}
	m, err := gradient.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Params() {
		t, ok := c.Tensor(p.Name)
		if !ok || len(t.Data) != len(p.Data) {
			return nil, fmt.Errorf("%s: parameter %s missing or of another size", ref, p.Name)
		}
		copy(p.Data, t.Data)
	}
	return m, nil
}

func runGenerate(f *factory, o *generateOptions) error {
	gen, cfg, err := loadGenerator(f, o)
	if err != nil {
		return err
	}
	var tk textCodec = byteCodec{}
	if o.Vocab != "" {
		ef, err := os.Open(o.Vocab)
		if err != nil {
			return fmt.Errorf("--vocab: %w", err)
		}
		defer ef.Close()
		mf, err := os.Open(o.Merges)
		if err != nil {
			return fmt.Errorf("--merges: %w", err)
		}
		defer mf.Close()
		bpe, err := tokenizer.Load(ef, mf)
		if err != nil {
			return err
		}
		if bpe.VocabSize() > cfg.Vocab {
			return fmt.Errorf("the tokenizer has %d tokens, the model's vocabulary %d", bpe.VocabSize(), cfg.Vocab)
		}
		tk = bpe
	} else if cfg.Vocab != 256 {
		return fmt.Errorf("the model's vocabulary has %d tokens, not 256 bytes: give its tokenizer (--vocab, --merges)", cfg.Vocab)
	}
	prompt := []byte(o.Prompt)
	if !o.HasPrompt {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			if prompt, err = io.ReadAll(io.LimitReader(os.Stdin, 16<<20)); err != nil {
				return err
			}
		}
		if len(prompt) == 0 {
			prompt = []byte("\n")
		}
	}
	ids := tk.Encode(prompt)
	if len(ids) == 0 {
		return errors.New("the prompt makes no tokens")
	}
	sampler, err := gradient.NewSampler(o.Temperature, o.TopK, o.TopP, o.Seed)
	if err != nil {
		return err
	}
	if o.Eval > 0 {
		return evalGenerator(f, gen, cfg, o.Eval)
	}
	if _, err := f.Out.Write(prompt); err != nil {
		return err
	}
	start := time.Now()
	out, fed, err := generate(gen, sampler, ids, o.Tokens, cfg.Ctx, func(tok int32) error {
		text, err := tk.Decode([]int32{tok})
		if err == nil {
			_, err = f.Out.Write(text)
		}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(f.Out)
	secs := time.Since(start).Seconds()
	fmt.Fprintf(f.Err, "%d tokens in %.2fs: %.1f tokens/s (%d positions computed, prompt included)\n", len(out), secs, float64(len(out))/secs, fed)
	return nil
}

// maxEvalSequences bounds --eval: the text it reads, sequences of the
// model's context, is held in memory.
const maxEvalSequences = 100000

// evalGenerator prints the held-out loss of a byte model on n sequences
// of the built-in task's held-out text, each the model's context long.
func evalGenerator(f *factory, gen *gradient.Generator, cfg gradient.ModelConfig, n int) error {
	if cfg.Vocab != 256 {
		return fmt.Errorf("--eval measures byte models on the built-in task; this model has %d tokens", cfg.Vocab)
	}
	_, eval := data.Builtin().Corpus(0, n*(cfg.Ctx+1)+cfg.Ctx+1)
	seqs := data.EvalBatches(eval, 1, cfg.Ctx, n)
	start := time.Now()
	var sum float64
	for _, s := range seqs {
		l, err := gen.Loss(s[:cfg.Ctx+1])
		if err != nil {
			return err
		}
		sum += l
	}
	loss := sum / float64(len(seqs))
	fmt.Fprintf(f.Out, "held-out loss %.4f nats/token (perplexity %.4f) over %d sequences of %d tokens, %s weights\n", loss, math.Exp(loss), len(seqs), cfg.Ctx, gen.Quant())
	secs := time.Since(start).Seconds()
	fmt.Fprintf(f.Err, "%d positions in %.2fs: %.1f tokens/s\n", len(seqs)*cfg.Ctx, secs, float64(len(seqs)*cfg.Ctx)/secs)
	return nil
}

// generate continues prompt by n tokens, calling emit with each, and
// returns them and the number of positions the model computed. When the
// context fills up, the cache restarts from the last half of it.
func generate(gen *gradient.Generator, s *gradient.Sampler, prompt []int32, n, ctx int, emit func(int32) error) ([]int32, int, error) {
	seq := prompt
	if len(seq) > ctx-1 {
		seq = seq[len(seq)-(ctx-1):]
	}
	seq = append([]int32(nil), seq...)
	var logits []float32
	fed := 0
	feed := func(toks []int32) error {
		for _, t := range toks {
			var err error
			if logits, err = gen.Next(t); err != nil {
				return err
			}
			fed++
		}
		return nil
	}
	if err := feed(seq); err != nil {
		return nil, fed, err
	}
	var out []int32
	for len(out) < n {
		tok := s.Sample(logits)
		out = append(out, tok)
		seq = append(seq, tok)
		if err := emit(tok); err != nil {
			return out, fed, err
		}
		if len(out) == n {
			break
		}
		if gen.Len() == ctx {
			gen.Reset()
			seq = seq[len(seq)-ctx/2:]
			if err := feed(seq); err != nil {
				return out, fed, err
			}
			continue
		}
		if err := feed([]int32{tok}); err != nil {
			return out, fed, err
		}
	}
	return out, fed, nil
}
