package round

import (
	"strings"
	"testing"

	mh "github.com/multiformats/go-multihash"
)

// identity returns the base58btc identity multihash of n bytes.
func identity(n int) string {
	h, _ := mh.Encode(make([]byte, n), mh.IDENTITY)
	return mh.Multihash(h).B58String()
}

// sha256Hash returns a base58btc multihash with the sha2-256 code and a
// digest of n bytes.
func sha256Hash(n int) string {
	h, _ := mh.Encode(make([]byte, n), mh.SHA2_256)
	return mh.Multihash(h).B58String()
}

func TestCanonicalCodec(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"fp32", "fp32", ""},
		{"fp16", "fp16", ""},
		{"bf16", "bf16", ""},
		{"int8", "int8:block=256", ""},
		{"int8:block=64", "int8:block=64", ""},
		{"sign", "sign:chunk=256", ""},
		{"sign:chunk=1", "sign:chunk=1", ""},
		{"topk", "topk:chunk=4096,k=64,values=fp16", ""},
		{"topk:values=2bit,k=1", "topk:chunk=4096,k=1,values=2bit", ""},
		{" topk : chunk = 08 ", "topk:chunk=8,k=64,values=fp16", "k=64 out of range [1, chunk=8]"},
		{"topk:chunk=128,k=128", "topk:chunk=128,k=128,values=fp16", ""},
		{"int8:block=1", "int8:block=1", ""},
		{"int8:block=1048576", "int8:block=1048576", ""},
		{"sign:chunk=7", "sign:chunk=7", ""},
		{"topk:k=1", "topk:chunk=4096,k=1,values=fp16", ""},
		{"topk:chunk=2,k=2,values=2bit", "topk:chunk=2,k=2,values=2bit", ""},
		{"topk:chunk=1048576,k=1048576,values=int8", "topk:chunk=1048576,k=1048576,values=int8", ""},
		{"dct-topk:chunk=1024,k=1024", "dct-topk:chunk=1024,k=1024,values=fp16", ""},
		{"dct-topk:chunk=2,k=1,values=2bit", "dct-topk:chunk=2,k=1,values=2bit", ""},
		{"dct-topk:chunk=1025", "", "dct-topk: chunk=1025 out of range [2, 1024]"},
		{"sign:chunk=1048577", "", "sign: chunk=1048577 out of range [1, 1048576]"},
		{"topk:k=4097", "", "topk: k=4097 out of range [1, chunk=4096]"},
		{"nope", "", `unknown codec "nope" (known: fp32, fp16, bf16, int8, sign, topk, dct-topk, block-sign)`},
		{"dct-topk", "dct-topk:chunk=64,k=8,values=fp16", ""},
		{"block-sign", "block-sign:chunk=256,every=4", ""},
		{"block-sign:every=16,chunk=1024", "block-sign:chunk=1024,every=16", ""},
		{"block-sign:every=0", "", "block-sign: every=0 out of range [1, 1048576]"},
		{"dct-topk:chunk=1024,values=int8", "dct-topk:chunk=1024,k=8,values=int8", ""},
		{"dct-topk:chunk=2048", "", "dct-topk: chunk=2048 out of range [2, 1024]"},
		{"topk:chunk=1", "", "chunk=1 out of range [2, 1048576]"},
		{"topk:k=0", "", "k=0 out of range"},
		{"topk:values=fp32", "", `values="fp32": want fp16, int8 or 2bit`},
		{"int8:block=0", "", "block=0 out of range"},
		{"int8:block=1048577", "", "block=1048577 out of range"},
		{"int8:block=-1", "", "not a decimal integer"},
		{"int8:chunk=8", "", `unknown parameter "chunk" (known: block)`},
		{"fp16:x=1", "", `fp16 takes no parameters, got "x"`},
		{"fp16:", "", "is not key=value"},
		{"topk:k=1,k=2", "", "given twice"},
		{"gzip", "", `unknown codec "gzip"`},
		{"", "", `unknown codec ""`},
		{"FP32", "", "unknown codec"},
	} {
		got, err := CanonicalCodec(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("CanonicalCodec(%q) = %q, %v; want %q", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("CanonicalCodec(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
		case err != nil && strings.HasPrefix(err.Error(), "codec: "):
			t.Errorf("CanonicalCodec(%q): %v: the spec field names the codec already", c.in, err)
		}
		if err == nil {
			if again, _ := CanonicalCodec(got); again != got {
				t.Errorf("canonical form %q is not a fixed point: %q", got, again)
			}
		}
	}
}

func TestCanonicalRule(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"mean", "mean", ""},
		{"median", "median", ""},
		{"trimmed-mean", "trimmed-mean:trim=0.1", ""},
		{"trimmed-mean:trim=0.20", "trimmed-mean:trim=0.2", ""},
		{"trimmed-mean:trim=0", "trimmed-mean:trim=0", ""},
		{"trimmed-mean:trim=-0", "trimmed-mean:trim=0", ""},
		{"trimmed-mean:trim=0.5", "", "want a number in [0, 0.5)"},
		{"trimmed-mean:trim=NaN", "", "want a number in [0, 0.5)"},
		{"norm-clip", "norm-clip:max=median", ""},
		{"norm-clip:max=2.50", "norm-clip:max=2.5", ""},
		{"norm-clip:max=0", "", "want a positive number or median"},
		{"norm-clip:max=inf", "", "want a positive number or median"},
		{"centered-clip", "centered-clip:tau=median,iters=3", ""},
		{" centered-clip : iters = 7 , tau = 1e1 ", "centered-clip:tau=10,iters=7", ""},
		{"centered-clip:iters=0", "", "want an integer in [1, 100]"},
		{"centered-clip:iters=101", "", "want an integer in [1, 100]"},
		{"mean:trim=0.1", "", `mean: unknown parameter "trim" (known: partial)`},
		{"mean:partial=true", "mean:partial=true", ""},
		{"norm-clip:partial=true", "norm-clip:max=median,partial=true", ""},
		{"median:", "", "is not key=value"},
		{"norm-clip:tau=1", "", `unknown parameter "tau" (known: max, partial, screen)`},
		{"krum", "", `unknown aggregation rule "krum" (known: mean, median, trimmed-mean, norm-clip, centered-clip)`},
		{"trimmed-mean:trim=0.49", "trimmed-mean:trim=0.49", ""},
		{"norm-clip:max=1e-300", "norm-clip:max=1e-300", ""},
		{"centered-clip:tau=0.5,iters=100", "centered-clip:tau=0.5,iters=100", ""},
		{"centered-clip:iters=1", "centered-clip:tau=median,iters=1", ""},
		{"centered-clip:tau=-1", "", `centered-clip: tau="-1": want a positive number or median`},
	} {
		got, err := CanonicalRule(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("CanonicalRule(%q) = %q, %v; want %q", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("CanonicalRule(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
		case err != nil && strings.HasPrefix(err.Error(), "aggregate: "):
			t.Errorf("CanonicalRule(%q): %v: the spec field names the rule already", c.in, err)
		}
		if err == nil {
			if again, _ := CanonicalRule(got); again != got {
				t.Errorf("canonical form %q is not a fixed point: %q", got, again)
			}
		}
	}
}

func TestCanonicalPeerID(t *testing.T) {
	const rsaPeer = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N" // sha2-256 form
	for _, c := range []struct{ in, want, err string }{
		{peerA, peerA, ""},
		{peerACID, peerA, ""},
		{peerAK, peerA, ""},
		{rsaPeer, rsaPeer, ""},
		{"", "", "empty peer ID"},
		{"12D3KooW", "", "not a peer ID"},
		{"QmFoo0", "", "not a peer ID"}, // '0' is not base58btc
		{peerA + "x", "", "not a peer ID"},
		{dataCID, "", "is a CID but not a peer ID"},
		{"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG1", "", "not a peer ID"},
		{strings.Repeat("1", 200), "", "too long"},
		{identity(42), identity(42), ""},
		{identity(43), "", "want an identity multihash of 1 to 42 bytes"},
		{identity(0), "", "want an identity multihash of 1 to 42 bytes"},
		{sha256Hash(20), "", "got hash code 0x12 of 20 bytes"},
	} {
		got, err := CanonicalPeerID(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("CanonicalPeerID(%q) = %q, %v; want %q", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("CanonicalPeerID(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
		}
	}
}
