// Package gradient holds what turns data into updates: the model zoo, the
// optimizers, the local training loop (Trainer, the inner steps of a work
// unit, with AdamW) and the DiLoCo outer step: PseudoGradient measures how
// far a unit's inner steps moved the parameters, and Outer applies the
// aggregated pseudo-gradient with Nesterov momentum. Distill makes a
// model whose loss trains a small gpt against a larger one's predictions
// (knowledge distillation), for the same Trainer. The codecs that compress
// updates are package gradient/codec, the rules that aggregate them
// package gradient/aggregate, and the tokenised data package
// gradient/data.
//
// Models. Every model is built from a ModelConfig, owns its parameters as
// named float32 tensors listed in sorted name order, and initialises them
// deterministically from the config's seed: each parameter draws from its
// own stream, seeded by the config seed and the parameter's name.
//
// The gpt architecture is GPT-2's exactly, with Hugging Face's
// GPT2LMHeadModel tensor names and layouts, so that its weights mean the
// same to PyTorch:
//
//	transformer.wte.weight            [vocab, d]     token embedding; the output head is tied to it
//	transformer.wpe.weight            [ctx, d]       learned position embedding
//	transformer.h.{i}.ln_1.weight     [d]            pre-attention LayerNorm (eps 1e-5), and .bias
//	transformer.h.{i}.attn.c_attn.weight  [d, 3d]    stored [in, out] (Conv1D): x·W gives q|k|v
//	transformer.h.{i}.attn.c_attn.bias    [3d]
//	transformer.h.{i}.attn.c_proj.weight  [d, d], .bias [d]
//	transformer.h.{i}.ln_2.weight     [d], .bias [d]  pre-MLP LayerNorm
//	transformer.h.{i}.mlp.c_fc.weight     [d, 4d], .bias [4d]
//	transformer.h.{i}.mlp.c_proj.weight   [4d, d], .bias [d]
//	transformer.ln_f.weight           [d], .bias [d]  final LayerNorm
//
// A block computes x += proj(attn(ln_1(x))); x += mlp(ln_2(x)), where the
// attention is causal multi-head attention with scores scaled by
// 1/sqrt(d/heads) and the MLP is c_proj(gelu_tanh(c_fc(x))). The logits are
// ln_f(x)·wteᵀ. Weights are initialised N(0, 0.02) (c_proj weights
// N(0, 0.02/sqrt(2·layers))), biases 0 and LayerNorm gains 1.
//
// The mlp architecture is a feed-forward language model in the manner of
// Bengio et al.: the embeddings of the previous `window` tokens
// (zero-padded at the start of a sequence) are concatenated and passed
// through hidden GELU layers to the logits.
//
// Adapters. A gpt whose configuration has an Adapter is a low-rank adapter
// (LoRA) of the gpt the rest describes: every targeted matrix W [in, out]
// of a block is used as W + (alpha/rank)·A·B, with A [in, rank] (named
// W's stem + ".lora_a", initialised N(0, 1/in)) and B [rank, out]
// (".lora_b", zero, so the fresh adapter computes what its base does).
// Params lists A and B alone; the base's weights (Adapted.Frozen) take
// no gradients and are loaded from the base's checkpoint.
//
// Distillation. Distill wraps a student and a teacher gpt: its loss mixes
// the data's cross-entropy with T²·KL(teacher ‖ student) of both models'
// distributions softened by the temperature T (tensor's SoftTargetKL);
// its parameters are the student's, and the teacher's forward pass runs
// on an inference tape, as deterministic as the rest.
//
// Inference. Generator decodes a gpt one token at a time with a cache of
// keys and values, in float32 or with its matrices quantised to 8 or 4
// bits per group (quant.go), the same bits on every machine;
// QuantizeModel and NewGeneratorFromQuantized write and read a quantised
// model as tensors of a checkpoint.
//
// Determinism: training is a pure function of the model config, the
// optimizer config, the batches and the binary's kernels (see package
// tensor); the same inputs give bit-identical parameters on every machine.
// Nothing here uses the standard library's transcendental functions or
// global randomness.
package gradient
