package codec

import (
	"strings"
	"testing"
)

// TestParseSpecs checks what Parse accepts, the canonical form it gives
// and what its errors say.
func TestParseSpecs(t *testing.T) {
	const known = "(known: fp32, fp16, bf16, int8, sign, topk, dct-topk, block-sign)"
	for _, c := range []struct{ in, want, err string }{
		{"fp32", "fp32", ""},
		{"fp16", "fp16", ""},
		{"bf16", "bf16", ""},
		{" bf16 ", "bf16", ""},
		{"int8", "int8:block=256", ""},
		{"int8:block=64", "int8:block=64", ""},
		{"int8:block=1", "int8:block=1", ""},
		{"int8:block=1048576", "int8:block=1048576", ""},
		{"sign", "sign:chunk=256", ""},
		{"sign:chunk=1", "sign:chunk=1", ""},
		{"sign:chunk=7", "sign:chunk=7", ""},
		{"topk", "topk:chunk=4096,k=64,values=fp16", ""},
		{"topk:k=1", "topk:chunk=4096,k=1,values=fp16", ""},
		{"topk:values=2bit,k=1", "topk:chunk=4096,k=1,values=2bit", ""},
		{"topk:chunk=2,k=2,values=2bit", "topk:chunk=2,k=2,values=2bit", ""},
		{"topk:chunk=128,k=128", "topk:chunk=128,k=128,values=fp16", ""},
		{"topk:chunk=1048576,k=1048576,values=int8", "topk:chunk=1048576,k=1048576,values=int8", ""},
		{" topk : chunk = 08 , k = 3 ", "topk:chunk=8,k=3,values=fp16", ""},
		{"topk: k=64 , values=fp16", "topk:chunk=4096,k=64,values=fp16", ""},
		{"dct-topk", "dct-topk:chunk=64,k=8,values=fp16", ""},
		{"dct-topk:chunk=1024,k=1024", "dct-topk:chunk=1024,k=1024,values=fp16", ""},
		{"dct-topk:chunk=1024,values=int8", "dct-topk:chunk=1024,k=8,values=int8", ""},
		{"dct-topk:chunk=2,k=1,values=2bit", "dct-topk:chunk=2,k=1,values=2bit", ""},

		{" topk : chunk = 08 ", "", "codec: topk: k=64 out of range [1, chunk=8]"},
		{"dct-topk:chunk=2048", "", "codec: dct-topk: chunk=2048 out of range [2, 1024]"},
		{"dct-topk:chunk=1025", "", "codec: dct-topk: chunk=1025 out of range [2, 1024]"},
		{"topk:chunk=1", "", "codec: topk: chunk=1 out of range [2, 1048576]"},
		{"topk:k=0", "", "codec: topk: k=0 out of range [1, chunk=4096]"},
		{"topk:k=4097", "", "codec: topk: k=4097 out of range [1, chunk=4096]"},
		{"topk:values=fp32", "", `codec: topk: values="fp32": want fp16, int8 or 2bit`},
		{"int8:block=0", "", "codec: int8: block=0 out of range [1, 1048576]"},
		{"int8:block=1048577", "", "codec: int8: block=1048577 out of range [1, 1048576]"},
		{"sign:chunk=1048577", "", "codec: sign: chunk=1048577 out of range [1, 1048576]"},
		{"int8:block=-1", "", `codec: int8: block="-1" is not a decimal integer`},
		{"int8:block=4294967296", "", `codec: int8: block="4294967296" is not a decimal integer`},
		{"int8:chunk=8", "", `codec: int8: unknown parameter "chunk" (known: block)`},
		{"topk:K=8", "", `codec: topk: unknown parameter "K" (known: chunk, k, values)`},
		{"fp16:x=1", "", `codec: fp16 takes no parameters, got "x"`},
		{"fp16:", "", `codec: fp16: parameter "" is not key=value`},
		{"int8:block", "", `codec: int8: parameter "block" is not key=value`},
		{"int8:block= ", "", `codec: int8: parameter "block= " is not key=value`},
		{"topk:chunk=8,k=2,", "", `codec: topk: parameter "" is not key=value`},
		{"topk:k=1,k=2", "", `codec: topk: parameter "k" given twice`},
		{"topk:k=1, k =2", "", `codec: topk: parameter "k" given twice`},
		// Of several problems: the syntax first, then the keys, then the
		// values in canonical order.
		{"topk:x=1,k", "", `codec: topk: parameter "k" is not key=value`},
		{"topk:values=x,x=1,k=1,k=2", "", `codec: topk: parameter "k" given twice`},
		{"topk:values=x,k=0,x=1", "", `codec: topk: unknown parameter "x"`},
		{"topk:values=x,k=0,chunk=9999999", "", `codec: topk: chunk=9999999 out of range`},
		{"topk:values=x,k=0", "", `codec: topk: k=0 out of range`},
		{"gzip", "", `codec: unknown codec "gzip" ` + known},
		{"gzip:level=9", "", `codec: unknown codec "gzip" ` + known},
		{"", "", `codec: unknown codec "" ` + known},
		{"FP32", "", `codec: unknown codec "FP32"`},
		{"nope", "", "codec: unknown codec"},
	} {
		got, err := Parse(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", c.in, err)
		case c.err == "" && got.String() != c.want:
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("Parse(%q) = %v, %v; want an error starting %q", c.in, got, err, c.err)
		}
		if err == nil {
			if again, err := Parse(got.String()); err != nil || again.String() != got.String() {
				t.Errorf("canonical form %s does not parse to itself: %v, %v", got, again, err)
			}
		}
	}
}
