package aggregate

import (
	"strings"
	"testing"
)

// TestParseSpecs checks what Parse accepts, the canonical name it gives
// and what its errors say.
func TestParseSpecs(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"mean", "mean", ""},
		{"median", "median", ""},
		{"trimmed-mean", "trimmed-mean:trim=0.1", ""},
		{"trimmed-mean:trim=0.20", "trimmed-mean:trim=0.2", ""},
		{"trimmed-mean:trim=0", "trimmed-mean:trim=0", ""},
		{"trimmed-mean:trim=-0", "trimmed-mean:trim=0", ""},
		{"trimmed-mean:trim=0.49", "trimmed-mean:trim=0.49", ""},
		{"norm-clip", "norm-clip:max=median", ""},
		{"norm-clip:max=2.50", "norm-clip:max=2.5", ""},
		{"norm-clip:max=1e-300", "norm-clip:max=1e-300", ""},
		{"centered-clip", "centered-clip:tau=median,iters=3", ""},
		{"mean:partial=true", "mean:partial=true", ""},
		{"mean:partial=false", "mean", ""},
		{"norm-clip:partial=true", "norm-clip:max=median,partial=true", ""},
		{"norm-clip:partial=true,max=2", "norm-clip:max=2,partial=true", ""},
		{"norm-clip:screen=true,partial=true", "norm-clip:max=median,partial=true,screen=true", ""},
		{"norm-clip:screen=false", "norm-clip:max=median", ""},
		{"norm-clip:screen=yes", "", `aggregate: norm-clip: screen="yes": want true or false`},
		{"centered-clip:iters=1", "centered-clip:tau=median,iters=1", ""},
		{"centered-clip:tau=0.5,iters=100", "centered-clip:tau=0.5,iters=100", ""},
		{" centered-clip : iters = 7 , tau = 1e1 ", "centered-clip:tau=10,iters=7", ""},

		{"trimmed-mean:trim=0.5", "", `aggregate: trimmed-mean: trim="0.5": want a number in [0, 0.5)`},
		{"trimmed-mean:trim=NaN", "", `aggregate: trimmed-mean: trim="NaN": want a number in [0, 0.5)`},
		{"norm-clip:max=0", "", `aggregate: norm-clip: max="0": want a positive number or median`},
		{"norm-clip:max=inf", "", `aggregate: norm-clip: max="inf": want a positive number or median`},
		{"centered-clip:tau=-1", "", `aggregate: centered-clip: tau="-1": want a positive number or median`},
		{"centered-clip:iters=0", "", `aggregate: centered-clip: iters="0": want an integer in [1, 100]`},
		{"centered-clip:iters=101", "", `aggregate: centered-clip: iters="101": want an integer in [1, 100]`},
		{"mean:trim=0.1", "", `aggregate: mean: unknown parameter "trim" (known: partial)`},
		{"median:trim=0.1", "", `aggregate: median takes no parameters, got "trim"`},
		{"mean:partial=yes", "", `aggregate: mean: partial="yes": want true or false`},
		{"median:", "", `aggregate: median: parameter "" is not key=value`},
		{"norm-clip:max=", "", `aggregate: norm-clip: parameter "max=" is not key=value`},
		{"norm-clip:tau=1", "", `aggregate: norm-clip: unknown parameter "tau" (known: max, partial, screen)`},
		{"centered-clip:tau=1,iters=2,extra=3", "", `aggregate: centered-clip: unknown parameter "extra" (known: tau, iters)`},
		{"trimmed-mean:trim=0.1, trim=0.2", "", `aggregate: trimmed-mean: parameter "trim" given twice`},
		// Of several problems: the syntax first, then the keys, then the
		// values.
		{"centered-clip:x=1,tau", "", `aggregate: centered-clip: parameter "tau" is not key=value`},
		{"centered-clip:iters=0,x=1", "", `aggregate: centered-clip: unknown parameter "x"`},
		{"centered-clip:iters=0,tau=0", "", `aggregate: centered-clip: tau="0"`},
		{"krum", "", `aggregate: unknown aggregation rule "krum" (known: mean, median, trimmed-mean, norm-clip, centered-clip)`},
		{"krum:f=1", "", `aggregate: unknown aggregation rule "krum"`},
		{"", "", `aggregate: unknown aggregation rule ""`},
	} {
		got, err := Parse(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", c.in, err)
		case c.err == "" && got.Name() != c.want:
			t.Errorf("Parse(%q) is named %q, want %q", c.in, got.Name(), c.want)
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("Parse(%q) = %#v, %v; want an error starting %q", c.in, got, err, c.err)
		}
		if err == nil {
			if again, err := Parse(got.Name()); err != nil || again != got {
				t.Errorf("name %q does not parse to the same rule: %#v, %v", got.Name(), again, err)
			}
		}
	}
}
