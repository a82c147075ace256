package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// Hugging Face interchange. shoal's gpt carries GPT-2's tensor names and
// layouts under GPT2LMHeadModel's "transformer." prefix, with the output
// projection tied to the token embedding. A file Hugging Face writes may
// differ in three ways, which hfTensors undoes: GPT2Model's files have no
// prefix; older files keep the causal mask as attn.bias and attn.masked_bias
// buffers; GPT2LMHeadModel's may carry lm_head.weight, a copy of wte.

// hfPrefix starts the names of GPT2LMHeadModel's transformer tensors.
const hfPrefix = "transformer."

// hfTensors returns the tensors of a Hugging Face GPT-2 file under shoal's
// names: the prefix added where it is missing, the attention mask
// buffers dropped, and a tied lm_head.weight checked equal to wte (bit for
// bit, after widening) and dropped.
func hfTensors(ts []checkpoint.Tensor) ([]checkpoint.Tensor, error) {
	out := make([]checkpoint.Tensor, 0, len(ts))
	var head *checkpoint.Tensor
	names := map[string]bool{}
	for i := range ts {
		t := ts[i]
		switch {
		case t.Name == "lm_head.weight":
			head = &ts[i]
			continue
		case strings.HasSuffix(t.Name, ".attn.bias") || strings.HasSuffix(t.Name, ".attn.masked_bias"):
			continue // the causal mask, a buffer: gpt makes its own
		case !strings.HasPrefix(t.Name, hfPrefix) && (strings.HasPrefix(t.Name, "h.") || strings.HasPrefix(t.Name, "wte.") ||
			strings.HasPrefix(t.Name, "wpe.") || strings.HasPrefix(t.Name, "ln_f.")):
			t.Name = hfPrefix + t.Name
		}
		if names[t.Name] {
			return nil, fmt.Errorf("tensor %s appears both with and without the %q prefix", t.Name, hfPrefix)
		}
		names[t.Name] = true
		out = append(out, t)
	}
	if head != nil {
		var wte *checkpoint.Tensor
		for i := range out {
			if out[i].Name == hfPrefix+"wte.weight" {
				wte = &out[i]
			}
		}
		if wte == nil {
			return nil, errors.New("lm_head.weight is there but the token embedding (wte.weight) is not")
		}
		if len(head.Data) != len(wte.Data) || fmt.Sprint(head.Shape) != fmt.Sprint(wte.Shape) {
			return nil, fmt.Errorf("lm_head.weight of shape %v is not tied to wte.weight of shape %v: shoal's gpt ties them", head.Shape, wte.Shape)
		}
		for i := range head.Data {
			if math.Float32bits(head.Data[i]) != math.Float32bits(wte.Data[i]) {
				return nil, fmt.Errorf("lm_head.weight differs from wte.weight (first at value %d): shoal's gpt ties them, so this model cannot be imported", i)
			}
		}
	}
	return out, nil
}

// hfConfig is the part of a Hugging Face GPT-2 config.json that fixes the
// model's shape.
type hfConfig struct {
	Architectures []string `json:"architectures,omitempty"`
	ModelType     string   `json:"model_type"`
	VocabSize     int      `json:"vocab_size"`
	NPositions    int      `json:"n_positions"`
	NCtx          int      `json:"n_ctx,omitempty"`
	NEmbd         int      `json:"n_embd"`
	NLayer        int      `json:"n_layer"`
	NHead         int      `json:"n_head"`
	NInner        *int     `json:"n_inner"`
	Activation    string   `json:"activation_function"`
	LayerNormEps  float64  `json:"layer_norm_epsilon"`
	TieEmbeddings bool     `json:"tie_word_embeddings"`
	TorchDType    string   `json:"torch_dtype,omitempty"`
}

