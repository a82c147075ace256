package round

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The tables below mirror the names and parameter ranges of the model zoo,
// the update codecs and the aggregation rules (packages gradient,
// gradient/codec and gradient/aggregate), which this package may not
// import. They check syntax and ranges and put a spec string in canonical
// form, every parameter explicit; the packages that run a round parse the
// canonical strings again and may reject what they cannot do.

// Architectures of the model zoo.
const (
	ArchGPT = "gpt"
	ArchMLP = "mlp"
)

// Codec limits (gradient/codec).
const (
	maxCodecChunk = 1 << 20 // int8 block, sign and topk chunk
	maxDCTChunk   = 1024    // dct-topk chunk
)

// codecDef describes a codec: its parameter keys in canonical order and
// their defaults.
type codecDef struct {
	keys     []string
	defaults map[string]string
}

var codecs = map[string]codecDef{
	"fp32":     {},
	"fp16":     {},
	"bf16":     {},
	"int8":     {keys: []string{"block"}, defaults: map[string]string{"block": "256"}},
	"sign":     {keys: []string{"chunk"}, defaults: map[string]string{"chunk": "256"}},
	"topk":     {keys: []string{"chunk", "k", "values"}, defaults: map[string]string{"chunk": "4096", "k": "64", "values": "fp16"}},
	"dct-topk": {keys: []string{"chunk", "k", "values"}, defaults: map[string]string{"chunk": "64", "k": "8", "values": "fp16"}},
}

const codecNames = "fp32, fp16, bf16, int8, sign, topk, dct-topk"

// splitParams splits "name[:k=v,...]" into the name and its parameters in
// the order written. Spaces around names, keys and values are ignored.
func splitParams(spec string) (name string, keys []string, vals map[string]string, err error) {
	name, rest, has := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	vals = map[string]string{}
	if !has {
		return name, nil, vals, nil
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return name, nil, nil, fmt.Errorf("parameter %q is not key=value", part)
		}
		if _, dup := vals[k]; dup {
			return name, nil, nil, fmt.Errorf("parameter %q given twice", k)
		}
		vals[k] = v
		keys = append(keys, k)
	}
	return name, keys, vals, nil
}

