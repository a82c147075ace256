package round

import (
	"errors"
	"strconv"
	"strings"

	"github.com/shoal-network/shoal/gradient/aggregate"
	"github.com/shoal-network/shoal/gradient/codec"
)

// Architectures of the model zoo (package gradient).
const (
	ArchGPT = "gpt"
	ArchMLP = "mlp"
)

// CanonicalCodec checks a codec spec and returns its canonical form, every
// parameter explicit: codec.Parse(spec).String(). The grammar, defaults and
// ranges are those of codec.Parse:
//
//	fp32 | fp16 | bf16
//	int8[:block=B]                   B in [1, 2^20], default 256
//	sign[:chunk=C]                   C in [1, 2^20], default 256
//	topk[:chunk=C,k=K,values=V]      C in [2, 2^20], K in [1, C], V fp16|int8|2bit; default 4096, 64, fp16
//	dct-topk[:chunk=C,k=K,values=V]  C in [2, 1024], K in [1, C]; default 64, 8, fp16
//	block-sign[:chunk=C,every=D]     C in [1, 2^20], D in [1, 2^20]; default 256, 4
//
// For example CanonicalCodec("topk:k=8") is "topk:chunk=4096,k=8,values=fp16".
// An error says what is wrong without the package prefix, since the spec
// field it is reported under already names it.
func CanonicalCodec(spec string) (string, error) {
	c, err := codec.Parse(spec)
	if err != nil {
		return "", unprefix(err, "codec: ")
	}
	return c.String(), nil
}

// CanonicalRule checks an aggregation rule spec and returns its canonical
// form, every parameter explicit: aggregate.Parse(spec).Name(). The grammar,
// defaults and ranges are those of aggregate.Parse:
//
//	mean[:partial=P]                   P true or false (the default)
//	median
//	trimmed-mean[:trim=T]              T in [0, 0.5), default 0.1
//	norm-clip[:max=M,partial=P]        M > 0, or median (the default); P as for mean
//	centered-clip[:tau=T,iters=N]      T > 0 or median (the default); N in [1, 100], default 3
//
// Numbers are written in the shortest form that reads back to the same
// float64, so "trimmed-mean:trim=0.20" becomes "trimmed-mean:trim=0.2".
// Errors are as for CanonicalCodec.
func CanonicalRule(spec string) (string, error) {
	r, err := aggregate.Parse(spec)
	if err != nil {
		return "", unprefix(err, "aggregate: ")
	}
	return r.Name(), nil
}

// unprefix returns err with its package prefix removed.
func unprefix(err error, prefix string) error {
	msg, ok := strings.CutPrefix(err.Error(), prefix)
	if !ok {
		return err
	}
	return errors.New(msg)
}

// formatFloat formats f in the shortest form that parses back to f, with
// negative zero written as 0.
func formatFloat(f float64) string {
	if f == 0 {
		f = 0
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