// gptOf returns the shoal configuration of a Hugging Face GPT-2 config,
// refusing what shoal's gpt does not compute.
func (c *hfConfig) gptOf(where string) (gradient.ModelConfig, error) {
	bad := func(format string, args ...any) (gradient.ModelConfig, error) {
		return gradient.ModelConfig{}, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	if c.ModelType != "" && c.ModelType != "gpt2" {
		return bad("model_type %q is not gpt2", c.ModelType)
	}
	if c.Activation != "" && c.Activation != "gelu_new" {
		return bad("activation_function %q: shoal's gpt uses gelu_new (GELU's tanh approximation)", c.Activation)
	}
	if c.LayerNormEps != 0 && c.LayerNormEps != 1e-5 {
		return bad("layer_norm_epsilon %g: shoal's gpt uses 1e-5", c.LayerNormEps)
	}
	if c.NInner != nil && *c.NInner != 4*c.NEmbd {
		return bad("n_inner %d: shoal's gpt has an MLP of 4 × n_embd", *c.NInner)
	}
	ctx := c.NPositions
	if ctx == 0 {
		ctx = c.NCtx
	}
	cfg := gradient.ModelConfig{Arch: "gpt", Vocab: c.VocabSize, Ctx: ctx, Dim: c.NEmbd, Layers: c.NLayer, Heads: c.NHead}
	if err := cfg.Validate(); err != nil {
		return bad("%v", err)
	}
	return cfg, nil
}

// hfConfigOf returns the Hugging Face config.json of a gpt configuration.
func hfConfigOf(cfg gradient.ModelConfig) hfConfig {
	inner := 4 * cfg.Dim
	return hfConfig{Architectures: []string{"GPT2LMHeadModel"}, ModelType: "gpt2", VocabSize: cfg.Vocab, NPositions: cfg.Ctx, NCtx: cfg.Ctx,
		NEmbd: cfg.Dim, NLayer: cfg.Layers, NHead: cfg.Heads, NInner: &inner, Activation: "gelu_new", LayerNormEps: 1e-5,
		TieEmbeddings: true, TorchDType: "float32"}
}

// hfMetaKeys are the safetensors metadata entries that describe a GPT-2's
// shape to readers other than shoal.
var hfMetaKeys = []string{"n_head", "n_layer", "n_embd", "vocab_size", "n_ctx"}

// hfMeta returns those entries for a gpt configuration.
func hfMeta(cfg gradient.ModelConfig) map[string]string {
	return map[string]string{"n_head": strconv.Itoa(cfg.Heads), "n_layer": strconv.Itoa(cfg.Layers), "n_embd": strconv.Itoa(cfg.Dim),
		"vocab_size": strconv.Itoa(cfg.Vocab), "n_ctx": strconv.Itoa(cfg.Ctx)}
}

// hfConfigFromMeta reads a gpt configuration from those entries, if a
// file has all of them.
func hfConfigFromMeta(meta map[string]string, where string) (gradient.ModelConfig, bool, error) {
	v := make([]int, len(hfMetaKeys))
	for i, k := range hfMetaKeys {
		s, ok := meta[k]
		if !ok {
			return gradient.ModelConfig{}, false, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return gradient.ModelConfig{}, false, fmt.Errorf("%s: metadata %s: %q is not an integer", where, k, s)
		}
		v[i] = n
	}
	c := hfConfig{NHead: v[0], NLayer: v[1], NEmbd: v[2], VocabSize: v[3], NPositions: v[4]}
	cfg, err := c.gptOf(where + ": metadata")
	return cfg, err == nil, err
}

// readHFConfig reads a Hugging Face config.json.
func readHFConfig(path string) (gradient.ModelConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return gradient.ModelConfig{}, err
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return gradient.ModelConfig{}, fmt.Errorf("%s: %v", path, err)
	}
	return c.gptOf(path)
}

// hfConfigBeside returns the config.json in the directory of a weights
// file, if there is one.
func hfConfigBeside(file string) (string, bool) {
	p := filepath.Join(filepath.Dir(file), "config.json")
	_, err := os.Stat(p)
	return p, err == nil
}

// gptConfigOf returns the gpt configuration a checkpoint's metadata
// records, if it records one.
func gptConfigOf(c *checkpoint.Checkpoint) (gradient.ModelConfig, bool) {
	var cfg gradient.ModelConfig
	js, ok := c.Meta[checkpoint.MetaConfig]
	if !ok || json.Unmarshal([]byte(js), &cfg) != nil || cfg.Arch != "gpt" || cfg.Validate() != nil {
		return cfg, false
	}
	return cfg, true
}