// CanonicalCodec checks a codec spec and returns its canonical form, every
// parameter explicit, in the form gradient/codec prints:
//
//	fp32 | fp16 | bf16
//	int8[:block=B]                   B in [1, 2^20], default 256
//	sign[:chunk=C]                   C in [1, 2^20], default 256
//	topk[:chunk=C,k=K,values=V]      C in [2, 2^20], K in [1, C], V fp16|int8|2bit; default 4096, 64, fp16
//	dct-topk[:chunk=C,k=K,values=V]  C in [2, 1024], K in [1, C]; default 64, 8, fp16
//
// For example CanonicalCodec("topk:k=8") is "topk:chunk=4096,k=8,values=fp16".
func CanonicalCodec(spec string) (string, error) {
	name, keys, vals, err := splitParams(spec)
	def, ok := codecs[name]
	if !ok {
		return "", fmt.Errorf("unknown codec %q (known: %s)", name, codecNames)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	for _, k := range keys {
		if _, ok := def.defaults[k]; !ok {
			if len(def.keys) == 0 {
				return "", fmt.Errorf("%s takes no parameters, got %q", name, k)
			}
			return "", fmt.Errorf("%s: unknown parameter %q (known: %s)", name, k, strings.Join(def.keys, ", "))
		}
	}
	get := func(k string) string {
		if v, ok := vals[k]; ok {
			return v
		}
		return def.defaults[k]
	}
	num := func(k string) (int, error) {
		n, err := strconv.ParseUint(get(k), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%s: %s=%q is not a decimal integer", name, k, get(k))
		}
		return int(n), nil
	}
	switch name {
	case "fp32", "fp16", "bf16":
		return name, nil
	case "int8", "sign":
		key := def.keys[0]
		n, err := num(key)
		if err != nil {
			return "", err
		}
		if n < 1 || n > maxCodecChunk {
			return "", fmt.Errorf("%s: %s=%d out of range [1, %d]", name, key, n, maxCodecChunk)
		}
		return fmt.Sprintf("%s:%s=%d", name, key, n), nil
	}
	// topk, dct-topk
	chunk, err := num("chunk")
	if err != nil {
		return "", err
	}
	k, err := num("k")
	if err != nil {
		return "", err
	}
	hi := maxCodecChunk
	if name == "dct-topk" {
		hi = maxDCTChunk
	}
	if chunk < 2 || chunk > hi {
		return "", fmt.Errorf("%s: chunk=%d out of range [2, %d]", name, chunk, hi)
	}
	if k < 1 || k > chunk {
		return "", fmt.Errorf("%s: k=%d out of range [1, chunk=%d]", name, k, chunk)
	}
	values := get("values")
	switch values {
	case "fp16", "int8", "2bit":
	default:
		return "", fmt.Errorf("%s: values=%q: want fp16, int8 or 2bit", name, values)
	}
	return fmt.Sprintf("%s:chunk=%d,k=%d,values=%s", name, chunk, k, values), nil
}

// Aggregation-rule limits (gradient/aggregate).
const (
	defaultTrim  = 0.1
	defaultIters = 3
	maxIters     = 100
)

const ruleNames = "mean, median, trimmed-mean, norm-clip, centered-clip"

// CanonicalRule checks an aggregation rule spec and returns its canonical
// form, every parameter explicit, in the form gradient/aggregate prints:
//
//	mean
//	median
//	trimmed-mean[:trim=T]              T in [0, 0.5), default 0.1
//	norm-clip[:max=M]                  M > 0, or median (the default)
//	centered-clip[:tau=T,iters=N]      T > 0 or median (the default); N in [1, 100], default 3
//
// Numbers are written in the shortest form that reads back to the same
// float64, so "trimmed-mean:trim=0.20" becomes "trimmed-mean:trim=0.2".
func CanonicalRule(spec string) (string, error) {
	name, keys, vals, err := splitParams(spec)
	var known []string
	switch name {
	case "mean", "median":
	case "trimmed-mean":
		known = []string{"trim"}
	case "norm-clip":
		known = []string{"max"}
	case "centered-clip":
		known = []string{"tau", "iters"}
	default:
		return "", fmt.Errorf("unknown aggregation rule %q (known: %s)", name, ruleNames)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	for _, k := range keys {
		ok := false
		for _, want := range known {
			ok = ok || k == want
		}
		if !ok {
			if len(known) == 0 {
				return "", fmt.Errorf("%s takes no parameters, got %q", name, k)
			}
			return "", fmt.Errorf("%s: unknown parameter %q (known: %s)", name, k, strings.Join(known, ", "))
		}
	}
	// positive reads a positive finite number, or "median" (the default).
	positive := func(k string) (string, error) {
		v, ok := vals[k]
		if !ok || v == "median" {
			return "median", nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || !(f > 0) {
			return "", fmt.Errorf("%s: %s=%q: want a positive number or median", name, k, v)
		}
		return formatFloat(f), nil
	}
	switch name {
	case "trimmed-mean":
		t := defaultTrim
		if v, ok := vals["trim"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f < 0.5) {
				return "", fmt.Errorf("%s: trim=%q: want a number in [0, 0.5)", name, v)
			}
			t = f
		}
		return "trimmed-mean:trim=" + formatFloat(t), nil
	case "norm-clip":
		m, err := positive("max")
		if err != nil {
			return "", err
		}
		return "norm-clip:max=" + m, nil
	case "centered-clip":
		tau, err := positive("tau")
		if err != nil {
			return "", err
		}
		iters := defaultIters
		if v, ok := vals["iters"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxIters {
				return "", fmt.Errorf("%s: iters=%q: want an integer in [1, %d]", name, v, maxIters)
			}
			iters = n
		}
		return fmt.Sprintf("centered-clip:tau=%s,iters=%d", tau, iters), nil
	}
	return name, nil
}

// formatFloat formats f in the shortest form that parses back to f, with
// negative zero written as 0.
func formatFloat(f float64) string {
	if f == 0 {
		f = 0
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
