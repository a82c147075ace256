package aggregate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Rule aggregates contributions into one update.
type Rule interface {
	// Name returns the rule's canonical spec, with every parameter
	// explicit: Parse(r.Name()) returns an equivalent rule.
	Name() string
	// Aggregate writes the aggregate of cs, taken in the given order, to
	// dst, whose length every contribution must have and which must not
	// overlap any of them. It does not modify cs. On error dst is left
	// unchanged.
	Aggregate(dst []float32, cs []Contribution) (Report, error)
}

// Report says what a rule did with each contribution. Per-contribution
// slices are indexed in input order; lists of peers are in input order.
type Report struct {
	Rule string // the rule's Name
	// Norms holds each contribution's L2 norm; for an excluded one it is
	// the non-finite sum of squares that excluded it (NaN or +Inf).
	Norms []float64
	// Excluded lists the peers whose contributions held NaN or ±Inf and
	// were left out.
	Excluded []string
	// Clipped lists the peers whose contributions were scaled down
	// (norm-clip) or clipped in the last iteration (centered-clip).
	Clipped []string
	// Screened lists the peers whose contributions norm-clip's screen
	// left out (their Scales entry is 0).
	Screened []string
	// Scales holds the factor each contribution was scaled by (norm-clip)
	// or its clip factor in the last iteration (centered-clip): 1 if not
	// clipped, 0 if excluded. It is nil for the other rules.
	Scales []float64
	// Bound is the norm bound (norm-clip) or the last iteration's radius τ
	// (centered-clip); 0 for the other rules.
	Bound float64
}

// Parse returns the rule a spec names. A spec is a rule name, optionally
// followed by a colon and comma-separated key=value parameters:
//
//	mean
//	median
//	trimmed-mean:trim=0.2         trim in [0, 0.5); default 0.1
//	norm-clip:max=1.0             max > 0, or max=median (the default);
//	                              partial, screen: true or false (default)
//	centered-clip:tau=1.0,iters=3 tau > 0 or tau=median (the default);
//	                              iters in [1, 100], default 3
//
// Spaces around names, keys and values are ignored; numbers are parsed by
// strconv.ParseFloat and strconv.Atoi. Errors read "aggregate: " followed
// by what is wrong, for example
//
//	aggregate: unknown aggregation rule "krum" (known: mean, median, trimmed-mean, norm-clip, centered-clip)
//	aggregate: trimmed-mean: trim="0.5": want a number in [0, 0.5)
func Parse(spec string) (Rule, error) {
	name, rest, hasParams := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	var known []string // parameter keys, in canonical order
	switch name {
	case "mean":
		known = []string{"partial"}
	case "median":
	case "trimmed-mean":
		known = []string{"trim"}
	case "norm-clip":
		known = []string{"max", "partial", "screen"}
	case "centered-clip":
		known = []string{"tau", "iters"}
	default:
		return nil, fmt.Errorf("aggregate: unknown aggregation rule %q (known: mean, median, trimmed-mean, norm-clip, centered-clip)", name)
	}
	// The parameters are read in three passes, the syntax, then the keys,
	// then the values, so that of several problems the first of these is
	// reported.
	kv := map[string]string{}
	var given []string // keys in spec order
	if hasParams {
		for _, part := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(part, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("aggregate: %s: parameter %q is not key=value", name, part)
			}
			if _, dup := kv[k]; dup {
				return nil, fmt.Errorf("aggregate: %s: parameter %q given twice", name, k)
			}
			kv[k] = v
			given = append(given, k)
		}
	}
	for _, k := range given {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return nil, fmt.Errorf("aggregate: %s takes no parameters, got %q", name, k)
			}
			return nil, fmt.Errorf("aggregate: %s: unknown parameter %q (known: %s)", name, k, strings.Join(known, ", "))
		}
	}
	// positive reads a positive finite number, or "median" (the default),
	// which reads as 0.
	positive := func(k string) (float64, error) {
		v, ok := kv[k]
		if !ok || v == "median" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || !(f > 0) {
			return 0, fmt.Errorf("aggregate: %s: %s=%q: want a positive number or median", name, k, v)
		}
		return f, nil
	}
	// boolean reads k=true or k=false (the default).
	boolean := func(k string) (bool, error) {
		switch v := kv[k]; v {
		case "", "false":
			return false, nil
		case "true":
			return true, nil
		default:
			return false, fmt.Errorf("aggregate: %s: %s=%q: want true or false", name, k, v)
		}
	}
	partial := func() (bool, error) { return boolean("partial") }
	switch name {
	case "mean":
		p, err := partial()
		if err != nil {
			return nil, err
		}
		return Mean{Partial: p}, nil
	case "median":
		return Median{}, nil
	case "trimmed-mean":
		r := TrimmedMean{Trim: 0.1}
		if v, ok := kv["trim"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f < 0.5) {
				return nil, fmt.Errorf("aggregate: %s: trim=%q: want a number in [0, 0.5)", name, v)
			}
			r.Trim = f
			if f == 0 {
				r.Trim = 0 // not -0, which Name would write as "-0"
			}
		}
		return r, nil
	case "norm-clip":
		m, err := positive("max")
		if err != nil {
			return nil, err
		}
		p, err := partial()
		if err != nil {
			return nil, err
		}
		sc, err := boolean("screen")
		if err != nil {
			return nil, err
		}
		return NormClip{Max: m, Partial: p, Screen: sc}, nil
	default: // centered-clip
		tau, err := positive("tau")
		if err != nil {
			return nil, err
		}
		r := CenteredClip{Tau: tau, Iters: DefaultIters}
		if v, ok := kv["iters"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxIters {
				return nil, fmt.Errorf("aggregate: %s: iters=%q: want an integer in [1, %d]", name, v, maxIters)
			}
			r.Iters = n
		}
		return r, nil
	}
}

// formatFloat formats f in the shortest form that parses back to f.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
