package main

import (
	"bytes"
	"testing"

	"github.com/shoal-network/shoal/gradient/exchange"
)

// TestBenchExchangeQuick: --quick takes the quick preset's workers, steps
// and evaluation batches, a flag given explicitly wins over it, and
// without --quick the defaults stay.
func TestBenchExchangeQuick(t *testing.T) {
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	parse := func(args ...string) exchange.Config {
		t.Helper()
		var got *benchExchangeOptions
		if err := parseInto(t, newCmdBenchExchange(f, func(o *benchExchangeOptions) error { got = o; return nil }), args...); err != nil {
			t.Fatal(err)
		}
		return got.cfg
	}
	q, d := exchange.QuickConfig(), exchange.DefaultConfig()
	if got := parse("--quick"); got != q {
		t.Errorf("--quick: %+v, want %+v", got, q)
	}
	if got := parse("--quick", "--steps", "60", "--workers", "2"); got.Steps != 60 || got.Workers != 2 || got.EvalBatches != q.EvalBatches {
		t.Errorf("--quick --steps 60 --workers 2: %+v", got)
	}
	if got := parse(); got != d {
		t.Errorf("no flags: %+v, want %+v", got, d)
	}
	if q.Workers*q.Steps*4 > d.Workers*d.Steps {
		t.Errorf("the quick preset (%d workers × %d steps) is not a small fraction of the default", q.Workers, q.Steps)
	}
}
